"""Reports of ``sep eval``: dataset statistics, the table on screen, ``scores.json`` and ``scores.csv``."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sepframework.evaluation.aggregate import Accumulator, LengthWeightedMeans, MeanOverTracks, MedianOverTracks
from sepframework.evaluation.scoring import Scores, TrackScore, aggregate
from sepframework.files import write_text_atomically
from sepframework.interfaces import Evaluator
from sepframework.text_tables import aligned

#: Columns of ``scores.csv``: ``row`` is ``track`` (``name``: the track) or ``aggregate``
#: (``name``: the statistic, e.g. ``median``).
CSV_COLUMNS = ("row", "name", "source", "metric", "value")
#: Name of each accumulator's statistic.
STATISTICS: dict[type[Accumulator], str] = {
    LengthWeightedMeans: "length-weighted mean",
    MedianOverTracks: "median",
    MeanOverTracks: "mean",
}


def statistics(results: Sequence[TrackScore], evaluator: Evaluator) -> dict[str, Scores]:
    """Dataset scores by statistic: the metric's own (GNSDR... for ``gnsdr``, SiSEC's median
    of track medians for ``v4``, the mean for ``sisdr``) and, next to a plain mean, the median."""
    accumulators = [evaluator.accumulator()]
    if isinstance(accumulators[0], MeanOverTracks):
        accumulators.append(MedianOverTracks())
    return {STATISTICS[type(accumulator)]: aggregate(results, accumulator) for accumulator in accumulators}


def document(header: dict[str, Any], results: Sequence[TrackScore], failed: Sequence[TrackScore],
             evaluator: Evaluator) -> dict[str, Any]:
    """The JSON report: ``header`` (model, metric, dataset...), per-track scores, aggregates, failures."""
    return {
        **header,
        "tracks": [{"track": r.name, "seconds": r.length / r.sample_rate, "scores": r.scores} for r in results],
        "aggregates": statistics(results, evaluator),
        "failed": [{"track": r.name, "error": r.error} for r in failed],
    }


def csv_text(report: dict[str, Any]) -> str:
    """``scores.csv`` of a :func:`document`: one row per track, source and metric, then the aggregates."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    rows = [("track", track["track"], track["scores"]) for track in report["tracks"]]
    rows += [("aggregate", statistic, scores) for statistic, scores in report["aggregates"].items()]
    for row, name, scores in rows:
        for source, metrics in scores.items():
            for metric, value in metrics.items():
                writer.writerow((row, name, source, metric, "" if value is None or not math.isfinite(value) else repr(value)))
    return buffer.getvalue()


def write_reports(report: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """Write ``scores.json`` (NaN as ``null``) and ``scores.csv`` into ``folder``; their paths."""
    json_path, csv_path = folder / "scores.json", folder / "scores.csv"
    write_text_atomically(json_path, json.dumps(_without_nan(report), indent=2) + "\n")
    write_text_atomically(csv_path, csv_text(report))
    return json_path, csv_path


def text_table(report: dict[str, Any]) -> str:
    """The per-track scores, then each statistic over the tracks, as aligned text tables."""
    blocks = []
    if report["tracks"]:
        blocks.append(_table(["track"], [([track["track"]], track["scores"]) for track in report["tracks"]]))
    count = len(report["tracks"])
    for statistic, scores in report["aggregates"].items():
        if scores:  # no track scored, nothing to aggregate
            blocks.append(f"{statistic} over {count} track(s):\n" + _table([], [([], scores)]))
    return "\n\n".join(blocks)


def _table(keys: list[str], groups: list[tuple[list[str], Scores]]) -> str:
    """Rows of ``key columns, source, metric values``; the keys are written once per group."""
    metrics = list(next(iter(groups[0][1].values())))
    header = [*keys, "source", *metrics]
    rows = [header]
    for names, scores in groups:
        for index, (source, values) in enumerate(scores.items()):
            shown = names if index == 0 else [""] * len(names)
            rows.append([*shown, source, *(_number(values[metric]) for metric in metrics)])
    return "\n".join(aligned(rows, right_from=len(keys) + 1))


def _number(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "-"


def _without_nan(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by ``None`` (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nan(item) for item in value]
    return value

