"""``sep bench``: the command line, from options to reports."""

from __future__ import annotations

import math
import os
import platform
import shlex
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import click

from sepframework import __version__
from sepframework.audio import audio_info
from sepframework.bench.report import errors, report_paths, text_table, unscored, write_reports
from sepframework.bench.results import ModelResult
from sepframework.bench.runner import Plan, prepare_models, run_plan
from sepframework.bench.song import write_song
from sepframework.evaluation import EVALUATORS
from sepframework.evaluation.scoring import dataset_tracks, default_metric
from sepframework.cli_options import offline_option
from sepframework.files import output_folder
from sepframework.interfaces import SeparationError
from sepframework.loading import resolve_device

#: Seconds of generated test song when neither --duration nor --input is given.
DEFAULT_DURATION = 180.0
#: Seconds of the shortest song timed: shorter ones time little but fixed overheads,
#: and one shorter than a sample at the model's rate nothing at all.
MIN_DURATION = 1.0
#: Longest generated song: 2 hours, a long DJ set (longer only costs disk and time).
MAX_DURATION = 7200.0


def _names(value: str, option: str, example: str) -> tuple[str, ...]:
    """The comma-separated, de-duplicated names of ``value``; an error when there are none."""
    names = tuple(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))
    if not names:
        raise SeparationError(f"{option} needs at least one name, e.g. {option} {example}")
    return names


def _command_line(plan: Plan, duration: float | None, input_path: Path | None) -> str:
    """The ``sep bench`` command that repeats this measurement (output options aside)."""
    parts = ["sep", "bench", "--models", ",".join(plan.models), "--device", ",".join(plan.devices)]
    parts += ["--input", str(input_path)] if input_path else ["--duration", f"{duration:g}"]
    if plan.dataset is not None:
        parts += ["--dataset", str(plan.dataset), "--metric", str(plan.metric)]
        parts += ["--limit", str(plan.limit)] if plan.limit else []
    return shlex.join([*parts, "--repeat", str(plan.repeat)])


def _machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": metadata.version("torch"),
    }


def _caption(plan: Plan, results: list[ModelResult], audio: str, command: str, load: tuple[float, float]) -> str:
    """What the Markdown table shows and how it was measured."""
    gpus = sorted({result.gpu for result in results if result.gpu})
    where = f"{os.cpu_count()} CPU cores" + (f" and {', '.join(gpus)}" if gpus else "")
    kept = {len(result.rtf_end_to_end.values) for result in results if result.rtf_end_to_end is not None}
    runs = "One run" if plan.repeat == 1 else f"Median (min–max) of {plan.repeat} runs"
    if kept != {plan.repeat}:
        runs = f"Median (min–max) of up to {plan.repeat} runs (fewer where a model failed: see below)"
    text = (f"{runs}, each model in a fresh process, on {audio}; "
            f"measured {time.strftime('%Y-%m-%d')} on {where} (load average {load[0]:.1f} before, "
            f"{load[1]:.1f} after). ×RT: seconds of audio separated per second (higher is faster).")
    scored = next((result.quality for result in results if result.quality), None)
    if scored:
        text += f" Quality: {scored['metric']} on {scored['tracks']} track(s) of `{plan.dataset}`."
    return f"{text}\n\nCommand: `{command}`"


@click.command()
@click.option("--models", required=True, help="Comma-separated model names (see `sep models`).")
@click.option("--device", "devices", default="auto", show_default=True,
              help="Comma-separated devices (cpu, cuda, auto); every model is measured on each.")
@click.option("--duration", type=click.FloatRange(min=MIN_DURATION, max=MAX_DURATION), default=None,
              help=f"Seconds of generated 44.1 kHz stereo test song to separate [default: {DEFAULT_DURATION:g}].")
