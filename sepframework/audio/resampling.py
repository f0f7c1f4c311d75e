"""Sample-rate conversion with soxr, one-shot and streaming."""

from __future__ import annotations

import numpy as np
import soxr


def resampled_length(frames: int, rate_in: int, rate_out: int) -> int:
    """Frames that resampling ``frames`` from ``rate_in`` to ``rate_out`` gives.

    ``frames * rate_out / rate_in`` rounded to the nearest integer (halves up), the
    length both :func:`resample` and :class:`StreamResampler` produce.
    """
    return (frames * rate_out + rate_in // 2) // rate_in


def resample(audio: np.ndarray, rate_in: int, rate_out: int, quality: str = "HQ") -> np.ndarray:
    """Resample ``audio`` shaped (channels, samples) (or (samples,)) to ``rate_out``.

    Returns float32 audio of :func:`resampled_length` samples; when the rates are
    equal, the float32 input itself (no copy). ``quality`` is a soxr quality: ``"QQ"``,
    ``"LQ"``, ``"MQ"``, ``"HQ"`` or ``"VHQ"``.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if rate_in == rate_out:
        return audio
    # soxr takes (samples, channels); the transposed view is resampled without a copy
    return np.ascontiguousarray(soxr.resample(audio.T, rate_in, rate_out, quality).T)


class StreamResampler:
    """Resamples audio that arrives in blocks, with bounded memory.

    Feed (channels, n) blocks to :meth:`process` and call :meth:`flush` once at the end.
    The concatenated output equals :func:`resample` of the concatenated input (bit-exact
    with soxr 1.x) and has exactly :func:`resampled_length` samples.
    """

    def __init__(self, rate_in: int, rate_out: int, channels: int, quality: str = "HQ") -> None:
        self.rate_in, self.rate_out, self.channels = rate_in, rate_out, channels
        self._stream = soxr.ResampleStream(rate_in, rate_out, channels, dtype="float32", quality=quality)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Resample the next (channels, n) block; returns the (channels, m) output ready so far.

        soxr works on interleaved audio: blocks that are transposed views of C-contiguous
        (n, channels) arrays (as :meth:`AudioReader.blocks` gives) are read without a copy,
        and the output is such a view too.
        """
        return self._resample(block, last=False)

    def flush(self) -> np.ndarray:
        """The remaining output after the last block, (channels, m)."""
        return self._resample(np.zeros((self.channels, 0), dtype=np.float32), last=True)

    def _resample(self, block: np.ndarray, last: bool) -> np.ndarray:
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise ValueError(f"expected a block shaped ({self.channels}, samples), got {block.shape}")
        return self._stream.resample_chunk(np.ascontiguousarray(block.T), last=last).T
