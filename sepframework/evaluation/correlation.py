"""Short-lag cross-correlations of long signals, from tiles.

The correlations ``sum_n x[n] r[n + d]`` of every signal ``x`` with every reference ``r``
at lags ``|d| <= max_lag`` (signals zero outside their length) come from consecutive
tiles of a few thousand samples rather than from FFTs of whole tracks (slow, and one
inverse FFT per pair): the tiles' cross-spectra are summed (:func:`accumulate`) before one
short inverse FFT per pair, and the pairs of samples that straddle two tiles are added
exactly from short snippets around each tile boundary (:meth:`Tiling.lags`). The tile
spectra can serve other purposes too (BSS Eval v4 uses its 1 s windows as tiles)::

    tiling = Tiling.plan(n_samples, max_lag)
    cross = np.zeros((len(x), len(r), tiling.n_fft // 2 + 1), dtype=complex)
    for tiles in tiling.chunks(len(x) + len(r)):
        accumulate(tiling.spectra(x, tiles), tiling.spectra(r, tiles), cross)
    lags = tiling.lags(cross, x, r)  # (len(x), len(r), 2 max_lag + 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import scipy.fft

#: FFT length of the planned tiles.
TILE_FFT = 16384
#: Memory budget for the tile spectra held at once.
CHUNK_BYTES = 32 * 2**20


@dataclass(frozen=True)
class Tiling:
    """Tiles of ``length`` samples from sample 0 on (the last one stops at ``n_samples``),
    transformed with FFTs of ``n_fft >= length + max_lag`` points so that lags up to
    ``max_lag`` do not wrap around; tiles are at least ``max_lag`` long."""

    n_samples: int
    length: int
    n_fft: int
    max_lag: int

    @classmethod
    def plan(cls, n_samples: int, max_lag: int) -> Tiling:
        """Tiles fitting FFTs of about ``TILE_FFT`` points (at least ``4 max_lag``), or one
        tile of the whole signal when it is shorter."""
        longest = max(TILE_FFT, scipy.fft.next_fast_len(4 * max_lag, real=True))
        n_fft = min(longest, scipy.fft.next_fast_len(n_samples + max_lag, real=True))
        return cls(n_samples, n_fft - max_lag, n_fft, max_lag)

    @property
    def starts(self) -> np.ndarray:
        """First sample of each tile."""
        return np.arange(0, self.n_samples, self.length)

    def chunks(self, n_signals: int) -> list[slice]:
        """Consecutive tiles in groups whose spectra of ``n_signals`` signals fit the memory budget."""
        return chunk_slices(len(self.starts), n_signals, self.n_fft)

    def spectra(self, signals: np.ndarray, tiles: slice) -> np.ndarray:
        """FFTs of ``tiles`` of ``signals`` (S, samples), zero-padded: (tiles, S, n_fft // 2 + 1)."""
        return segment_spectra(signals, self.starts[tiles], self.length, self.n_fft)

    def lags(self, cross: np.ndarray, signals: np.ndarray, references: np.ndarray) -> np.ndarray:
        """The correlations from ``cross`` (S, R, freqs), the sum over all tiles of
        ``conj(signal tile spectrum) * reference tile spectrum`` (see :func:`accumulate`):
        ``out[s, r, max_lag + d] = sum_n signals[s, n] * references[r, n + d]``, (S, R, 2 max_lag + 1)."""
        lags = _centre(scipy.fft.irfft(cross, n=self.n_fft, axis=-1), self.max_lag)
        if len(self.starts) > 1:
            lags += _straddling(signals, references, self.starts[1:], self.max_lag)
        return lags


def chunk_slices(count: int, n_signals: int, n_fft: int) -> list[slice]:
    """``range(count)`` in consecutive slices whose spectra of ``n_signals`` signals of ``n_fft``
    points fit the memory budget."""
    per_chunk = max(1, CHUNK_BYTES // (8 * n_signals * n_fft))
    return [slice(first, first + per_chunk) for first in range(0, count, per_chunk)]


def segment_spectra(signals: np.ndarray, starts: np.ndarray, length: int, n_fft: int) -> np.ndarray:
    """FFTs of the ``length``-sample segments of ``signals`` (S, samples) at ``starts``
    (cut at the signals' end), zero-padded to ``n_fft``: (segments, S, n_fft // 2 + 1)."""
    padded = np.empty((len(starts), len(signals), n_fft))
    for row, start in enumerate(starts):
        piece = signals[:, start : start + length]
        padded[row, :, : piece.shape[-1]] = piece
        padded[row, :, piece.shape[-1] :] = 0
    return scipy.fft.rfft(padded, axis=-1)


def _straddling(signals: np.ndarray, references: np.ndarray, boundaries: np.ndarray, max_lag: int) -> np.ndarray:
    """The terms of the correlations whose two samples lie on either side of a tile boundary.

    Tiles are at least ``max_lag`` long, so such pairs lie within ``max_lag`` samples of one
    boundary: the last ``max_lag`` samples before it and the first ``max_lag`` after it.
    """
    n_fft = scipy.fft.next_fast_len(3 * max_lag, real=True)  # lags up to 2 max_lag - 1 must not wrap onto |d| <= max_lag

    def halves(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        positions = boundaries[:, None] + np.arange(-max_lag, max_lag)
        snippets = np.where(positions < x.shape[-1], x[:, np.minimum(positions, x.shape[-1] - 1)], 0.0).swapaxes(0, 1)
        before, after = snippets.copy(), snippets
        before[..., max_lag:] = 0
        after[..., :max_lag] = 0
        return scipy.fft.rfft(before, n=n_fft, axis=-1), scipy.fft.rfft(after, n=n_fft, axis=-1)

    x_before, x_after = halves(signals)
    r_before, r_after = (x_before, x_after) if references is signals else halves(references)
    cross = np.zeros((len(signals), len(references), n_fft // 2 + 1), dtype=np.complex128)
    accumulate(x_before, r_after, cross)
    accumulate(x_after, r_before, cross)
    return _centre(scipy.fft.irfft(cross, n=n_fft, axis=-1), max_lag)


def _centre(circular: np.ndarray, max_lag: int) -> np.ndarray:
    """Lags ``-max_lag .. max_lag`` of circular correlations (lag ``d`` at index ``d mod n``)."""
    return np.concatenate([circular[..., circular.shape[-1] - max_lag :], circular[..., : max_lag + 1]], axis=-1)


@numba.njit(cache=True)
def accumulate(x: np.ndarray, r: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``out[s, a] += sum_t conj(x[t, s]) * r[t, a]`` for tile spectra (tiles, signals, freqs)."""
    n_tiles, n_signals, n_freqs = x.shape
    n_references = r.shape[1]
    for pair in range(n_signals * n_references):
        s, a = pair // n_references, pair % n_references
        for t in range(n_tiles):
            for f in range(n_freqs):
                out[s, a, f] += x[t, s, f].conjugate() * r[t, a, f]
