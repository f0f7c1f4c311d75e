"""The interface shared by the BSS Eval implementations (fast, and museval as the reference)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from sepframework.interfaces import SeparationError

#: Taps of the distortion filters, as in BSS Eval v3/v4.
FILTERS_LEN = 512


class BssEvalBase(ABC):
    """BSS Eval of estimates against fixed ``references`` shaped (sources, channels, samples).

    Sources are matched by position (no permutation search). One instance serves any number
    of estimate sets of the references' shape.
    """

    def __init__(self, references: np.ndarray, filters_len: int = FILTERS_LEN) -> None:
        references = np.asarray(references, dtype=np.float64)
        if references.ndim != 3 or references.size == 0:
            raise SeparationError(
                f"references must be a non-empty (sources, channels, samples) array, got shape {references.shape}"
            )
        self.references = references
        self.filters_len = filters_len

    @abstractmethod
    def images(self, estimates: np.ndarray, window: int, hop: int) -> dict[str, np.ndarray]:
        """BSS Eval v4, as ``museval.evaluate(..., win=window, hop=hop, mode="v4")``: distortion
        filters fitted on the whole track, ratios per window of ``window`` samples every ``hop``
        samples (whole windows only; one window of the whole track if it is shorter).

        Returns ``{"SDR", "ISR", "SIR", "SAR"}`` in dB, each (sources, windows); windows where
        a reference or an estimate is silent are NaN.
        """

    @abstractmethod
    def sources(self, estimates: np.ndarray) -> dict[str, np.ndarray]:
        """BSS Eval v3 ``bss_eval_sources`` on the whole clip (museval's ``bss_eval_sources``
        with ``compute_permutation=False``): ``{"SDR", "SIR", "SAR"}`` in dB, each (sources,)."""

    def _check(self, estimates: np.ndarray) -> np.ndarray:
        """``estimates`` as float64, which must have the references' shape."""
        estimates = np.asarray(estimates, dtype=np.float64)
        if estimates.shape != self.references.shape:
            raise SeparationError(f"estimates have shape {estimates.shape} but the references have shape {self.references.shape}")
        return estimates