@click.option("--input", "input_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=f"Time this audio file (at least {MIN_DURATION:g} s) instead of a generated song.")
@click.option("--dataset", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also score quality on this dataset (MIR-1K layout, folder of stems or of .stem.mp4 files).")
@click.option("--metric", type=click.Choice(sorted(EVALUATORS)), default=None,
              help="Quality metric [default: gnsdr for MIR-1K, v4 for stems].")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Score only the first N tracks of the dataset (sorted by name).")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True,
              help="Speed runs per model; tables give their median, min and max.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("bench-results"),
              show_default=True, help="Folder for the JSON, Markdown and PNG reports.")
@click.option("--name", default=None,
              help="Base name of the report files in --out, without '/' [default: bench-<date>-<time>].")
@click.option("--overwrite", is_flag=True, help="Replace reports of the same name.")
@offline_option
def bench(
    models: str, devices: str, duration: float | None, input_path: Path | None, dataset: Path | None,
    metric: str | None, limit: int | None, repeat: int, out: Path, name: str | None, overwrite: bool,
) -> None:
    """Compare models' speed, memory, streaming latency and quality, measured alike.

    For each model and device, each of --repeat runs happens in a fresh process: load time,
    end-to-end real-time factor of `sep run` on a 44.1 kHz stereo song (decode, resample,
    separate, write), real-time factor of the network alone, peak RSS and GPU memory, and
    streaming latency for models that stream. With --dataset, each model is also
    scored on it, once, at the end of its last run. When no model could be measured,
    no report is written.

    \b
    Example:
      sep bench --models repet-sim,unet,gru,gru-stream --dataset data/mir1k --limit 30
    """
    if input_path is not None and duration is not None:
        raise click.UsageError("give --duration (generated song) or --input FILE, not both")
    if duration is not None and math.isnan(duration):  # FloatRange lets NaN through
        raise click.UsageError(f"--duration must be a number of seconds from {MIN_DURATION:g} to {MAX_DURATION:g}")
    if dataset is None and (metric or limit):
        raise click.UsageError("--metric and --limit score quality and need --dataset")
    if name is not None and (name in ("", "..") or Path(name).name != name):
        raise click.UsageError(f"--name must be a plain file name, without '/' or '..' (the reports go into --out): "
                               f"{name!r}")
    if input_path is not None:
        seconds = audio_info(input_path).duration  # unreadable audio fails now, not in every run
        if seconds is not None and seconds < MIN_DURATION:
            raise SeparationError(f"{input_path} lasts {seconds:.3g} s, too short to time; "
                                  f"give at least {MIN_DURATION:g} s")
    names = _names(models, "--models", "unet,gru")
    resolved = tuple(dict.fromkeys(resolve_device(device) for device in _names(devices, "--device", "cpu")))
    if dataset is not None:
        dataset_tracks(dataset)  # its layout and track names, checked before any timing
        metric = metric or default_metric(dataset)
    prepare_models(names)
    paths = report_paths(out, name or time.strftime("bench-%Y%m%d-%H%M%S"), overwrite)
    progress = sys.stderr.isatty()
    with output_folder(out):  # an --out that cannot be made fails now, not after the measuring
        with tempfile.TemporaryDirectory(prefix="sep-bench-") as folder:
            workdir = Path(folder)
            if input_path is None:
                duration = duration or DEFAULT_DURATION
                if progress:
                    click.echo(f"generating a {duration:g} s test song", err=True)
            song = input_path or write_song(workdir / "song.wav", duration)
            plan = Plan(names, resolved, song, repeat, dataset, metric, limit)
            load_before = os.getloadavg()[0]
            results = run_plan(plan, workdir, progress)
        _report(plan, results, duration, input_path, paths, load_before)


def _report(plan: Plan, results: list[ModelResult], duration: float | None, input_path: Path | None,
            paths: dict[str, Path], load_before: float) -> None:
    """Print the results' table and write the reports; exit status 1 where a part failed."""
    if all(result.rtf_end_to_end is None for result in results):
        for line in errors(results):
            click.echo(f"error: {line}", err=True)
        raise SeparationError("no model could be measured; no report written")
    audio = f"`{input_path}`" if input_path else f"a generated {duration:g} s 44.1 kHz stereo song"
    command = _command_line(plan, duration, input_path)
    document = {
        "sepframework": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command,
        "machine": {**_machine(), "load_average": [load_before, os.getloadavg()[0]]},
        "settings": {"input": str(input_path) if input_path else None, "duration_s": duration, "repeat": plan.repeat,
                     "dataset": str(plan.dataset) if plan.dataset else None, "metric": plan.metric,
                     "limit": plan.limit},
        "results": [result.to_json() for result in results],
    }
    caption = _caption(plan, results, audio, command, tuple(document["machine"]["load_average"]))
    click.echo(text_table(results))  # first: nothing measured is lost if the reports cannot be written
    try:
        write_reports(document, results, caption, paths)
    except OSError as error:
        raise SeparationError(f"the reports cannot be written to {paths['json'].parent} "
                              f"({error.strerror or error}); the table above has the results") from None
    click.echo(f"reports: {paths['json']}, {paths['md']}, {paths['png']}")
    if any(result.error for result in results) or unscored(results):  # as sep eval: a track not scored fails
        raise SystemExit(1)
