"""Aggregating per-track scores into dataset scores.

Every accumulator takes ``add(seconds, scores)`` once per track, where ``scores`` is an
evaluator's ``{source: {metric: value}}`` and ``seconds`` the track's duration (the weight
of length-weighted means: durations, not sample counts, so that tracks at different rates
weigh alike),
and gives ``{source: {metric: value}}`` from :meth:`Accumulator.result`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from sepframework.interfaces import SeparationError


class Accumulator(ABC):
    """Collects per-track scores; all tracks must report the same sources and metrics."""

    def __init__(self) -> None:
        self._durations: list[float] = []
        self._scores: list[dict[str, dict[str, float]]] = []

    def add(self, seconds: float, scores: Mapping[str, Mapping[str, float]]) -> None:
        """Record one track of ``seconds`` duration and its ``{source: {metric: value}}``."""
        if not seconds > 0:
            raise SeparationError(f"track duration must be positive, got {seconds}")
        scores = {source: {metric: float(value) for metric, value in metrics.items()} for source, metrics in scores.items()}
        if self._scores and _layout(scores) != _layout(self._scores[0]):
            raise SeparationError(
                f"track scores have sources/metrics {_layout(scores)}, earlier tracks had {_layout(self._scores[0])}"
            )
        self._durations.append(float(seconds))
        self._scores.append(scores)

    def __len__(self) -> int:
        """Number of tracks added."""
        return len(self._scores)

    def result(self) -> dict[str, dict[str, float]]:
        """The aggregated ``{source: {metric: value}}``; empty before any track was added."""
        if not self._scores:
            return {}
        weights = np.array(self._durations, dtype=np.float64)
        return {
            source: {
                self._label(metric): float(self._reduce(np.array([track[source][metric] for track in self._scores]), weights))
                for metric in metrics
            }
            for source, metrics in self._scores[0].items()
        }

    @abstractmethod
    def _reduce(self, values: np.ndarray, weights: np.ndarray) -> float:
        """Aggregate one metric's values over tracks (``weights``: track durations)."""

    def _label(self, metric: str) -> str:
        """Name of the aggregated metric."""
        return metric


class MedianOverTracks(Accumulator):
    """Median over tracks, ignoring NaN (SiSEC / MUSDB18 with BSS Eval v4 per-track medians)."""

    def _reduce(self, values: np.ndarray, weights: np.ndarray) -> float:
        return _nan_safe(np.nanmedian, values)


class MeanOverTracks(Accumulator):
    """Mean over tracks, ignoring NaN (e.g. average SI-SDR)."""

    def _reduce(self, values: np.ndarray, weights: np.ndarray) -> float:
        return _nan_safe(np.nanmean, values)


class LengthWeightedMeans(Accumulator):
    """Means over tracks weighted by their length, named with a ``G`` prefix: the GNSDR, GSIR,
    GSAR (and GSDR) of the MIR-1K literature from per-track NSDR, SIR, SAR (and SDR)."""

    def _reduce(self, values: np.ndarray, weights: np.ndarray) -> float:
        return float(np.average(values, weights=weights))

    def _label(self, metric: str) -> str:
        return "G" + metric


def _layout(scores: Mapping[str, Mapping[str, float]]) -> dict[str, list[str]]:
    return {source: sorted(metrics) for source, metrics in scores.items()}


def _nan_safe(statistic: Callable[[np.ndarray], Any], values: np.ndarray) -> float:
    """``statistic`` of ``values``, NaN (without a warning) when all are NaN."""
    return float(statistic(values)) if not np.all(np.isnan(values)) else float("nan")
