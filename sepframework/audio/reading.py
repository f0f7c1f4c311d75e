"""Reading audio files, whole or streamed in blocks.

Uncompressed and FLAC/Ogg files are decoded by soundfile (libsndfile); MP3, AAC/MP4
(including MUSDB ``.stem.mp4``, whose first audio stream is the mixture) and anything
libsndfile cannot open are decoded by PyAV (FFmpeg). MP3 goes to FFmpeg because
libsndfile only estimates the length of MP3 files and stops reading at its estimate.
Files with several audio streams (the stems of a ``.stem.mp4``) are read one stream at a
time: ``stream=k`` selects the k-th audio stream, counted from 0.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import av
import numpy as np
import soundfile as sf

from sepframework.audio.errors import AudioError, reason
from sepframework.audio.resampling import resample

#: Suffixes (lower case, with the dot) of the files that are read as audio.
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".aifc", ".mp3", ".m4a", ".aac", ".mp4", ".wma", ".webm", ".mka"}
)
#: Suffixes decoded by PyAV without trying soundfile first.
_PYAV_EXTENSIONS = frozenset({".mp3", ".m4a", ".aac", ".mp4", ".wma", ".webm", ".mka"})
#: Frames per block when a whole file is read.
_WHOLE_FILE_BLOCK = 1 << 18


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file holds, known without decoding it."""

    path: Path
    sample_rate: int
    channels: int
    #: Samples per channel; ``None`` when the container does not state it exactly (MP3, AAC).
    frames: int | None
    #: Seconds; exact when ``frames`` is known, otherwise the container's estimate or ``None``.
    duration: float | None
    #: Container format, e.g. ``"wav"``, ``"flac"``, ``"ogg"``, ``"mp3"``, ``"m4a"``.
    format: str
    #: Encoding: a soundfile subtype (``"PCM_16"``, ``"FLOAT"``, ``"VORBIS"``) or an FFmpeg codec (``"aac"``).
    codec: str


class AudioReader(ABC):
    """An open audio file decoded block by block, in bounded memory. Use it as a context manager."""

    def __init__(self, info: AudioInfo) -> None:
        self.info = info
        self._started = False

    @property
    def path(self) -> Path:
        """The file read."""
        return self.info.path

    @property
    def sample_rate(self) -> int:
        """The file's sample rate, in Hz."""
        return self.info.sample_rate

    @property
    def channels(self) -> int:
        """The file's channels."""
        return self.info.channels

    @property
    def frames(self) -> int | None:
        """Samples per channel, or ``None`` when only decoding tells."""
        return self.info.frames

    def blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        """Decode the file, from the start, as float32 (channels, n) blocks.

        Every block but the last has ``block_frames`` samples. Each block is the transposed
        view of an interleaved, C-contiguous (n, channels) buffer: the layout decoders
        produce and soxr and soundfile take, so a read-resample-write chain copies nothing.
        Raises :class:`AudioError` for corrupt or truncated data and for a file without any
        samples. A reader decodes its file once: use either :meth:`blocks` or :meth:`read`, once.
        """
        if block_frames < 1:
            raise ValueError(f"block_frames must be positive, got {block_frames}")
        return _rebuffer(self._checked_pieces(block_frames), block_frames)

    def read(self) -> np.ndarray:
        """Decode the whole file at once as C-contiguous float32 (channels, samples)."""
        pieces = self._checked_pieces(_WHOLE_FILE_BLOCK)
        if self.frames is None:
            return np.ascontiguousarray(np.concatenate(list(pieces), axis=1))
        # known length: fill one array, so each piece's memory is reused for the next
        audio = np.empty((self.channels, self.frames), dtype=np.float32)
        start = 0
        for piece in pieces:
            audio[:, start : start + piece.shape[1]] = piece
            start += piece.shape[1]
        return audio

    def _checked_pieces(self, size_hint: int) -> Iterator[np.ndarray]:
        if self._started:
            raise RuntimeError("an AudioReader decodes its file once; open the file again to read it again")
        self._started = True
        decoded = 0
        for piece in self._decode(size_hint):
            decoded += piece.shape[1]
            yield piece
        if decoded == 0:
            raise AudioError(f"{self.path}: contains no audio samples")
        if self.frames is not None and decoded < self.frames:
            raise AudioError(f"{self.path}: truncated audio: {decoded} of {self.frames} samples could be decoded")

    @abstractmethod
    def _decode(self, size_hint: int) -> Iterator[np.ndarray]:
        """Decoded float32 (channels, n) pieces of any layout and length, in order; errors as AudioError."""

    @abstractmethod
    def close(self) -> None:
        """Release the file."""

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


