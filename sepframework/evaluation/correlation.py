"""Short-lag cross-correlations of long signals.

``lagged_correlations`` returns ``sum_n x[n] r[n + d]`` for every pair of a signal ``x`` and
a reference ``r`` and every lag ``|d| <= max_lag`` (signals zero outside their length).
Rather than FFTs of whole tracks (slow, and one inverse FFT per pair), it cuts the signals
into tiles of ~16k samples: the cross-spectra of the tiles are summed before one short
inverse FFT per pair, and the pairs of samples that straddle two tiles are added exactly
from short snippets around each tile boundary.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.fft

#: FFT length of the tiles (at least 4 max_lag; tiles are shorter by ``max_lag``, so lags do
#: not wrap around).
TILE_FFT = 16384
#: Memory budget for the tile spectra held at once.
_CHUNK_BYTES = 32 * 2**20


def lagged_correlations(signals: np.ndarray, references: np.ndarray, max_lag: int) -> np.ndarray:
    """``out[s, r, max_lag + d] = sum_n signals[s, n] * references[r, n + d]`` for ``|d| <= max_lag``.

    ``signals`` (S, samples) and ``references`` (R, samples) are float64 of equal length;
    pass the same array twice for auto- and cross-correlations of one set. Returns
    (S, R, 2 max_lag + 1).
    """
    n_samples = signals.shape[-1]
    longest = max(TILE_FFT, scipy.fft.next_fast_len(4 * max_lag, real=True))
    n_fft = min(longest, scipy.fft.next_fast_len(n_samples + max_lag, real=True))
    tile = n_fft - max_lag
    starts = np.arange(0, n_samples, tile)
    total = np.zeros((len(signals), len(references), n_fft // 2 + 1), dtype=np.complex128)
    per_chunk = max(1, _CHUNK_BYTES // (16 * (len(signals) + len(references)) * (n_fft // 2 + 1)))
    for chunk in np.array_split(starts, -(-len(starts) // per_chunk)):
        x = _tile_spectra(signals, chunk, tile, n_fft)
        _accumulate(x, x if references is signals else _tile_spectra(references, chunk, tile, n_fft), total)
    lags = _centre(scipy.fft.irfft(total, n=n_fft, axis=-1), max_lag)
    if len(starts) > 1:
        lags += _straddling(signals, references, starts[1:], max_lag)
    return lags


def _tile_spectra(signals: np.ndarray, starts: np.ndarray, tile: int, n_fft: int) -> np.ndarray:
    """FFTs of the tiles of ``tile`` samples at ``starts``, zero-padded: (tiles, S, n_fft // 2 + 1)."""
    padded = np.empty((len(starts), len(signals), n_fft))
    for row, start in enumerate(starts):
        piece = signals[:, start : start + tile]
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
    total = np.zeros((len(signals), len(references), n_fft // 2 + 1), dtype=np.complex128)
    _accumulate(x_before, r_after, total)
    _accumulate(x_after, r_before, total)
    return _centre(scipy.fft.irfft(total, n=n_fft, axis=-1), max_lag)


def _centre(circular: np.ndarray, max_lag: int) -> np.ndarray:
    """Lags ``-max_lag .. max_lag`` of circular correlations (lag ``d`` at index ``d mod n``)."""
    return np.concatenate([circular[..., circular.shape[-1] - max_lag :], circular[..., : max_lag + 1]], axis=-1)


@numba.njit(parallel=True, cache=True)
def _accumulate(x: np.ndarray, r: np.ndarray, out: np.ndarray) -> None:
    """``out[s, a] += sum_t conj(x[t, s]) * r[t, a]`` (spectra, frequency last)."""
    n_tiles, n_signals, n_freqs = x.shape
    n_references = r.shape[1]
    for pair in numba.prange(n_signals * n_references):
        s, a = pair // n_references, pair % n_references
        for t in range(n_tiles):
            for f in range(n_freqs):
                out[s, a, f] += x[t, s, f].conjugate() * r[t, a, f]
