"""BSS Eval computed by museval itself: the reference the fast implementation is checked against."""

from __future__ import annotations

from typing import Any

import museval
import numpy as np

from sepframework.evaluation.bss import BssEvalBase


class MusevalBssEval(BssEvalBase):
    """``museval.metrics.bss_eval`` behind the :class:`BssEvalBase` interface."""

    def images(self, estimates: np.ndarray, window: int, hop: int) -> dict[str, np.ndarray]:
        sdr, isr, sir, sar, _ = self._bss_eval(
            estimates, window=window, hop=hop, framewise_filters=False, bsseval_sources_version=False
        )
        return {"SDR": sdr, "ISR": isr, "SIR": sir, "SAR": sar}

    def sources(self, estimates: np.ndarray) -> dict[str, np.ndarray]:
        sdr, _, sir, sar, _ = self._bss_eval(
            estimates, window=np.inf, hop=np.inf, framewise_filters=True, bsseval_sources_version=True
        )
        return {"SDR": sdr[:, 0], "SIR": sir[:, 0], "SAR": sar[:, 0]}

    def _bss_eval(self, estimates: np.ndarray, **options: Any) -> tuple[np.ndarray, ...]:
        """museval wants (sources, samples, channels)."""
        return museval.metrics.bss_eval(
            self.references.transpose(0, 2, 1),
            self._check(estimates).transpose(0, 2, 1),
            compute_permutation=False,
            filters_len=self.filters_len,
            **options,
        )
