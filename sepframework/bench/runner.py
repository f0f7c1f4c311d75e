"""Running the benchmark: models checked and fetched, then one fresh worker process per job.

Runs are interleaved (run 1 of every model, then run 2, ...) so that a change in machine
load affects every model alike. Quality, being deterministic, is scored once per model,
at the end of its last run, after that run's memory peak was recorded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sepframework.bench.results import ModelResult, aggregate
from sepframework.loading import locate


@dataclass(frozen=True)
class Plan:
    """What to measure: models x devices, ``repeat`` runs on ``song``, quality when ``dataset``."""

    models: tuple[str, ...]
    devices: tuple[str, ...]
    song: Path
    repeat: int
    dataset: Path | None = None
    metric: str | None = None
    limit: int | None = None


def prepare_models(names: Sequence[str]) -> None:
    """Check that every model exists (a registry entry, a plugin or a model folder) and fetch
    its files now, so no load time includes a download."""
    for name in names:
        locate(name)


def run_worker(job: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run ``job`` in a fresh interpreter; its result, or ``{"error": ...}`` when it failed."""
    job_file, result_file = workdir / "job.json", workdir / "result.json"
    result_file.unlink(missing_ok=True)
    job_file.write_text(json.dumps({**job, "result": str(result_file)}))
    done = subprocess.run([sys.executable, "-m", "sepframework.bench.worker", str(job_file)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result_file.exists():
        return json.loads(result_file.read_text())
    lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
    return {"error": f"the worker process failed: {lines[-1]}"}


def run_plan(plan: Plan, workdir: Path, progress: bool = False) -> list[ModelResult]:
    """Measure every model on every device as ``plan`` says; a model that fails keeps its error.

    Job files and the separated stems go to ``workdir``.
    """
    pairs = [(model, device) for device in plan.devices for model in plan.models]
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {pair: [] for pair in pairs}
    errors: dict[tuple[str, str], str] = {}
    quality = {"dataset": str(plan.dataset), "metric": plan.metric, "limit": plan.limit} if plan.dataset else None
    with tqdm(total=len(pairs) * plan.repeat, disable=not progress, unit="run", leave=False) as bar:
        for index in range(plan.repeat):
            last = index == plan.repeat - 1
            for model, device in pairs:
                bar.set_description(f"{model} on {device}: run {index + 1}/{plan.repeat}"
                                    + (" and quality" if last and quality else ""))
                if (model, device) not in errors:
                    result = run_worker({"model": model, "device": device, "song": str(plan.song),
                                         "scratch": str(workdir / "stems"), "quality": quality if last else None},
                                        workdir)
                    if "error" in result:
                        errors[model, device] = result["error"]
                    else:
                        runs[model, device].append(result)
                bar.update()
    return [aggregate(model, device, runs[model, device], errors.get((model, device))) for model, device in pairs]
