"""Reading separation datasets as tracks: a name, a sample rate and one array per source.

Three layouts are recognised automatically:

* **MIR-1K**: a folder (searched recursively) of stereo clips whose left channel is the
  accompaniment and right channel the vocals, e.g. ``mir1k/train/amy_1_01.flac``.
* **Folder of stems** (DSD100, MUSDB18-HQ, ...): one folder per track holding
  ``vocals.<ext>`` and either ``accompaniment.<ext>`` or other stems (``drums``,
  ``bass``, ``other``, ...) that are summed into the accompaniment; ``mixture.<ext>``
  is ignored because it equals the sum of the stems.
* **MUSDB18** ``.stem.mp4``: a folder (searched recursively) of Native Instruments stem
  files whose audio streams are the mixture, drums, bass, other and vocals; drums, bass
  and other are summed into the accompaniment and the mixture stream is not decoded.

Sources are ``(channels, samples)`` float32 arrays; the mixture is their sum.
:func:`find_tracks` lists a dataset's tracks without decoding them, so one unreadable
track can be reported while the others are read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sepframework.audio import read_audio, resample
from sepframework.interfaces import SeparationError

#: Extensions read as audio inside dataset folders.
DATASET_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif")
#: Stem file names (any case) never summed into the accompaniment.
NOT_ACCOMPANIMENT = {"vocals", "mixture", "accompaniment"}
#: Stem names of common multitrack datasets, which a MIR-1K folder's clips are not named.
KNOWN_STEMS = NOT_ACCOMPANIMENT | {"drums", "bass", "other", "piano", "guitar"}
#: Suffix of MUSDB18 stem files.
STEM_MP4_SUFFIX = ".stem.mp4"
#: Audio streams of a MUSDB18 ``.stem.mp4``: index of the vocals and of the stems summed into the accompaniment.
STEM_MP4_VOCALS = 4
STEM_MP4_ACCOMPANIMENT = (1, 2, 3)  # drums, bass, other


def track_name(path: Path) -> str:
    """A file's name without its extension; a MUSDB18 ``.stem.mp4`` loses both suffixes."""
    if path.name.lower().endswith(STEM_MP4_SUFFIX):
        return path.name[: -len(STEM_MP4_SUFFIX)]
    return path.stem


@dataclass(frozen=True)
class Track:
    """One song or clip with its separated sources."""

    name: str
    sample_rate: int
    sources: dict[str, np.ndarray]

    @property
    def mixture(self) -> np.ndarray:
        """The sum of all sources, (channels, samples)."""
        return np.sum(list(self.sources.values()), axis=0, dtype=np.float32)

    @property
    def length(self) -> int:
        """Samples per channel."""
        return next(iter(self.sources.values())).shape[1]