class _SoundFileReader(AudioReader):
    """Decodes with libsndfile, which states exact lengths."""

    def __init__(self, path: Path) -> None:
        # POSIX names are bytes, which soundfile cannot encode from str when they are not UTF-8;
        # on Windows it opens str names with the wide-character API.
        self._file = sf.SoundFile(path if os.name == "nt" else os.fsencode(path))
        try:
            super().__init__(
                AudioInfo(
                    path=path,
                    sample_rate=self._file.samplerate,
                    channels=self._file.channels,
                    frames=self._file.frames,
                    duration=self._file.frames / self._file.samplerate,
                    format=self._file.format.lower(),
                    codec=self._file.subtype,
                )
            )
            if self._file.format in ("WAV", "WAVEX", "RF64", "AIFF") and _data_is_cut(path):
                raise AudioError(f"{path}: truncated audio: the file ends before its data does")
        except BaseException:
            self._file.close()
            raise

    def _decode(self, size_hint: int) -> Iterator[np.ndarray]:
        try:
            while True:
                data = self._file.read(size_hint, dtype="float32", always_2d=True)
                if not len(data):
                    return
                yield data.T
        except sf.LibsndfileError as error:
            raise AudioError(f"{self.path}: corrupt or truncated audio ({reason(error)})") from None

    def close(self) -> None:
        self._file.close()


class _PyAVReader(AudioReader):
    """Decodes one audio stream (the first by default) with FFmpeg, converting every frame to interleaved float32."""

    def __init__(self, path: Path, stream: int = 0) -> None:
        try:
            self._container = av.open(str(path), metadata_errors="replace")
        except av.error.EOFError:
            raise AudioError(f"{path}: truncated audio (the file ends unexpectedly)") from None
        except av.FFmpegError as error:
            raise AudioError(f"{path}: not a readable audio file ({reason(error)})") from None
        try:
            streams = self._container.streams.audio
            if not streams:
                raise AudioError(f"{path}: not an audio file (it has no audio stream)")
            if stream >= len(streams):
                raise AudioError(f"{path}: has {len(streams)} audio stream(s), so no audio stream {stream} "
                                 "(streams are counted from 0)")
            self._stream = streams[stream]
            if self._stream.codec_context is None:
                raise AudioError(f"{path}: not a readable audio file (its codec is unknown to FFmpeg)")
            if not self._stream.rate or not self._stream.channels:
                raise AudioError(f"{path}: not a readable audio file (unknown sample rate or channel count)")
            super().__init__(
                AudioInfo(
                    path=path,
                    sample_rate=self._stream.rate,
                    channels=self._stream.channels,
                    frames=None,
                    duration=self._estimated_duration(),
                    format=self._format_name(path),
                    codec=self._stream.codec_context.codec.canonical_name,
                )
            )
        except BaseException:
            self._container.close()
            raise

    def _estimated_duration(self) -> float | None:
        if self._stream.duration and self._stream.time_base:
            return float(self._stream.duration * self._stream.time_base)
        if self._container.duration:
            return self._container.duration / av.time_base
        return None

    def _format_name(self, path: Path) -> str:
        names = self._container.format.name.split(",")
        suffix = path.suffix.lower().lstrip(".")
        return suffix if suffix in names else names[0]

    def _decode(self, size_hint: int) -> Iterator[np.ndarray]:
        channels, layout = self.channels, self._stream.layout.name
        converter, source = None, None  # a stream's frames can change rate, layout or format midway
        try:
            for frame in self._container.decode(self._stream):
                described = (frame.format.name, frame.layout.name, frame.sample_rate)
                if described != source:
                    if converter is not None:
                        yield from self._converted(converter, None, channels)  # the previous setting's tail
                    # interleaved float32 at the stream's rate and layout
                    converter, source = av.AudioResampler(format="flt", layout=layout, rate=self.sample_rate), described
                yield from self._converted(converter, frame, channels)
            if converter is not None:
                yield from self._converted(converter, None, channels)
        except (av.FFmpegError, ValueError) as error:  # ValueError: a frame PyAV cannot convert
            raise AudioError(f"{self.path}: corrupt or truncated audio ({reason(error)})") from None

    @staticmethod
    def _converted(converter: av.AudioResampler, frame: av.AudioFrame | None, channels: int) -> Iterator[np.ndarray]:
        for converted in converter.resample(frame):
            yield converted.to_ndarray().reshape(-1, channels).T

    def close(self) -> None:
        self._container.close()


