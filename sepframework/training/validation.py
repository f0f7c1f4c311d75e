"""Scoring a separator on validation tracks: GNSDR, GSIR and GSAR (BSS Eval v3).

Each track is scored on the whole clip with BSS Eval v3 ``bss_eval_sources``; the
global values are means over tracks weighted by their length. NSDR is the SDR of the
estimate minus the SDR of the unprocessed mixture taken as the estimate. Multichannel
tracks are scored on their channel mean: the numbers of ``sep eval --metric gnsdr``
(:class:`~sepframework.evaluation.evaluators.GNSDR`), computed faster for repeated use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from sepframework.datasets import Track
from sepframework.evaluation.aggregate import LengthWeightedMeans
from sepframework.evaluation.bss_fast import BssEval
from sepframework.evaluation.evaluators import check_bss_references
from sepframework.interfaces import SeparationError, Separator


class NonFiniteOutput(SeparationError):
    """The separator gave NaN or infinite samples: a diverged model, which has no score."""


class Validator:
    """Scores separators on fixed ``tracks`` at the models' rate.

    The BSS Eval factorisation of every track's references and the mixtures' own SDRs
    are computed once, so each call costs one projection per track. Tracks BSS Eval cannot
    score (a silent source, too short) are left out and listed in :attr:`left_out` with the
    reason; a clear error when none is left.
    """

    def __init__(self, tracks: Sequence[Track], sources: Sequence[str]) -> None:
        self.sources = tuple(sources)
        #: ``"track: reason"`` of each track left out.
        self.left_out: list[str] = []
        self.tracks: list[Track] = []
        self.evaluators: list[BssEval] = []
        for track in tracks:
            references = np.stack([_mono(track.sources[name]) for name in self.sources])
            try:
                check_bss_references(self.sources, references)
                if not np.any(references.sum(axis=0)):  # sources that cancel out
                    raise SeparationError("the mixture is silent")
            except SeparationError as error:
                self.left_out.append(f"{track.name}: {error}")
            else:
                self.tracks.append(track)
                self.evaluators.append(BssEval(references))
        if not self.tracks:
            raise SeparationError(f"no validation track can be scored ({'; '.join(self.left_out)})")
        self.mixture_sdr = [
            evaluator.sources(np.broadcast_to(_mono(track.mixture), evaluator.references.shape))["SDR"]
            for track, evaluator in zip(self.tracks, self.evaluators)
        ]

    def __call__(self, separator: Separator) -> dict[str, dict[str, float]]:
        """``{source: {"GNSDR", "GSIR", "GSAR", "GSDR"}}`` (dB, length-weighted means);
        :class:`NonFiniteOutput` where the separator's output has no finite score."""
        means = LengthWeightedMeans()
        for track, evaluator, mixture_sdr in zip(self.tracks, self.evaluators, self.mixture_sdr):
            if track.sample_rate != separator.sample_rate:
                raise ValueError(f"{track.name} is at {track.sample_rate} Hz, the model at {separator.sample_rate} Hz")
            estimates = separator.separate_block(track.mixture)
            if not all(np.isfinite(estimates[name]).all() for name in self.sources):
                raise NonFiniteOutput(f"the model gives NaN or infinite samples for {track.name}")
            scores = evaluator.sources(np.stack([_mono(estimates[name]) for name in self.sources]))
            if not np.isfinite(scores["SDR"]).all():
                raise NonFiniteOutput(f"the model's estimates for {track.name} have no finite BSS Eval score "
                                      "(a silent source)")
            means.add(track.length / track.sample_rate, {
                name: {"NSDR": scores["SDR"][s] - mixture_sdr[s], "SIR": scores["SIR"][s],
                       "SAR": scores["SAR"][s], "SDR": scores["SDR"][s]}
                for s, name in enumerate(self.sources)
            })
        return means.result()


def _mono(audio: np.ndarray) -> np.ndarray:
    """The channel mean of (channels, samples) audio, as (1, samples)."""
    return audio.mean(axis=0, keepdims=True)


def mean_gnsdr(scores: Mapping[str, Mapping[str, float]]) -> float:
    """The selection criterion: GNSDR averaged over sources."""
    return float(np.mean([metrics["GNSDR"] for metrics in scores.values()]))