@dataclass(frozen=True)
class TrackEntry:
    """Where one track of a dataset lies, known without decoding it."""

    name: str
    #: The MIR-1K clip, the folder of stems or the ``.stem.mp4`` file.
    path: Path
    #: ``"mir1k"``, ``"stems"`` or ``"stem.mp4"`` (see :func:`detect_layout`).
    layout: str

    def load(self, sample_rate: int | None = None) -> Track:
        """Decode the track (resampled to ``sample_rate`` when given); errors name the file."""
        return _READERS[self.layout](self, sample_rate)


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files under ``folder`` whose names end with one of ``suffixes``; links to missing
    files included, so that reading them names them instead of skipping a track silently."""
    return sorted(path for path in folder.rglob("*") if path.name.lower().endswith(suffixes)
                  and (path.is_file() or (path.is_symlink() and not path.exists())))


def _audio_files(folder: Path) -> list[Path]:
    return _files(folder, DATASET_EXTENSIONS)


def _stem_mp4_files(folder: Path) -> list[Path]:
    return _files(folder, (STEM_MP4_SUFFIX,))


def stem_name(path: Path) -> str:
    """The source a stem file holds: its name without extension, in lower case (``Vocals.WAV``: ``vocals``)."""
    return path.stem.lower()


def detect_layout(root: str | Path) -> str:
    """``"stems"``, ``"stem.mp4"`` or ``"mir1k"`` for a dataset folder; a clear error for anything else."""
    root = Path(root)
    if root.is_file():
        raise SeparationError(f"{root} is a file, not a dataset folder")
    if not root.is_dir():
        raise SeparationError(f"dataset folder {root} does not exist")
    files = _audio_files(root)
    if any(stem_name(path) == "vocals" for path in files):
        return "stems"
    if _stem_mp4_files(root):
        return "stem.mp4"
    stems = sorted({path.name for path in files if stem_name(path) in KNOWN_STEMS})
    if stems:
        raise SeparationError(f"{root}: stem files ({', '.join(stems[:3])}) but no vocals stem; a folder of stems "
                              "needs <track>/vocals.wav (MIR-1K clips are not named after stems)")
    if files:
        return "mir1k"
    raise SeparationError(
        f"{root} is neither a MIR-1K folder (stereo clips: left accompaniment, right vocals), "
        "a folder of stems (<track>/vocals.wav with accompaniment.wav or other stems) "
        "nor a folder of MUSDB18 .stem.mp4 files"
    )


def find_tracks(root: str | Path) -> list[TrackEntry]:
    """Every track of the dataset under ``root``, in sorted order, without decoding any."""
    root = Path(root)
    layout = detect_layout(root)
    if layout == "mir1k":
        return [TrackEntry(path.stem, path, layout) for path in _audio_files(root)]
    if layout == "stem.mp4":
        return [TrackEntry((path.parent.relative_to(root) / track_name(path)).as_posix(), path, layout)
                for path in _stem_mp4_files(root)]
    stems: dict[Path, set[str]] = {}
    for path in _audio_files(root):
        stems.setdefault(path.parent, set()).add(stem_name(path))
    # a folder with vocals is a track, and so is one of other stems, which fails when read for
    # want of vocals; other folders are not: one holding only mixtures (DSD100 keeps them in
    # a tree of their own, beside its sources) or audio not named after a stem (previews, takes)
    folders = sorted(folder for folder, names in stems.items() if names & (KNOWN_STEMS - {"mixture"}))
    return [TrackEntry(folder.relative_to(root).as_posix() if folder != root else folder.name, folder, layout)
            for folder in folders]


def _finite(path: Path, decoded: tuple[np.ndarray, int]) -> tuple[np.ndarray, int]:
    """``decoded`` audio of ``path``; a clear error where it holds NaN or infinite samples
    (a float file written by a diverged model or a faulty export), which nothing can score
    or train on."""
    if not np.isfinite(decoded[0]).all():
        raise SeparationError(f"{path}: has NaN or infinite samples")
    return decoded


def _mir1k_track(entry: TrackEntry, sample_rate: int | None) -> Track:
    audio, rate = _finite(entry.path, read_audio(entry.path, sample_rate))
    if audio.shape[0] != 2:
        raise SeparationError(
            f"{entry.path}: MIR-1K clips must be stereo (left accompaniment, right vocals), "
            f"found {audio.shape[0]} channel(s)"
        )
    return Track(entry.name, rate, {"vocals": audio[1:2], "accompaniment": audio[0:1]})


def _summed_track(entry: TrackEntry, vocals: tuple[np.ndarray, int], parts: dict[str, tuple[np.ndarray, int]],
                  sample_rate: int | None) -> Track:
    """The track of ``entry`` from its decoded vocals and the parts summed into the accompaniment.

    The stems must agree in their own rates, channels and lengths (whatever ``sample_rate``
    asks for, so that training and evaluation accept the same datasets); the summed sources
    are then resampled to ``sample_rate`` when given.
    """
    audio, rate = vocals
    if any(part_rate != rate or part.shape != audio.shape for part, part_rate in parts.values()):
        described = "; ".join(f"{name}: {part.shape[0]} channel(s), {part.shape[1]} samples at {part_rate} Hz"
                              for name, (part, part_rate) in {"vocals": vocals, **parts}.items())
        raise SeparationError(f"{entry.path}: stems differ in sample rate, channels or length ({described})")
    sources = {"vocals": audio, "accompaniment": np.sum([part for part, _ in parts.values()], axis=0, dtype=np.float32)}
    if sample_rate is not None and sample_rate != rate:
        sources = {name: resample(source, rate, sample_rate) for name, source in sources.items()}
        rate = sample_rate
    return Track(entry.name, rate, sources)


def _stems_track(entry: TrackEntry, sample_rate: int | None) -> Track:
    stems = {stem_name(path): path for path in entry.path.iterdir() if path.suffix.lower() in DATASET_EXTENSIONS}
    if "vocals" not in stems:
        raise SeparationError(f"{entry.path}: no vocals stem (vocals.wav) among {', '.join(sorted(stems))}")
    others = [stems["accompaniment"]] if "accompaniment" in stems else [
        path for name, path in sorted(stems.items()) if name not in NOT_ACCOMPANIMENT
    ]
    if not others:
        raise SeparationError(f"{entry.path}: has vocals but no accompaniment.wav nor other stems to sum")
    return _summed_track(entry, _finite(stems["vocals"], read_audio(stems["vocals"])),
                         {path.stem: _finite(path, read_audio(path)) for path in others}, sample_rate)


def _stem_mp4_track(entry: TrackEntry, sample_rate: int | None) -> Track:
    return _summed_track(entry, _finite(entry.path, read_audio(entry.path, stream=STEM_MP4_VOCALS)),
                         {f"stream {index}": _finite(entry.path, read_audio(entry.path, stream=index))
                          for index in STEM_MP4_ACCOMPANIMENT}, sample_rate)


_READERS = {"mir1k": _mir1k_track, "stems": _stems_track, "stem.mp4": _stem_mp4_track}


def iter_tracks(root: str | Path, sample_rate: int | None = None) -> Iterator[Track]:
    """Every track of the dataset under ``root``, in sorted order, decoded one at a time.

    With ``sample_rate`` the audio is resampled to it; otherwise it keeps its own rate.
    """
    for entry in find_tracks(root):
        yield entry.load(sample_rate)


def load_tracks(root: str | Path, sample_rate: int | None = None) -> list[Track]:
    """All tracks of ``root`` in memory (see :func:`iter_tracks`)."""
    return list(iter_tracks(root, sample_rate))
