"""Separation quality of a loaded model on a dataset, scored by the evaluation package."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

from sepframework.datasets import detect_layout, iter_tracks
from sepframework.evaluation import get_evaluator
from sepframework.interfaces import SeparationError, Separator

#: The dataset-level number of each metric shown in tables and plots.
HEADLINE = {"gnsdr": "GNSDR", "v4": "SDR", "sisdr": "SI-SDR"}


def default_metric(dataset: str | Path) -> str:
    """GNSDR for the MIR-1K layout (as in its literature), BSS Eval v4 for folders of stems."""
    return "gnsdr" if detect_layout(dataset) == "mir1k" else "v4"


def score_dataset(model: Separator, dataset: str | Path, metric: str, limit: int | None = None) -> dict[str, Any]:
    """Separate the first ``limit`` tracks (sorted by name; all when ``None``) and score them.

    Returns ``{"metric", "tracks", "scores": {source: {aggregate: dB}}}`` where the
    aggregates are those of the metric's accumulator (e.g. GNSDR, GSIR, GSAR, GSDR).
    """
    evaluator = get_evaluator(metric)
    totals = evaluator.accumulator()
    for track in islice(iter_tracks(dataset), limit):
        estimates = model.separate(track.mixture, track.sample_rate)
        try:
            scores = evaluator.evaluate(track.sources, {name: estimates[name] for name in track.sources},
                                        track.sample_rate)
        except (KeyError, SeparationError) as error:
            raise SeparationError(f"track {track.name}: cannot score ({error})") from None
        totals.add(track.length, scores)
    if not len(totals):
        raise SeparationError(f"{dataset}: no track to score")
    return {"metric": metric, "tracks": len(totals), "scores": totals.result()}