def open_reader(path: str | os.PathLike[str], stream: int = 0) -> AudioReader:
    """Open an audio file for streaming with :meth:`AudioReader.blocks`.

    ``stream`` selects the audio stream of a file holding several (e.g. 4 is the vocals of
    a MUSDB18 ``.stem.mp4``). Raises :class:`AudioError` naming the file when it is
    missing, a folder, empty, not audio, truncated, or has no such stream.
    """
    if stream < 0:
        raise ValueError(f"stream must be 0 or more, got {stream}")
    path = Path(path)
    _check_readable_file(path)
    # A pipe can be read once only: FFmpeg gets it whole, libsndfile no trial read.
    if stream == 0 and path.suffix.lower() not in _PYAV_EXTENSIONS and path.is_file() and not _chained_ogg(path):
        with contextlib.suppress(sf.SoundFileError):  # not a libsndfile format: FFmpeg knows more
            reader = _SoundFileReader(path)
            if reader.frames:
                return reader
            reader.close()  # a length of 0 is empty or unmeasurable (cut Ogg): let FFmpeg decide
    return _PyAVReader(path, stream)


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Sample rate, channels, length and format of an audio file, without decoding it."""
    with open_reader(path) as reader:
        return reader.info


def read_audio(
    path: str | os.PathLike[str], sample_rate: int | None = None, stream: int = 0
) -> tuple[np.ndarray, int]:
    """Decode a whole file (its audio stream ``stream``) to float32 (channels, samples) and its rate.

    With ``sample_rate``, the audio is resampled to that rate, which is returned.
    """
    with open_reader(path, stream) as reader:
        audio, rate = reader.read(), reader.sample_rate
    if sample_rate is None:
        return audio, rate
    return resample(audio, rate, sample_rate), sample_rate


def _check_readable_file(path: Path) -> None:
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    try:
        if not path.is_file() and path.exists():  # a pipe: a trial read would lose its first byte
            return
        with open(path, "rb") as file:
            empty = not file.read(1)
    except FileNotFoundError:
        raise AudioError(f"{path}: no such file") from None
    except OSError as error:
        raise AudioError(f"{path}: cannot be opened ({reason(error)})") from None
    if empty:
        raise AudioError(f"{path}: the file is empty (0 bytes)")


#: Container header -> (byte order of its chunk sizes, the chunk holding the samples).
_CHUNKED_CONTAINERS = {
    (b"RIFF", b"WAVE"): ("little", b"data"),
    (b"RF64", b"WAVE"): ("little", b"data"),
    (b"BW64", b"WAVE"): ("little", b"data"),
    (b"FORM", b"AIFF"): ("big", b"SSND"),
    (b"FORM", b"AIFC"): ("big", b"SSND"),
}


def _data_is_cut(path: Path) -> bool:
    """Whether a WAV (RIFF, RF64, BW64) or AIFF file's sample chunk states more bytes than
    the file holds.

    libsndfile silently shortens such files; a stated WAV size of 0 or 0xFFFFFFFF means
    "unknown" (streamed WAV) and is accepted, unless an RF64 ``ds64`` chunk states it.
    """
    size = path.stat().st_size
    with open(path, "rb") as file:
        header = file.read(12)
        layout = _CHUNKED_CONTAINERS.get((header[:4], header[8:12]))
        if layout is None:
            return False
        order, samples_chunk = layout
        wide_size = None  # the data size an RF64/BW64 ds64 chunk states
        while len(chunk := file.read(8)) == 8:
            chunk_size = int.from_bytes(chunk[4:], order)
            if chunk[:4] == b"ds64":
                wide_size = int.from_bytes(file.read(16)[8:], "little")
                chunk_size -= 16
            elif chunk[:4] == samples_chunk:
                if chunk_size == 0xFFFFFFFF and wide_size is not None:
                    chunk_size = wide_size
                return chunk_size not in (0, 0xFFFFFFFF) and file.tell() + chunk_size > size
            file.seek(chunk_size + chunk_size % 2, os.SEEK_CUR)
    return False


def _chained_ogg(path: Path) -> bool:
    """Whether ``path`` is an Ogg file of several streams one after another (a recorded radio
    stream, joined files), of which libsndfile reads the first only; FFmpeg reads them all.

    Walks the page headers (27 bytes and a segment table each), skipping the page bodies.
    """
    with open(path, "rb") as file:
        in_headers = True  # the first pages start the file's streams (one per logical stream)
        while len(header := file.read(27)) == 27 and header[:4] == b"OggS":
            starts_a_stream = bool(header[5] & 0x02)
            if starts_a_stream and not in_headers:
                return True
            in_headers = in_headers and starts_a_stream
            file.seek(sum(file.read(header[26])), os.SEEK_CUR)
    return False


def _rebuffer(pieces: Iterator[np.ndarray], block_frames: int) -> Iterator[np.ndarray]:
    """Regroup (channels, n) pieces into blocks of exactly ``block_frames`` (the last may be shorter).

    Blocks are transposed views of interleaved (n, channels) C-contiguous buffers; pieces
    already in that layout and of the block size pass through without a copy.
    """
    pending: list[np.ndarray] = []  # interleaved (n, channels)
    count = 0
    for piece in pieces:
        pending.append(piece.T)
        count += piece.shape[1]
        if count < block_frames:
            continue
        joined = _interleaved(pending)
        full = count - count % block_frames
        for start in range(0, full, block_frames):
            yield joined[start : start + block_frames].T
        pending = [joined[full:]] if full < count else []
        count -= full
    if count:
        yield _interleaved(pending).T


def _interleaved(parts: list[np.ndarray]) -> np.ndarray:
    """(n, channels) ``parts`` joined into one C-contiguous array (no copy for one contiguous part)."""
    return np.ascontiguousarray(parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0))
