"""The evaluators (``v4``, ``gnsdr``, ``sisdr``) and :func:`get_evaluator`.

Each scores one track, ``{source: array (channels, samples)}`` of references and estimates,
and says how tracks aggregate into a dataset score with :meth:`accumulator`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from sepframework.evaluation.aggregate import Accumulator, LengthWeightedMeans, MeanOverTracks, MedianOverTracks
from sepframework.evaluation.bss import FILTERS_LEN, BssEvalBase
from sepframework.evaluation.sisdr import si_sdr
from sepframework.interfaces import Evaluator, SeparationError, check_layout, check_sample_rate


def _backend(fast: bool) -> type[BssEvalBase]:
    """The fast BSS Eval, or museval (the reference, ~10-30x slower)."""
    if fast:
        from sepframework.evaluation.bss_fast import BssEval

        return BssEval
    from sepframework.evaluation.bss_museval import MusevalBssEval

    return MusevalBssEval


class BssEvalV4(Evaluator):
    """BSS Eval v4 as in SiSEC 2018 / MUSDB18 (``museval.evaluate``, mode v4).

    All sources are scored together (SIR depends on the whole set); per source SDR, ISR,
    SIR and SAR are computed on windows of ``window`` seconds every ``hop`` seconds with
    distortion filters fitted on the whole track, and a track scores the median over its
    windows (NaN and infinite windows left out, as museval's JSON does). Tracks aggregate by
    their median (:class:`MedianOverTracks`).
    """

    name = "v4"

    def __init__(self, fast: bool = True, window: float = 1.0, hop: float = 1.0) -> None:
        if window <= 0 or hop <= 0:
            raise SeparationError(f"window and hop must be positive seconds, got {window} and {hop}")
        self.fast, self.window, self.hop = fast, window, hop

    def frames(
        self, references: Mapping[str, np.ndarray], estimates: Mapping[str, np.ndarray], sample_rate: int
    ) -> dict[str, dict[str, np.ndarray]]:
        """Per-window scores: ``{source: {"SDR", "ISR", "SIR", "SAR": array (windows,)}}``."""
        names, reference, estimate = _stack(references, estimates, sample_rate)
        _check_bss_inputs(names, reference, estimate)
        scores = _backend(self.fast)(reference).images(estimate, int(self.window * sample_rate), int(self.hop * sample_rate))
        return {name: {metric: values[j] for metric, values in scores.items()} for j, name in enumerate(names)}

    def evaluate(
        self, references: Mapping[str, np.ndarray], estimates: Mapping[str, np.ndarray], sample_rate: int
    ) -> dict[str, dict[str, float]]:
        """``{source: {"SDR", "ISR", "SIR", "SAR"}}``: medians over the track's windows (dB)."""
        return {
            name: {metric: _finite_median(values) for metric, values in metrics.items()}
            for name, metrics in self.frames(references, estimates, sample_rate).items()
        }

    def accumulator(self) -> Accumulator:
        """Median over tracks."""
        return MedianOverTracks()


class GNSDR(Evaluator):
    """BSS Eval v3 ``bss_eval_sources`` on whole clips, as in the MIR-1K literature.

    Per source: SDR, SIR, SAR of the estimate and NSDR = SDR - SDR(mixture taken as the
    estimate of every source). All sources are scored together. Tracks aggregate into GNSDR,
    GSIR, GSAR (and GSDR) by length-weighted means (:class:`LengthWeightedMeans`).

    ``channels`` says how multichannel audio is scored: ``"mean"`` (default) scores the
    channel mean, i.e. the mono protocol of MIR-1K; ``"joint"`` uses BSS Eval's
    multichannel distortion filters on all channels at once.
    """

    name = "gnsdr"
    CHANNEL_MODES = ("mean", "joint")

    def __init__(self, fast: bool = True, channels: str = "mean") -> None:
        if channels not in self.CHANNEL_MODES:
            raise SeparationError(f"unknown channels mode '{channels}' (use {' or '.join(self.CHANNEL_MODES)})")
        self.fast, self.channels = fast, channels

    def evaluate(
        self,
        references: Mapping[str, np.ndarray],
        estimates: Mapping[str, np.ndarray],
        sample_rate: int,
        mixture: np.ndarray | None = None,
    ) -> dict[str, dict[str, float]]:
        """``{source: {"SDR", "SIR", "SAR", "NSDR"}}`` in dB. ``mixture`` (channels, samples)
        defaults to the sum of the references (exact for MIR-1K)."""
        names, reference, estimate = _stack(references, estimates, sample_rate)
        mix = reference.sum(axis=0) if mixture is None else _as_audio("mixture", mixture)
        if mix.shape != reference.shape[1:]:
            raise SeparationError(f"the mixture has shape {mix.shape} but the references have shape {reference.shape[1:]}")
        if self.channels == "mean":
            reference, estimate, mix = (x.mean(axis=-2, keepdims=True) for x in (reference, estimate, mix))
        _check_bss_inputs(names, reference, estimate)
        if not _has_sound(mix):
            raise SeparationError("the mixture is silent")
        evaluator = _backend(self.fast)(reference)
        scores = evaluator.sources(estimate)
        baseline = evaluator.sources(np.broadcast_to(mix, reference.shape))
        return {
            name: {
                "SDR": float(scores["SDR"][j]),
                "SIR": float(scores["SIR"][j]),
                "SAR": float(scores["SAR"][j]),
                "NSDR": float(scores["SDR"][j] - baseline["SDR"][j]),
            }
            for j, name in enumerate(names)
        }

    def accumulator(self) -> Accumulator:
        """Length-weighted means: GNSDR, GSIR, GSAR, GSDR."""
        return LengthWeightedMeans()


class SISDR(Evaluator):
    """Scale-invariant SDR per source (:func:`si_sdr`); tracks aggregate by their mean."""

    name = "sisdr"

    def evaluate(
        self, references: Mapping[str, np.ndarray], estimates: Mapping[str, np.ndarray], sample_rate: int
    ) -> dict[str, dict[str, float]]:
        """``{source: {"SI-SDR": dB}}``."""
        names, reference, estimate = _stack(references, estimates, sample_rate)
        return {name: {"SI-SDR": si_sdr(reference[j], estimate[j])} for j, name in enumerate(names)}

    def accumulator(self) -> Accumulator:
        """Mean over tracks."""
        return MeanOverTracks()


EVALUATORS: dict[str, type[Evaluator]] = {cls.name: cls for cls in (BssEvalV4, GNSDR, SISDR)}


def get_evaluator(name: str, fast: bool = True) -> Evaluator:
    """The evaluator called ``name`` (``v4``, ``gnsdr`` or ``sisdr``).

    ``fast`` selects the fast BSS Eval (default) or museval, the reference implementation;
    SI-SDR has a single implementation and ignores it.
    """
    if name not in EVALUATORS:
        raise SeparationError(f"unknown metric '{name}'; available: {', '.join(EVALUATORS)}")
    if name == SISDR.name:
        return SISDR()
    return EVALUATORS[name](fast=fast)


def _as_audio(label: str, audio: np.ndarray) -> np.ndarray:
    """``audio`` as float64 (channels, samples); 1-D arrays are mono."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim == 1:
        audio = audio[None, :]
    check_layout(audio, label)
    if audio.shape[1] == 0:
        raise SeparationError(f"{label} must be shaped (channels, samples) with samples, got shape {audio.shape}")
    if not np.all(np.isfinite(audio)):
        raise SeparationError(f"{label} contains NaN or infinite values")
    return audio


def _stack(
    references: Mapping[str, np.ndarray], estimates: Mapping[str, np.ndarray], sample_rate: int
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Source names (in the references' order) and (sources, channels, samples) arrays of the
    references and the estimates, checked to match."""
    check_sample_rate(sample_rate)
    if not references:
        raise SeparationError("no reference sources given")
    names = list(references)
    missing = [name for name in names if name not in estimates]
    if missing:
        raise SeparationError(f"no estimate for source(s) {', '.join(missing)}: every reference source must be estimated")
    extra = [name for name in estimates if name not in references]
    if extra:
        raise SeparationError(f"no reference for estimated source(s) {', '.join(extra)}")
    reference = [_as_audio(f"reference '{name}'", references[name]) for name in names]
    estimate = [_as_audio(f"estimate '{name}'", estimates[name]) for name in names]
    for name, ref, est in zip(names, reference, estimate, strict=True):
        if ref.shape != reference[0].shape:
            raise SeparationError(f"reference '{name}' has shape {ref.shape} but reference '{names[0]}' has {reference[0].shape}")
        if est.shape != ref.shape:
            raise SeparationError(f"estimate '{name}' has shape {est.shape} but its reference has shape {ref.shape}")
    return names, np.stack(reference), np.stack(estimate)


def _has_sound(audio: np.ndarray) -> bool:
    """museval's test of a non-silent signal: its channel sum is not zero throughout."""
    return bool(np.any(audio.sum(axis=-2) != 0))


def check_bss_references(names: Sequence[str], reference: np.ndarray) -> None:
    """A clear error where BSS Eval cannot score ``reference`` (sources, channels, samples):
    fewer than two sources, a silent one, or fewer samples than twice its distortion filters'
    coefficients (a shorter track scores ratios of 100 dB or infinite, which would swamp a
    dataset's means)."""
    if len(names) < 2:
        raise SeparationError(f"BSS Eval scores sources together and needs at least two, got only {', '.join(names)}")
    sources, channels, samples = reference.shape
    shortest = 2 * FILTERS_LEN * sources * channels
    if samples < shortest:
        raise SeparationError(f"too short to score: {samples} samples, BSS Eval needs at least {shortest} for "
                              f"{sources} sources of {channels} channel(s) (its {FILTERS_LEN}-tap distortion filters)")
    for name, source in zip(names, reference, strict=True):
        if not _has_sound(source):
            raise SeparationError(f"reference '{name}' is silent; BSS Eval needs non-silent references and estimates")


def _check_bss_inputs(names: list[str], reference: np.ndarray, estimate: np.ndarray) -> None:
    """BSS Eval scores these references (:func:`check_bss_references`) and estimates, none silent."""
    check_bss_references(names, reference)
    for name, source in zip(names, estimate, strict=True):
        if not _has_sound(source):
            raise SeparationError(f"estimate '{name}' is silent; BSS Eval needs non-silent references and estimates")


def _finite_median(values: np.ndarray) -> float:
    """Median of the finite values (NaN when there are none)."""
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")
