"""Fast BSS Eval: v4 framed ``bss_eval_images`` and v3 whole-clip ``bss_eval_sources``.

The maths is that of ``museval.metrics.bss_eval`` with ``compute_permutation=False`` and
512-tap distortion filters fitted on the whole track. Each estimate channel ``e`` is
projected by least squares on the delayed reference channels (delays ``0 .. 511``): on all
sources (``P_all``) and on its own source only (``P_self``); ``s`` is its reference. Then

* v4 (``museval.evaluate``), per window: SDR = |s|^2 / |e - s|^2,
  ISR = |s|^2 / |P_self - s|^2, SIR = |P_self|^2 / |P_all - P_self|^2,
  SAR = |P_all|^2 / |e - P_all|^2 (energies summed over channels; filtered signals keep
  their 511-sample tail and a window's signals are zero outside it, as museval slices them);
* v3 ``bss_eval_sources`` (the whole clip): SDR = |P_self|^2 / |e - P_self|^2, and SIR,
  SAR as above.

Why it is fast: the short-lag correlations that the filters need come from tiled FFTs
(:mod:`.correlation`; in v4 the 1 s windows are the tiles, so each window is transformed
once); the Gram matrix of the delayed references is factorised once per set of references
and reused by every estimate set (e.g. the mixture baseline of GNSDR); v4 windows are
filtered in the frequency domain and their energies taken by Parseval's theorem in one
compiled pass; v3 energies are quadratic forms of the filters with the clip's
correlations, so no signal is ever filtered. Everything runs on one core, which keeps it
fast on a CPU shared with other work. In v3, ``|e - P|^2`` is therefore a
difference of energies: where it is below rounding (a numerically perfect estimate, or the
SAR of the mixture itself) the ratio is +inf or a large meaningless number, as museval's
are.

Arrays are ``(sources, channels, samples)``; computations are in float64.
"""

from __future__ import annotations

from collections.abc import Iterable

import numba
import numpy as np
import scipy.fft
import torch

from sepframework.evaluation.bss import FILTERS_LEN, BssEvalBase
from sepframework.evaluation.correlation import Tiling, accumulate, chunk_slices, segment_spectra
from sepframework.interfaces import SeparationError
from sepframework.cpu_threads import one_torch_thread

#: Largest size of the window spectra kept between the two passes of v4 (else computed twice).
_CACHE_BYTES = 256 * 2**20

#: Spectra of consecutive windows: (window slice, references (windows, A, freqs), estimates (windows, A, freqs)).
WindowSpectra = tuple[slice, np.ndarray, np.ndarray]

# Criteria as (numerator, denominator) energies.
_IMAGES = {"SDR": ("s", "e-s"), "ISR": ("s", "p_self-s"), "SIR": ("p_self", "p_all-p_self"), "SAR": ("p_all", "e-p_all")}
_SOURCES = {"SDR": ("p_self", "e-p_self"), "SIR": ("p_self", "p_all-p_self"), "SAR": ("p_all", "e-p_all")}
# Energies computed by the window kernel, in its output order.
_WINDOW_TERMS = ("s", "e-s", "p_self", "p_self-s", "e-p_self", "p_all", "p_all-p_self", "e-p_all")


