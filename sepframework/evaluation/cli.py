"""``sep eval``: score one model on a dataset, per track and overall, resuming an interrupted run."""

from __future__ import annotations

import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from sepframework import __version__
from sepframework.cli_options import offline_option
from sepframework.files import output_folder
from sepframework.interfaces import SeparationError
from sepframework.loading import display_name, model_names

#: Folder of the results when --out is not given: ``eval-results/<model>-<dataset>-<metric>``.
DEFAULT_ROOT = Path("eval-results")
#: The per-track record inside the results folder.
LOG_NAME = "tracks.jsonl"


def default_out(model: str, dataset: Path, metric: str) -> Path:
    """``eval-results/<model>-<dataset folder name>-<metric>``, with characters unsafe in file names replaced;
    a model folder (``runs/gru``, ``./runs/gru/``) counts by its own name."""
    name = f"{display_name(model)}-{dataset.resolve().name}-{metric}"
    return DEFAULT_ROOT / re.sub(r"[^\w.+-]+", "_", name).strip("._")


def _settings(model: str, dataset: Path, layout: str, metric: str, implementation: str) -> dict[str, Any]:
    """What makes saved scores reusable: the model and the sha256 of its files (pinned for a
    registry model, hashed now for a model folder, whose weights may be retrained), the
    metric and its implementation, the dataset."""
    from sepframework import model_files, registry

    entry = registry.find(model)
    if entry is not None:
        weights = dict(entry.files)
    elif model not in model_names() and Path(model).is_dir():
        weights = {path.name: model_files.sha256_of(path) for path in model_files.model_folder_files(Path(model))}
    else:
        weights = None  # a plugin without files
    return {"model": model, "weights": weights, "metric": metric,
            "implementation": implementation, "dataset": str(dataset.resolve()), "layout": layout}


def _command_line(model: str, dataset: Path, metric: str, limit: int | None, museval: bool) -> str:
    """The ``sep eval`` command that repeats this evaluation (output options aside)."""
    return shlex.join(["sep", "eval", "--model", model, "--metric", metric, *(["--museval"] if museval else []),
                       *(["--limit", str(limit)] if limit else []), str(dataset)])


@click.command()
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("-m", "--model", "model_name", default=None,
              help="Model name (see `sep models`) or hf://ORG/REPO; default: the bundled default model.")
@click.option("--metric", metavar="v4|gnsdr|sisdr", default=None,
              help="BSS Eval v4 (SiSEC), GNSDR (MIR-1K) or SI-SDR [default: gnsdr for MIR-1K, v4 for stems].")
@click.option("--museval", "use_museval", is_flag=True,
              help="Compute BSS Eval with museval itself, the reference, 10-30x slower; by default the fast "
                   "implementation, which agrees with it within 0.01 dB (below about 140 dB).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Results folder [default: eval-results/<model>-<dataset>-<metric>].")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Score only the first N tracks (sorted by name).")
@click.option("--restart", is_flag=True, help="Discard the scores saved in the results folder and score every track again.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, messages or table, only errors.")
@offline_option
def eval_command(dataset: Path, model_name: str | None, metric: str | None, use_museval: bool, device: str,
                 out: Path | None, limit: int | None, restart: bool, quiet: bool) -> None:
    """Score a model on DATASET, track by track, and report per-track and dataset scores.

    DATASET is a MIR-1K folder (stereo clips: left accompaniment, right vocals), a folder
    of stems (DSD100, MUSDB18-HQ: <track>/vocals.wav and the other stems) or a folder of
    MUSDB18 .stem.mp4 files. Each track is separated whole at its own rate and scored.

    Scores are saved to OUT/tracks.jsonl as each track finishes; running the same command
    again skips the tracks already scored (--restart scores them again). At the end the
    table is printed and OUT/scores.json and OUT/scores.csv are written. Tracks are
    named by their path in DATASET (MIR-1K clips without extension). Tracks that cannot
    be read or separated are reported, the others still scored, and the exit status is
    1; when no track could be scored, no report is written.

    \b
    Examples:
      sep eval --model unet data/mir1k                     # GNSDR, GSIR, GSAR
      sep eval --model gru --metric v4 --limit 10 musdb18/test
      sep eval --model unet --museval data/mir1k          # the reference implementation
    """
    import sepframework
    from sepframework.evaluation import get_evaluator
    from sepframework.evaluation.evaluators import EVALUATORS
    from sepframework.evaluation.report import document, text_table, write_reports
    from sepframework.evaluation.resume import ScoreLog
    from sepframework.evaluation.scoring import dataset_tracks, default_metric, score_tracks

    if metric is not None and metric not in EVALUATORS:  # a malformed command line, before the dataset is read
        raise click.BadParameter(f"unknown metric '{metric}'; available: {', '.join(EVALUATORS)}", param_hint="'--metric'")
    entries = dataset_tracks(dataset)[:limit]
    if not entries:
        raise SeparationError(f"{dataset}: no track to score")
    layout = entries[0].layout
    metric = metric or default_metric(dataset)
    evaluator = get_evaluator(metric, fast=not use_museval)
    implementation = "museval" if use_museval and metric != "sisdr" else "sepframework"
    model = sepframework.load(model_name, device=device)
    name = model_name or sepframework.registry.default_model_name()
    out = out or default_out(name, dataset, metric)
    with output_folder(out):  # removed again if nothing is written into it
        log = ScoreLog.open(out / LOG_NAME, _settings(name, dataset, layout, metric, implementation), restart)
        todo = [entry for entry in entries if entry.name not in log.scored]
        if len(todo) < len(entries) and not quiet:
            tqdm.write(f"resuming: {len(entries) - len(todo)} of {len(entries)} tracks already scored ({log.path})", file=sys.stderr)
        failed = []
        with tqdm(total=len(todo), unit="track", disable=quiet or not sys.stderr.isatty(), leave=False) as bar:
            for score in score_tracks(model, todo, evaluator):
                if score.error is None:
                    log.append(score)
                else:
                    failed.append(score)
                    tqdm.write(f"error: {score.error}", file=sys.stderr)
                bar.update()
        scored = [log.scored[entry.name] for entry in entries if entry.name in log.scored]
        if not scored:
            raise SeparationError(f"no track could be scored ({len(failed)} failed); no report written")
        header = {"sepframework": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "command": _command_line(name, dataset, metric, limit, use_museval), **log.settings, "limit": limit}
        report = document(header, scored, failed, evaluator)
        paths = write_reports(report, out)
    if not quiet:
        click.echo(text_table(report))
        click.echo(f"scores: {paths[0]}, {paths[1]}")
    if failed:
        click.echo(f"{len(failed)} of {len(entries)} track(s) failed", err=True)
        raise SystemExit(1)
