"""Numba kernels for the hot paths of the core: STFT framing, overlap-add and masking.

Every kernel is compiled lazily with ``cache=True`` and expects exactly the dtypes and
layouts its docstring names (the public wrappers in :mod:`sepframework.stft` and
:mod:`sepframework.masks` cast and check), so each one is compiled once per dtype it
accepts and then loaded from the on-disk cache. Elementwise kernels take flat C-contiguous arrays;
:func:`memory_order` lets the wrappers present any dense array that way without copying.

Kernels write into output arrays the caller allocates with NumPy: NumPy backs large
arrays with transparent huge pages, which makes first-touch page faults on the
hundreds of megabytes of a long spectrogram cheaper than in Numba's own allocations
(framing 3 minutes of stereo audio took about a third of the time).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: Window sums (sum of squared windows at a sample) at or below this fraction of the
#: largest one (see :func:`window_sum_floor`) are not divided by.
WINDOW_SUM_FLOOR = 1e-10
#: Output samples each parallel task of :func:`overlap_add` produces.
_OLA_BLOCK = 4096
#: Elements each parallel task of the elementwise kernels handles.
_ELEMENT_BLOCK = 16384
#: Smallest normal float32 (also the smallest ``eps`` of :func:`ratio_masks`) and float64.
FLOAT32_TINY = float(np.finfo(np.float32).tiny)
_FLOAT64_TINY = float(np.finfo(np.float64).tiny)
#: Square root of the largest float64: a sum of a few such values stays finite.
_FLOAT64_HUGE = float(np.sqrt(np.finfo(np.float64).max))


def memory_order(array: np.ndarray) -> tuple[int, ...]:
    """Axis permutation ``p`` such that ``array.transpose(p)`` walks memory in C order.

    For the transposed views the STFT returns this undoes the transpose, so elementwise
    kernels can run over the underlying buffer without a copy.
    """
    return tuple(int(axis) for axis in np.argsort([-abs(s) for s in array.strides], kind="stable"))


def inverse_permutation(order: tuple[int, ...]) -> tuple[int, ...]:
    """The permutation that undoes ``order``."""
    return tuple(int(axis) for axis in np.argsort(order))


@njit(cache=True, parallel=True)
def frame_signal(
    audio: np.ndarray, window: np.ndarray, hop: int, pad: int, frames: np.ndarray
) -> None:
    """Fill ``frames`` with windowed frames of zero-padded ``audio``.

    ``audio`` (channels, samples) float32 C-contiguous is read as if ``pad`` zeros were
    prepended (and as many as needed appended); frame ``f`` starts at padded sample
    ``f * hop``. ``frames`` is float32 (channels, n_frames, len(window)).
    """
    channels, length = audio.shape
    n_frames, n_fft = frames.shape[1], frames.shape[2]
    for task in prange(channels * n_frames):
        channel = task // n_frames
        frame = task % n_frames
        start = frame * hop - pad
        first = min(n_fft, max(0, -start))
        stop = max(first, min(n_fft, length - start))
        out = frames[channel, frame]
        out[:first] = 0.0
        _multiply_into(
            out[first:stop], audio[channel, start + first : start + stop], window[first:stop]
        )
        out[stop:] = 0.0


@njit(cache=True)
def window_sums(window: np.ndarray, hop: int) -> np.ndarray:
    """Sum of squared windows at each offset ``0 .. hop - 1`` modulo ``hop`` (float64).

    Where every frame that could cover a sample exists, its window sum is the one at the
    sample's offset modulo ``hop``.
    """
    sums = np.zeros(hop)
    for n in range(window.shape[0]):
        sums[n % hop] += window[n] * window[n]
    return sums


def window_sum_floor(window: np.ndarray, hop: int) -> float:
    """Window sums at or below this are not divided by: :data:`WINDOW_SUM_FLOOR` times the largest."""
    return WINDOW_SUM_FLOOR * float(window_sums(window, hop).max())


@njit(cache=True)
def _covering_frames(lo: int, hi: int, n_fft: int, hop: int, n_frames: int) -> tuple[int, int]:
    """First and last frame overlapping padded samples ``lo .. hi - 1`` (last < first if none)."""
    return max(0, (lo - n_fft) // hop + 1), min(n_frames - 1, (hi - 1) // hop)


@njit(cache=True)
def _window_sum_at(window: np.ndarray, hop: int, n_frames: int, position: int) -> float:
    """Sum of squared windows of all frames covering padded sample ``position``."""
    first, last = _covering_frames(position, position + 1, window.shape[0], hop, n_frames)
    total = 0.0
    for frame in range(first, last + 1):
        value = window[position - frame * hop]
        total += value * value
    return total


@njit(cache=True, parallel=True)
def overlap_add(
    frames: np.ndarray, window: np.ndarray, hop: int, pad: int, floor: float, out: np.ndarray
) -> None:
    """Inverse of :func:`frame_signal` by windowed overlap-add into zeroed ``out``.

    ``frames`` (channels, n_frames, n_fft) float32 C-contiguous are multiplied by
    ``window`` again, summed at their positions and divided by the sum of squared
    windows where it exceeds ``floor`` (:func:`window_sum_floor`). ``out`` float32
    (channels, length) receives padded samples ``pad .. pad + length``.
    """
    channels, n_frames, n_fft = frames.shape
    length = out.shape[1]
    sums = window_sums(window, hop)
    inverse_sum = np.ones(hop, dtype=np.float32)
    for offset in range(hop):
        if sums[offset] > floor:
            inverse_sum[offset] = 1.0 / sums[offset]
    interior_start = n_fft - 1
    interior_stop = n_frames * hop
    n_blocks = (length + _OLA_BLOCK - 1) // _OLA_BLOCK
    for task in prange(channels * n_blocks):
        channel = task // n_blocks
        block = task % n_blocks
        begin = pad + block * _OLA_BLOCK
        end = min(pad + length, begin + _OLA_BLOCK)
        target = out[channel, begin - pad : end - pad]
        first, last = _covering_frames(begin, end, n_fft, hop, n_frames)
        for frame in range(first, last + 1):
            origin = frame * hop
            lo = max(begin, origin)
            hi = min(end, origin + n_fft)
            span = slice(lo - origin, hi - origin)
            _multiply_add(
                target[lo - begin : hi - begin], frames[channel, frame, span], window[span]
            )
        # Interior: walk the periodic window sum one hop period at a time.
        position = min(max(begin, interior_start), end)
        interior_end = max(position, min(end, interior_stop))
        while position < interior_end:
            offset = position % hop
            count = min(hop - offset, interior_end - position)
            _multiply(
                target[position - begin : position - begin + count],
                inverse_sum[offset : offset + count],
            )
            position += count
        _normalise_directly(target, begin, begin, min(end, interior_start), window, hop, n_frames, floor)
        _normalise_directly(target, begin, max(begin, interior_end), end, window, hop, n_frames, floor)


@njit(cache=True)
def _multiply_add(target: np.ndarray, values: np.ndarray, weights: np.ndarray) -> None:
    """``target += values * weights`` for equally long 1-D arrays."""
    for i in range(target.shape[0]):
        target[i] += values[i] * weights[i]


@njit(cache=True)
def _multiply_into(target: np.ndarray, values: np.ndarray, weights: np.ndarray) -> None:
    """``target = values * weights`` for equally long 1-D arrays."""
    for i in range(target.shape[0]):
        target[i] = values[i] * weights[i]


@njit(cache=True)
def _multiply(target: np.ndarray, weights: np.ndarray) -> None:
    """``target *= weights`` for equally long 1-D arrays."""
    for i in range(target.shape[0]):
        target[i] *= weights[i]


@njit(cache=True)
def _normalise_directly(
    target: np.ndarray,
    begin: int,
    lo: int,
    hi: int,
    window: np.ndarray,
    hop: int,
    n_frames: int,
    floor: float,
) -> None:
    """Divide ``target`` (padded samples from ``begin``) at ``lo .. hi`` by their window
    sums, where those exceed ``floor``."""
    for position in range(lo, hi):
        total = _window_sum_at(window, hop, n_frames, position)
        if total > floor:
            target[position - begin] /= total


@njit(cache=True, parallel=True)
def ratio_masks(estimates: np.ndarray, power: float, eps: float, masks: np.ndarray) -> None:
    """Fill ``masks`` with ``(|e_j|**power + eps) / sum_k (|e_k|**power + eps)``.

    ``estimates`` is float32 or float64 (sources, n), ``masks`` float32 (sources, n) and
    ``eps`` at least the smallest normal float32. The masks lie in [0, 1] and sum to one
    over sources for any finite estimates; where all are zero each source gets
    ``1 / sources``.
    """
    n_sources, size = estimates.shape
    for block in prange((size + _ELEMENT_BLOCK - 1) // _ELEMENT_BLOCK):
        lo = block * _ELEMENT_BLOCK
        hi = min(size, lo + _ELEMENT_BLOCK)
        total = np.zeros(hi - lo, dtype=np.float32)
        for source in range(n_sources):
            weights = masks[source, lo:hi]
            _power_plus(weights, estimates[source, lo:hi], power, eps)
            for i in range(hi - lo):
                total[i] += weights[i]
        overflowed = False
        for i in range(hi - lo):
            total[i] = 1.0 / total[i]
            overflowed |= total[i] < FLOAT32_TINY  # some weights overflowed float32, or nearly
        for source in range(n_sources):
            _multiply(masks[source, lo:hi], total)
        if overflowed:
            for i in range(hi - lo):
                if total[i] < FLOAT32_TINY:
                    _scaled_ratio_masks(estimates[:, lo + i], power, eps, masks[:, lo + i])


@njit(cache=True)
def _scaled_ratio_masks(values: np.ndarray, power: float, eps: float, masks: np.ndarray) -> None:
    """The ratio masks of one element's estimates ``values`` (sources,) into ``masks``,
    computed in float64 on the magnitudes divided by their largest, so nothing overflows."""
    scale = 1.0 / max(np.abs(values).max(), _FLOAT64_TINY)
    # eps / (largest magnitude) ** power, capped where larger values give the same masks.
    offset = min(eps * scale**power, _FLOAT64_HUGE)
    weights = (np.abs(values) * scale) ** power + offset
    masks[:] = weights / weights.sum()


@njit(cache=True)
def _power_plus(target: np.ndarray, values: np.ndarray, power: float, eps: float) -> None:
    """``target = |values|**power + eps``, with the common powers 1 and 2 kept cheap."""
    if power == 1.0:
        for i in range(target.shape[0]):
            target[i] = abs(values[i]) + eps
    elif power == 2.0:
        for i in range(target.shape[0]):
            target[i] = values[i] * values[i] + eps
    else:
        for i in range(target.shape[0]):
            target[i] = abs(values[i]) ** power + eps


@njit(cache=True, parallel=True)
def apply_masks(mixture: np.ndarray, masks: np.ndarray, out: np.ndarray) -> None:
    """Fill complex64 ``out`` (sources, n) with flat complex64 ``mixture`` times float32
    ``masks`` (sources, n) clipped to [0, 1]."""
    n_sources, size = masks.shape
    zero, one = np.float32(0.0), np.float32(1.0)
    for block in prange((size + _ELEMENT_BLOCK - 1) // _ELEMENT_BLOCK):
        lo = block * _ELEMENT_BLOCK
        hi = min(size, lo + _ELEMENT_BLOCK)
        mix = mixture[lo:hi]
        for source in range(n_sources):
            gains = masks[source, lo:hi]
            target = out[source, lo:hi]
            for i in range(hi - lo):
                target[i] = mix[i] * min(max(gains[i], zero), one)
