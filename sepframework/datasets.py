"""Reading separation datasets as tracks: a name, a sample rate and one array per source.

Two layouts are recognised automatically:

* **MIR-1K**: a folder (searched recursively) of stereo clips whose left channel is the
  accompaniment and right channel the vocals, e.g. ``mir1k/train/amy_1_01.flac``.
* **Folder of stems** (DSD100, MUSDB18-HQ, ...): one folder per track holding
  ``vocals.<ext>`` and either ``accompaniment.<ext>`` or other stems (``drums``,
  ``bass``, ``other``, ...) that are summed into the accompaniment; ``mixture.<ext>``
  is ignored because it equals the sum of the stems.

Sources are ``(channels, samples)`` float32 arrays; the mixture is their sum.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sepframework.audio import read_audio
from sepframework.interfaces import SeparationError

#: Sources every dataset provides.
SOURCES = ("vocals", "accompaniment")
#: Extensions read as audio inside dataset folders.
DATASET_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif")
#: Stem file names never summed into the accompaniment.
NOT_ACCOMPANIMENT = {"vocals", "mixture", "accompaniment"}


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


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in DATASET_EXTENSIONS)


def detect_layout(root: str | Path) -> str:
    """``"stems"`` or ``"mir1k"`` for a dataset folder; a clear error for anything else."""
    root = Path(root)
    if not root.is_dir():
        raise SeparationError(f"dataset folder {root} does not exist")
    files = _audio_files(root)
    if any(path.stem == "vocals" for path in files):
        return "stems"
    if files:
        return "mir1k"
    raise SeparationError(
        f"{root} is neither a MIR-1K folder (stereo clips: left accompaniment, right vocals) "
        "nor a folder of stems (<track>/vocals.wav with accompaniment.wav or other stems)"
    )


def _mir1k_tracks(root: Path, sample_rate: int | None) -> Iterator[Track]:
    for path in _audio_files(root):
        audio, rate = read_audio(path, sample_rate)
        if audio.shape[0] != 2:
            raise SeparationError(
                f"{path}: MIR-1K clips must be stereo (left accompaniment, right vocals), "
                f"found {audio.shape[0]} channel(s)"
            )
        yield Track(path.stem, rate, {"vocals": audio[1:2], "accompaniment": audio[0:1]})


def _stems_track(folder: Path, root: Path, sample_rate: int | None) -> Track:
    stems = {path.stem: path for path in folder.iterdir() if path.suffix.lower() in DATASET_EXTENSIONS}
    others = [stems["accompaniment"]] if "accompaniment" in stems else [
        path for name, path in sorted(stems.items()) if name not in NOT_ACCOMPANIMENT
    ]
    if not others:
        raise SeparationError(f"{folder}: has vocals but no accompaniment.wav nor other stems to sum")
    vocals, rate = read_audio(stems["vocals"], sample_rate)
    parts = [read_audio(path, sample_rate) for path in others]
    if any(part_rate != rate or part.shape != vocals.shape for part, part_rate in parts):
        raise SeparationError(f"{folder}: stems differ in sample rate, channels or length")
    accompaniment = np.sum([part for part, _ in parts], axis=0, dtype=np.float32)
    return Track(folder.relative_to(root).as_posix() if folder != root else folder.name, rate,
                 {"vocals": vocals, "accompaniment": accompaniment})


def iter_tracks(root: str | Path, sample_rate: int | None = None) -> Iterator[Track]:
    """Every track of the dataset under ``root``, in sorted order.

    With ``sample_rate`` the audio is resampled to it; otherwise it keeps its own rate.
    """
    root = Path(root)
    if detect_layout(root) == "mir1k":
        yield from _mir1k_tracks(root, sample_rate)
        return
    folders = sorted({path.parent for path in _audio_files(root) if path.stem == "vocals"})
    for folder in folders:
        yield _stems_track(folder, root, sample_rate)


def load_tracks(root: str | Path, sample_rate: int | None = None) -> list[Track]:
    """All tracks of ``root`` in memory (see :func:`iter_tracks`)."""
    return list(iter_tracks(root, sample_rate))
