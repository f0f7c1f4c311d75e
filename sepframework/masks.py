"""Time-frequency masks: ratio (soft / Wiener-like) masks and their application.

Typical use with per-source magnitude estimates of a mixture spectrogram ``mix``::

    masks = ratio_masks(np.stack([vocals_mag, accompaniment_mag]), power=2)
    vocals_spec, accompaniment_spec = apply_masks(mix, masks)
"""

from __future__ import annotations

import numpy as np

from sepframework import kernels
from sepframework.interfaces import SeparationError



def ratio_masks(estimates: np.ndarray, power: float = 1.0, eps: float = 1e-8) -> np.ndarray:
    """Float32 masks (sources, ...) from magnitude estimates (sources, ...), in their layout.

    ``mask_j = (|e_j|**power + eps) / sum_k (|e_k|**power + eps)``: the masks lie in
    [0, 1] and sum to one over sources everywhere, however large the (finite) estimates;
    where every estimate is silent each source gets ``1 / sources``. ``power=1`` gives
    amplitude ratio masks, ``power=2`` Wiener-like power masks. ``eps`` must be at least
    the smallest normal float32 (about 1.2e-38).
    """
    estimates = np.asarray(estimates)
    if estimates.ndim < 2 or estimates.shape[0] < 1:
        raise SeparationError(
            f"estimates must be shaped (sources, ...), got an array of shape {estimates.shape}"
        )
    if np.iscomplexobj(estimates):
        raise SeparationError(f"estimates must be real magnitudes, got dtype {estimates.dtype}")
    if not power > 0:
        raise SeparationError(f"power must be positive, got {power}")
    if not kernels.FLOAT32_TINY <= eps < np.inf:
        raise SeparationError(
            f"eps must be a finite number >= {kernels.FLOAT32_TINY:.4g} (the smallest normal float32), got {eps}"
        )
    order = _sources_first(kernels.memory_order(estimates[0]))
    # float64 stays float64: magnitudes beyond the float32 range are still masked.
    dtype = np.float64 if estimates.dtype == np.float64 else np.float32
    flat = np.ascontiguousarray(estimates.transpose(order), dtype=dtype)
    masks = np.empty(flat.shape, dtype=np.float32)
    n_sources = flat.shape[0]
    kernels.ratio_masks(
        flat.reshape(n_sources, -1), float(power), float(eps), masks.reshape(n_sources, -1)
    )
    return masks.transpose(kernels.inverse_permutation(order))


def apply_masks(mix_spec: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Complex64 source spectrograms (sources, ...): ``mix_spec`` times each mask.

    ``masks`` is (sources, *mix_spec.shape), clipped to [0, 1] before use. Each result ``[j]`` has the memory layout of
    ``mix_spec``, so spectrograms from :meth:`sepframework.stft.STFT.forward` stay on the
    fast path of :meth:`~sepframework.stft.STFT.inverse`.
    """
    mix_spec, masks = np.asarray(mix_spec), np.asarray(masks)
    if masks.ndim != mix_spec.ndim + 1 or masks.shape[1:] != mix_spec.shape:
        raise SeparationError(
            f"masks must be shaped (sources, *{mix_spec.shape}) to match the mixture, "
            f"got {masks.shape}"
        )
    order = kernels.memory_order(mix_spec)
    source_order = _sources_first(order)
    mixture = np.ascontiguousarray(mix_spec.transpose(order), dtype=np.complex64)
    gains = np.ascontiguousarray(masks.transpose(source_order), dtype=np.float32)
    out = np.empty(gains.shape, dtype=np.complex64)
    n_sources = gains.shape[0]
    kernels.apply_masks(
        mixture.reshape(-1), gains.reshape(n_sources, -1), out.reshape(n_sources, -1)
    )
    return out.transpose(kernels.inverse_permutation(source_order))


def _sources_first(order: tuple[int, ...]) -> tuple[int, ...]:
    """Axis order of a (sources, ...) array: sources, then the trailing axes in ``order``."""
    return (0, *(axis + 1 for axis in order))
