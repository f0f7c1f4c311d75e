"""``sep bench``: compare models' speed, memory, streaming latency and quality in one run.

Modules: :mod:`~sepframework.bench.command` (the click command), :mod:`.runner` (one fresh
worker process per run), :mod:`.worker` (what a run measures), :mod:`.measure` (stopwatch,
peak RSS, peak GPU memory), :mod:`.song` (the generated test song), :mod:`.results` and
:mod:`.report` (aggregation; table, JSON, Markdown, PNG). Quality is scored by
:func:`sepframework.evaluation.scoring.score_dataset`, the loop ``sep eval`` uses too.
"""

from sepframework.bench.command import bench

__all__ = ["bench"]