class BssEval(BssEvalBase):
    """The fast BSS Eval. The Gram matrix of the delayed references is factorised on first
    use and kept for every later estimate set."""

    def __init__(self, references: np.ndarray, filters_len: int = FILTERS_LEN) -> None:
        super().__init__(references, filters_len)
        n_sources, n_channels, n_samples = self.references.shape
        self._flat = self.references.reshape(n_sources * n_channels, n_samples)
        self._max_lag = filters_len - 1
        self._reference_lags: np.ndarray | None = None
        self._solve_all: _SymmetricSolver | None = None
        self._solve_own: list[_SymmetricSolver] = []

    def images(self, estimates: np.ndarray, window: int, hop: int) -> dict[str, np.ndarray]:
        if window <= 0 or hop <= 0:
            raise SeparationError(f"window and hop must be positive, got {window} and {hop}")
        estimates = self._check(estimates)
        flat = estimates.reshape(self._flat.shape)
        n_samples = self.references.shape[-1]
        starts = np.arange((n_samples - window + hop) // hop) * hop if window < n_samples else np.zeros(1, dtype=np.int64)
        length = min(window, n_samples)
        n_fft = scipy.fft.next_fast_len(length + self._max_lag, real=True)  # filtered windows do not wrap
        spectra = None
        if hop == window and self._max_lag <= window < n_samples:
            # the windows (and the rest of the track) tile it: their FFTs also give the correlations
            estimate_lags, spectra = self._tile_pass(Tiling(n_samples, window, n_fft, self._max_lag), flat, keep=True)
        else:
            estimate_lags = self._estimate_lags(flat)
        if spectra is None:
            spectra = (
                (chunk, segment_spectra(self._flat, starts[chunk], length, n_fft), segment_spectra(flat, starts[chunk], length, n_fft))
                for chunk in chunk_slices(len(starts), 2 * len(flat), n_fft)
            )
        energies = self._window_energies(self._filters(estimate_lags), spectra, len(starts), n_fft)
        nonzero = np.concatenate([self.references.sum(axis=1) != 0, estimates.sum(axis=1) != 0])
        counts = np.lib.stride_tricks.sliding_window_view(nonzero, length, axis=-1)[:, starts].sum(axis=-1)
        return _ratios(energies, np.all(counts > 0, axis=0), _IMAGES)

    def sources(self, estimates: np.ndarray) -> dict[str, np.ndarray]:
        estimates = self._check(estimates)
        estimate_lags = self._estimate_lags(estimates.reshape(self._flat.shape))
        filters = self._filters(estimate_lags)
        energies = self._clip_energies(estimates, filters, estimate_lags)
        return {name: values[:, 0] for name, values in _ratios(energies, np.ones(1, dtype=bool), _SOURCES).items()}

    def _factorise(self, reference_lags: np.ndarray) -> None:
        """Factorise the Gram matrix of the delayed reference channels, and its diagonal blocks
        (one per source; the first one's factor is the leading block of the whole's)."""
        n_sources, n_channels = self.references.shape[:2]
        self._reference_lags = reference_lags
        gram = _toeplitz_blocks(reference_lags)
        rows = n_channels * self.filters_len
        self._solve_all = _SymmetricSolver.of(gram)
        self._solve_own = [self._solve_all.leading(rows)] + [
            _SymmetricSolver.of(gram[j * rows : (j + 1) * rows, j * rows : (j + 1) * rows]) for j in range(1, n_sources)
        ]

    def _estimate_lags(self, estimates: np.ndarray) -> np.ndarray:
        """Correlations of the estimate channels (A, samples) with the reference channels, (A, A, 2 taps - 1)."""
        return self._tile_pass(Tiling.plan(self.references.shape[-1], self._max_lag), estimates, keep=False)[0]

    def _tile_pass(self, tiling: Tiling, estimates: np.ndarray, keep: bool) -> tuple[np.ndarray, list[WindowSpectra] | None]:
        """Correlations of the estimate channels with the reference channels from the tiles'
        spectra (factorising the Gram matrix too, the first time), and, if ``keep`` and they
        fit the cache budget, the spectra themselves: ``[(tiles, references, estimates)]``."""
        n_flat, n_freqs = len(self._flat), tiling.n_fft // 2 + 1
        with_references = np.zeros((n_flat, n_flat, n_freqs), dtype=np.complex128)
        within = np.zeros_like(with_references) if self._solve_all is None else None
        keep = keep and 2 * n_flat * n_freqs * 16 * len(tiling.starts) <= _CACHE_BYTES
        kept: list[WindowSpectra] = []
        for tiles in tiling.chunks(2 * n_flat):
            references, spectra = tiling.spectra(self._flat, tiles), tiling.spectra(estimates, tiles)
            accumulate(spectra, references, with_references)
            if within is not None:
                accumulate(references, references, within)
            if keep:
                kept.append((tiles, references, spectra))
        if within is not None:
            self._factorise(tiling.lags(within, self._flat, self._flat))
        return tiling.lags(with_references, estimates, self._flat), kept if keep else None

    def _filters(self, estimate_lags: np.ndarray) -> np.ndarray:
        """Least-squares distortion filters from the estimates' correlations with the references,
        (2, sources, channels, reference channels, taps): index 0 maps all reference channels
        to each estimate channel, index 1 its own source's only."""
        n_sources, n_channels = self.references.shape[:2]
        taps = self.filters_len
        # rhs[(a, k), (j, c)] = sum_n reference[a, n - k] * estimate[j, c, n]: lags -k
        rhs = estimate_lags[..., taps - 1 :: -1].transpose(1, 2, 0).reshape(-1, n_sources * n_channels)
        filters = np.zeros((2, n_sources, n_channels, n_sources * n_channels, taps))
        filters[0] = self._solve_all(rhs).reshape(n_sources * n_channels, taps, n_sources, n_channels).transpose(2, 3, 0, 1)
        rows = n_channels * taps
        for j, solve in enumerate(self._solve_own):
            own = solve(rhs[j * rows : (j + 1) * rows, j * n_channels : (j + 1) * n_channels])
            filters[1, j, :, j * n_channels : (j + 1) * n_channels] = own.reshape(n_channels, taps, n_channels).transpose(2, 0, 1)
        return filters

    def _window_energies(self, filters: np.ndarray, spectra: Iterable[WindowSpectra], n_windows: int, n_fft: int) -> dict[str, np.ndarray]:
        """Energies of the v4 terms per window and source, (windows, sources) each, from the
        windows' spectra in chunks (a chunk may run past the last window: the rest is ignored)."""
        n_sources, n_channels, _ = self.references.shape
        kernels = scipy.fft.rfft(filters.reshape(2, n_sources * n_channels, -1, self.filters_len), n=n_fft, axis=-1)
        weights = _parseval_weights(n_fft)
        out = np.zeros((n_windows, n_sources * n_channels, len(_WINDOW_TERMS)))
        for windows, references, estimates in spectra:
            count = len(range(n_windows)[windows])
            out[windows] = _filtered_energies(references[:count], estimates[:count], kernels, weights, n_channels)
        totals = out.reshape(n_windows, n_sources, n_channels, -1).sum(axis=2)
        return {term: totals[..., i] for i, term in enumerate(_WINDOW_TERMS)}

    def _clip_energies(self, estimates: np.ndarray, filters: np.ndarray, estimate_lags: np.ndarray) -> dict[str, np.ndarray]:
        """Energies of the v3 terms over the whole clip, (1, sources) each, as quadratic forms of
        the filters with the lagged correlations (Parseval's theorem on the lag sequences)."""
        n_sources, n_channels, _ = self.references.shape
        n_fft = scipy.fft.next_fast_len(2 * self._max_lag + 1, real=True)  # filter correlations do not wrap

        def spectrum(lags: np.ndarray) -> np.ndarray:  # lag d at index d mod n_fft
            padded = np.pad(lags, [(0, 0)] * (lags.ndim - 1) + [(0, n_fft - lags.shape[-1])])
            return scipy.fft.rfft(np.roll(padded, -self._max_lag, axis=-1), axis=-1)

        weights = _parseval_weights(n_fft)
        kernels = scipy.fft.rfft(filters, n=n_fft, axis=-1).reshape(2, n_sources * n_channels, -1, n_fft // 2 + 1)
        kinds = {"p_all": kernels[0], "p_self": kernels[1], "p_all-p_self": kernels[0] - kernels[1]}
        references, with_estimates = spectrum(self._reference_lags), spectrum(estimate_lags)
        flat_estimates = estimates.reshape(self._flat.shape)
        energy_e = np.einsum("an,an->a", flat_estimates, flat_estimates)
        per_channel = {name: np.einsum("kaf,abf,kbf,f->k", h.conj(), references, h, weights).real for name, h in kinds.items()}
        # <e, P> = sum_k h[k] * sum_n e[n] reference[n - k]
        e_dot = {name: np.einsum("kaf,kaf,f->k", with_estimates, kinds[name], weights).real for name in ("p_all", "p_self")}
        per_channel["e-p_all"] = energy_e - 2 * e_dot["p_all"] + per_channel["p_all"]
        per_channel["e-p_self"] = energy_e - 2 * e_dot["p_self"] + per_channel["p_self"]
        return {name: values.reshape(1, n_sources, n_channels).sum(axis=2) for name, values in per_channel.items()}


def _parseval_weights(n_fft: int) -> np.ndarray:
    """Weights of the ``rfft`` bins so that ``sum_f w_f Re(X_f conj(Y_f)) = sum_n x[n] y[n]``."""
    weights = np.full(n_fft // 2 + 1, 2.0 / n_fft)
    weights[0] /= 2
    if n_fft % 2 == 0:
        weights[-1] /= 2
    return weights


@numba.njit(cache=True)
def _filtered_energies(
    references: np.ndarray, estimates: np.ndarray, filters: np.ndarray, weights: np.ndarray, n_channels: int
) -> np.ndarray:  # pragma: no cover - compiled
    """Energies of ``_WINDOW_TERMS`` by Parseval, (windows, channels, terms).

    ``references`` and ``estimates`` (windows, A, freqs) are spectra of the A channels;
    ``filters`` (2, A, A, freqs) those of the filters from each reference channel to each
    estimate channel (all sources, own source). Channel ``k`` belongs to source ``k // n_channels``.
    """
    n_windows, n_flat, n_freqs = references.shape
    out = np.zeros((n_windows, n_flat, 8))
    for item in range(n_windows * n_flat):
        t, k = item // n_flat, item % n_flat
        own = (k // n_channels) * n_channels
        totals = np.zeros(8)
        for f in range(n_freqs):
            s = references[t, k, f]
            e = estimates[t, k, f]
            p_all = 0j
            for a in range(n_flat):
                p_all += filters[0, k, a, f] * references[t, a, f]
            p_self = 0j
            for a in range(own, own + n_channels):
                p_self += filters[1, k, a, f] * references[t, a, f]
            for i, d in enumerate((s, e - s, p_self, p_self - s, e - p_self, p_all, p_all - p_self, e - p_all)):
                totals[i] += weights[f] * (d.real * d.real + d.imag * d.imag)
        out[t, k] = totals
    return out


def _ratios(energies: dict[str, np.ndarray], sound: np.ndarray, criteria: dict[str, tuple[str, str]]) -> dict[str, np.ndarray]:
    """Criteria in dB, (sources, windows) each, from energies (windows, sources); +inf where the
    denominator vanishes (differences below zero are rounding), NaN in windows without ``sound``."""
    result = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, (numerator, denominator) in criteria.items():
            top, bottom = np.maximum(energies[numerator], 0), np.maximum(energies[denominator], 0)
            ratio = np.where(bottom > 0, 10 * np.log10(top / bottom), np.inf)
            ratio[~sound] = np.nan
            result[name] = ratio.T
    return result


#: In the least-squares fallback, singular values below this fraction of the largest count
#: as zero. A singular Gram matrix (e.g. of a stem whose two channels are identical, which
#: Cholesky refuses) then gives the solution of least norm: the directions at the rounding
#: floor would otherwise get huge arbitrary coefficients that spoil the projection energies
#: computed from them (museval projects in the time domain, where those directions vanish).
SINGULAR_RCOND = 1e-11


class _SymmetricSolver:
    """Solves ``(matrix + eps I) x = rhs`` for a symmetric positive semi-definite ``matrix``
    (museval also adds the float64 epsilon): Cholesky, or, when rounding made the matrix
    indefinite or it is singular, the least-squares solution of least norm. Runs torch's
    LAPACK on one thread: multithreaded LAPACK stalls badly when other processes load the
    CPU, and a thread pool would fight numba's and numpy's work."""

    def __init__(self, regularised: torch.Tensor, factor: torch.Tensor | None) -> None:
        self._matrix, self._factor = regularised, factor

    @classmethod
    def of(cls, matrix: np.ndarray) -> _SymmetricSolver:
        """Factorise ``matrix + eps I`` (``matrix`` is left unchanged)."""
        regularised = torch.tensor(matrix)
        regularised.diagonal().add_(np.finfo(np.float64).eps)
        with one_torch_thread():
            factor, info = torch.linalg.cholesky_ex(regularised)
        return cls(regularised, factor if int(info) == 0 else None)

    def leading(self, size: int) -> _SymmetricSolver:
        """The solver of the leading ``size`` x ``size`` block, whose Cholesky factor is the
        leading block of this one's."""
        return _SymmetricSolver(self._matrix[:size, :size], None if self._factor is None else self._factor[:size, :size])

    def __call__(self, rhs: np.ndarray) -> np.ndarray:
        rhs = torch.from_numpy(np.ascontiguousarray(rhs))
        with one_torch_thread():
            if self._factor is not None:
                return torch.cholesky_solve(rhs, self._factor).numpy()
            return torch.linalg.lstsq(self._matrix, rhs, rcond=SINGULAR_RCOND, driver="gelsd").solution.numpy()


def _toeplitz_blocks(lags: np.ndarray) -> np.ndarray:
    """Gram matrix of the delayed channels from their correlations at lags ``-(taps - 1) ..
    taps - 1`` (A, A, 2 taps - 1): ``G[(a, k1), (b, k2)] = lags[a, b, k1 - k2 + taps - 1]``."""
    n_flat, _, n_lags = lags.shape
    taps = (n_lags + 1) // 2
    gram = np.empty((n_flat * taps, n_flat * taps))
    for a in range(n_flat):
        for b in range(n_flat):
            # row k1 holds lags[a, b, k1 + taps - 1 - k2] for k2 = 0 .. taps - 1
            gram[a * taps : (a + 1) * taps, b * taps : (b + 1) * taps] = np.lib.stride_tricks.sliding_window_view(lags[a, b], taps)[:, ::-1]
    return gram
