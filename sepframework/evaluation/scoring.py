"""Scoring a model on a dataset, track by track: the loop shared by ``sep eval`` and ``sep bench``.

:func:`score_tracks` separates and scores tracks one at a time and yields a
:class:`TrackScore` for each, a failed one included, so a caller can save, report or
stop after any track; :func:`aggregate` turns scores into dataset scores and
:func:`score_dataset` does both, listing the tracks that failed as ``sep eval`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sepframework.datasets import Track, TrackEntry, detect_layout, find_tracks
from sepframework.evaluation.aggregate import Accumulator
from sepframework.evaluation.evaluators import get_evaluator
from sepframework.interfaces import Evaluator, SeparationError, Separator

#: Per-track scores: ``{source: {metric: dB}}``.
Scores = dict[str, dict[str, float]]
#: The dataset-level number of each metric shown in tables and plots.
HEADLINE = {"gnsdr": "GNSDR", "v4": "SDR", "sisdr": "SI-SDR"}


def dataset_tracks(dataset: str | Path) -> list[TrackEntry]:
    """The tracks of ``dataset`` (see :func:`~sepframework.datasets.find_tracks`), each named
    by its path relative to the dataset folder, without extension (``a/clip`` for
    ``a/clip.flac``), so clips of one name in different subfolders stay apart."""
    root = Path(dataset)
    entries = [replace(entry, name=entry.path.relative_to(root).with_suffix("").as_posix())
               if entry.layout == "mir1k" else entry for entry in find_tracks(root)]
    paths: dict[str, Path] = {}
    for entry in entries:
        if entry.name in paths:
            raise SeparationError(f"{paths[entry.name]} and {entry.path} are both track {entry.name}: keep one of them")
        paths[entry.name] = entry.path
    return entries


def default_metric(dataset: str | Path) -> str:
    """GNSDR for the MIR-1K layout (as in its literature), BSS Eval v4 for stems (folders or ``.stem.mp4``)."""
    return "gnsdr" if detect_layout(dataset) == "mir1k" else "v4"


@dataclass(frozen=True)
class TrackScore:
    """The outcome of one track: its scores, or why it could not be scored."""

    name: str
    #: Samples per channel and sample rate (0 when the track could not be read).
    length: int
    sample_rate: int
    scores: Scores | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_json` reads it back."""
        return {"track": self.name, "length": self.length, "sample_rate": self.sample_rate,
                "scores": self.scores, "error": self.error}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrackScore:
        """The score saved by :meth:`to_json`."""
        scores = data.get("scores")
        return cls(str(data["track"]), int(data["length"]), int(data["sample_rate"]),
                   {source: {metric: float(value) for metric, value in metrics.items()} for source, metrics in scores.items()}
                   if scores is not None else None, data.get("error"))


def score_track(model: Separator, track: Track, evaluator: Evaluator) -> Scores:
    """Separate ``track``'s mixture with ``model`` and score every source of the track."""
    estimates = model.separate(track.mixture, track.sample_rate)
    try:
        return evaluator.evaluate(track.sources, {name: estimates[name] for name in track.sources}, track.sample_rate)
    except (KeyError, SeparationError) as error:
        raise SeparationError(f"cannot score ({error})") from None


def score_tracks(model: Separator, entries: Iterable[TrackEntry], evaluator: Evaluator) -> Iterator[TrackScore]:
    """Read, separate and score each track of ``entries`` in turn.

    A track that cannot be read, separated or scored yields a :class:`TrackScore` with
    its ``error`` (``"track NAME: why"``) and the next track is tried.
    """
    for entry in entries:
        try:
            track = entry.load()
            scores = score_track(model, track, evaluator)
        except SeparationError as error:
            yield TrackScore(entry.name, 0, 0, error=f"track {entry.name}: {error}")
            continue
        except (Exception, SystemExit) as error:  # out of memory (torch's is a RuntimeError), a fault of the model's code
            yield TrackScore(entry.name, 0, 0, error=f"track {entry.name}: {type(error).__name__}: {error}".rstrip(": "))
            continue
        yield TrackScore(entry.name, track.length, track.sample_rate, scores)


def aggregate(results: Iterable[TrackScore], totals: Accumulator) -> Scores:
    """The dataset scores of the scored ``results`` (failures left out) from a fresh accumulator,
    e.g. ``evaluator.accumulator()``."""
    for result in results:
        if result.scores is not None:
            totals.add(result.length / result.sample_rate, result.scores)
    return totals.result()


def score_dataset(model: Separator, dataset: str | Path, metric: str, limit: int | None = None) -> dict[str, Any]:
    """Separate the first ``limit`` tracks (sorted by name; all when ``None``) and score them.

    Returns ``{"metric", "tracks", "failed", "scores": {source: {aggregate: dB}}}`` where
    ``tracks`` counts the scored tracks, ``failed`` lists the errors of those that could
    not be scored (as ``sep eval`` does, they do not stop the others), and the aggregates
    are those of the metric's accumulator (e.g. GNSDR, GSIR, GSAR, GSDR). Raises
    :class:`SeparationError` when no track could be scored.
    """
    evaluator = get_evaluator(metric)
    results, failed = [], []
    for result in score_tracks(model, dataset_tracks(dataset)[:limit], evaluator):
        if result.error is not None:
            failed.append(result.error)
        else:
            results.append(result)
    if not results:
        raise SeparationError(failed[0] if failed else f"{dataset}: no track to score")
    return {"metric": metric, "tracks": len(results), "failed": failed,
            "scores": aggregate(results, evaluator.accumulator())}
