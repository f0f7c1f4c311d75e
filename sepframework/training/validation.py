"""Scoring a separator on validation tracks: GNSDR, GSIR and GSAR (BSS Eval v3).

Each track is scored on the whole clip with BSS Eval v3 ``bss_eval_sources``; the
global values are means over tracks weighted by their length. NSDR is the SDR of the
estimate minus the SDR of the unprocessed mixture taken as the estimate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import museval
import numpy as np

from sepframework.datasets import Track
from sepframework.interfaces import Separator

#: Length of the BSS Eval distortion filters, as in the v3 toolbox.
FILTER_LENGTH = 512


def bss_eval_v3(references: np.ndarray, estimates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(SDR, SIR, SAR) per source of whole (sources, channels, samples) arrays."""
    sdr, _, sir, sar, _ = museval.metrics.bss_eval(
        np.transpose(references, (0, 2, 1)).astype(np.float64),
        np.transpose(estimates, (0, 2, 1)).astype(np.float64),
        window=np.inf, hop=np.inf, compute_permutation=False,
        filters_len=FILTER_LENGTH, framewise_filters=False, bsseval_sources_version=True,
    )
    return sdr[:, 0], sir[:, 0], sar[:, 0]


class Validator:
    """Scores separators on fixed ``tracks`` at the models' rate; mixture SDRs are computed once."""

    def __init__(self, tracks: Sequence[Track], sources: Sequence[str]) -> None:
        self.tracks = list(tracks)
        self.sources = tuple(sources)
        self.weights = np.array([track.length for track in self.tracks], dtype=np.float64)
        self.mixture_sdr = []
        for track in self.tracks:
            references = self._references(track)
            mixture = np.broadcast_to(track.mixture, references.shape)
            self.mixture_sdr.append(bss_eval_v3(references, mixture)[0])

    def _references(self, track: Track) -> np.ndarray:
        return np.stack([track.sources[name] for name in self.sources])

    def __call__(self, separator: Separator) -> dict[str, dict[str, float]]:
        """``{source: {"GNSDR", "GSIR", "GSAR", "SDR"}}`` (dB, length-weighted means)."""
        per_track = []
        for track, mixture_sdr in zip(self.tracks, self.mixture_sdr):
            if track.sample_rate != separator.sample_rate:
                raise ValueError(f"{track.name} is at {track.sample_rate} Hz, the model at {separator.sample_rate} Hz")
            estimates = separator.separate_block(track.mixture)
            sdr, sir, sar = bss_eval_v3(self._references(track), np.stack([estimates[n] for n in self.sources]))
            per_track.append(np.stack([sdr - mixture_sdr, sir, sar, sdr]))
        means = np.average(np.stack(per_track), axis=0, weights=self.weights)
        return {
            name: {metric: float(means[m, s]) for m, metric in enumerate(("GNSDR", "GSIR", "GSAR", "SDR"))}
            for s, name in enumerate(self.sources)
        }


def mean_gnsdr(scores: Mapping[str, Mapping[str, float]]) -> float:
    """The selection criterion: GNSDR averaged over sources."""
    return float(np.mean([metrics["GNSDR"] for metrics in scores.values()]))
