"""A resumable record of per-track scores: one JSON line per scored track, on disk as it finishes.

The first line holds the run's settings (model, weights, metric, dataset); each further
line one :class:`~sepframework.evaluation.scoring.TrackScore`. Lines are flushed and
synced as they are written, so an interrupted run loses at most the track it was scoring,
and a run with the same settings continues where the last one stopped. A line cut short
by the interruption is dropped when the record is opened again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sepframework.files import write_text_atomically
from sepframework.evaluation.scoring import TrackScore
from sepframework.interfaces import SeparationError


class ScoreLog:
    """Scores of the tracks finished so far; use :meth:`open` and :meth:`append`."""

    def __init__(self, path: Path, settings: dict[str, Any], scored: dict[str, TrackScore], new: bool) -> None:
        self.path = path
        self.settings = settings
        #: Scored tracks by name (failed tracks are not recorded, so a rerun tries them again).
        self.scored = scored
        #: Whether the first :meth:`append` starts a fresh record at ``path``.
        self._new = new

    @classmethod
    def open(cls, path: Path, settings: dict[str, Any], restart: bool = False) -> ScoreLog:
        """The record at ``path`` for a run with ``settings`` (JSON values).

        A missing record, or with ``restart`` an existing one, is (re)written when the
        first track is recorded: a run that scores nothing leaves ``path`` as it was. An
        existing record written with other settings is an error: its scores cannot be
        mixed with this run's.
        """
        if restart or not path.exists():
            return cls(path, settings, {}, new=True)
        lines = _complete_lines(path)
        try:
            saved = json.loads(lines[0])["settings"] if lines else None
            scored = {}
            for line in lines[1:]:
                score = TrackScore.from_json(json.loads(line))
                scored[score.name] = score
        except (ValueError, KeyError, TypeError, AttributeError):
            raise SeparationError(f"{path} is not a score record of sep eval (use --restart to replace it)") from None
        if saved != settings:
            raise SeparationError(f"{path} holds scores of another run ({_difference(saved, settings)}); "
                                  "use --restart to score again from scratch, or another --out")
        return cls(path, settings, scored, new=False)

    def append(self, score: TrackScore) -> None:
        """Record a scored track, on disk before this returns."""
        if score.scores is None:
            raise ValueError(f"track {score.name} has no scores to record")
        if self._new:
            write_text_atomically(self.path, json.dumps({"settings": self.settings}) + "\n")
            self._new = False
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(json.dumps(score.to_json()) + "\n")
            file.flush()
            os.fsync(file.fileno())
        self.scored[score.name] = score


def _complete_lines(path: Path) -> list[str]:
    """The lines of ``path`` that end in a newline; a cut last line is removed from the file."""
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) < len(data):
        with open(path, "r+b") as file:
            file.truncate(len(complete))
    return [line for line in complete.decode("utf-8", errors="replace").splitlines() if line.strip()]


def _difference(saved: dict[str, Any] | None, settings: dict[str, Any]) -> str:
    """What differs between two settings, e.g. ``metric: saved 'gnsdr', now 'v4'``."""
    if not isinstance(saved, dict):
        return "no settings saved"
    keys = [key for key in {**saved, **settings} if saved.get(key) != settings.get(key)]
    return "; ".join(f"{key}: saved {saved.get(key)!r}, now {settings.get(key)!r}" for key in keys)

