"""Scale-invariant signal-to-distortion ratio (SI-SDR, Le Roux et al., 2019)."""

from __future__ import annotations

import numpy as np

from sepframework.interfaces import SeparationError


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """SI-SDR in dB of ``estimate`` against ``reference`` (arrays of equal shape).

    The estimate is split into ``a * reference`` (``a`` the least-squares scale) and the rest:
    SI-SDR = 10 log10(|a reference|^2 / |estimate - a reference|^2). A multichannel signal is
    scored as one vector (one scale for all channels); signals are not mean-removed. Returns
    +inf for an estimate that is an exact multiple of the reference.
    """
    reference = np.asarray(reference, dtype=np.float64).ravel()
    estimate = np.asarray(estimate, dtype=np.float64).ravel()
    if reference.shape != estimate.shape:
        raise SeparationError(f"SI-SDR needs signals of equal size, got {reference.size} and {estimate.size} samples")
    reference_energy = reference @ reference
    if reference_energy == 0 or not estimate.any():
        raise SeparationError("SI-SDR is undefined for a silent reference or estimate")
    target = (estimate @ reference) / reference_energy * reference
    noise = estimate - target
    noise_energy = noise @ noise
    if noise_energy == 0:
        return float("inf")
    return float(10 * np.log10((target @ target) / noise_energy))
