"""Benchmark reports: a table on screen, JSON, a Markdown table and a PNG plot of quality against speed."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sepframework.bench.results import ModelResult, Spread
from sepframework.evaluation.scoring import HEADLINE
from sepframework.interfaces import SeparationError
from sepframework.text_tables import aligned

#: File written for each report, by suffix.
REPORT_SUFFIXES = ("json", "md", "png")
#: Shown for a value that was not measured (no GPU, not a streaming model, no dataset).
MISSING = "-"


def report_paths(out: Path, name: str, overwrite: bool) -> dict[str, Path]:
    """``OUT/NAME.json``, ``.md`` and ``.png``; an error if one exists and ``overwrite`` is false."""
    paths = {suffix: out / f"{name}.{suffix}" for suffix in REPORT_SUFFIXES}
    existing = [str(path) for path in paths.values() if path.exists()]
    if existing and not overwrite:
        raise SeparationError(f"{', '.join(existing)} already exists (use --overwrite or another --name)")
    return paths


def _number(value: float) -> str:
    """Three significant figures at most, never in scientific notation."""
    magnitude = abs(value)
    return f"{value:.0f}" if magnitude >= 100 else f"{value:.1f}" if magnitude >= 10 else f"{value:.2f}"


def _spread(spread: Spread | None) -> str:
    """``median (min-max)``, or the median alone when all runs agree or there was one."""
    if spread is None:
        return MISSING
    low, high = _number(spread.min), _number(spread.max)
    return _number(spread.median) if low == high else f"{_number(spread.median)} ({low}–{high})"


def _score(source: str) -> Callable[[ModelResult], str]:
    def cell(result: ModelResult) -> str:
        if result.quality is None:
            return MISSING
        return f"{result.quality['scores'][source][HEADLINE[result.quality['metric']]]:.2f}"

    return cell


def table_rows(results: Sequence[ModelResult]) -> tuple[list[str], list[list[str]]]:
    """Header and one row per result; columns nobody measured (GPU, streaming, quality) are left out."""
    metrics = {result.quality["metric"] for result in results if result.quality}
    metric = HEADLINE[next(iter(metrics))] if len(metrics) == 1 else "quality"
    streams = [result.streaming for result in results if result.streaming]
    block = f"{streams[0].block_ms:.0f} ms " if streams else ""
    columns: list[tuple[str, Callable[[ModelResult], str], bool]] = [
        ("Model", lambda r: r.model, True),
        ("Device", lambda r: r.device, True),
        ("End to end (×RT)", lambda r: _spread(r.rtf_end_to_end), True),
        ("Next songs (×RT)", lambda r: _spread(r.rtf_next_song), True),
        ("Network alone (×RT)", lambda r: _spread(r.rtf_network), True),
        ("Load (s)", lambda r: _spread(r.load_s), True),
        ("Peak RSS (MiB)", lambda r: _spread(r.peak_rss_mb), True),
        ("Peak GPU (MiB)", lambda r: _spread(r.peak_gpu_mb), any(r.peak_gpu_mb for r in results)),
        ("Stream latency (ms)", lambda r: _number(r.streaming.algorithmic_ms) if r.streaming else MISSING,
         bool(streams)),
        (f"Compute per {block}block (ms)", lambda r: _spread(r.streaming.compute_ms) if r.streaming else MISSING,
         bool(streams)),
        ("Block p95 (ms)", lambda r: _spread(r.streaming.compute_p95_ms) if r.streaming else MISSING, bool(streams)),
        (f"Vocals {metric} (dB)", _score("vocals"), bool(metrics)),
        (f"Accompaniment {metric} (dB)", _score("accompaniment"), bool(metrics)),
    ]
    shown = [(title, cell) for title, cell, wanted in columns if wanted]
    return [title for title, _ in shown], [[cell(result) for _, cell in shown] for result in results]


def errors(results: Sequence[ModelResult]) -> list[str]:
    """One line per result with an error: ``MODEL on DEVICE: why``."""
    return [f"{result.model} on {result.device}: {result.error}" for result in results if result.error]


def unscored(results: Sequence[ModelResult]) -> list[str]:
    """One line per track a measured model could not be scored on: ``MODEL on DEVICE: why``."""
    return [f"{result.model} on {result.device}: not scored: {error}"
            for result in results if result.quality for error in result.quality.get("failed", [])]


def text_table(results: Sequence[ModelResult]) -> str:
    """The results as an aligned plain-text table, errors listed below it."""
    header, rows = table_rows(results)
    return "\n".join(aligned([header, *rows]) + [f"error: {error}" for error in errors(results)]
                     + [f"warning: {line}" for line in unscored(results)])


def markdown(results: Sequence[ModelResult], caption: str) -> str:
    """A Markdown table ready for the README, followed by ``caption`` and any errors."""
    header, rows = table_rows(results)
    lines = ["| " + " | ".join(line) + " |" for line in [header, ["---"] * len(header), *rows]]
    lines += ["", caption] + [f"- **failed**: {error}" for error in errors(results)]
    lines += [f"- **track not scored**: {line}" for line in unscored(results)]
    return "\n".join(lines) + "\n"


def plot(results: Sequence[ModelResult], path: Path) -> None:
    """One point per model: vocals quality (or, without a dataset, peak RSS) against end-to-end speed.

    Horizontal bars span the fastest and slowest run.
    """
    from matplotlib.figure import Figure  # Agg canvas: no display needed
    from matplotlib.ticker import FuncFormatter

    measured = [r for r in results if r.rtf_end_to_end is not None]
    scored = [r for r in measured if r.quality is not None]
    if scored:
        metric = HEADLINE[scored[0].quality["metric"]]
        points = [(r, r.quality["scores"]["vocals"][metric]) for r in scored]
        label, title = f"Vocals {metric} (dB, higher is better)", "Quality against speed"
    else:
        points = [(r, r.peak_rss_mb.median) for r in measured]
        label, title = "Peak RSS (MiB, lower is better)", "Memory against speed"
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.subplots()
    for result, y in points:
        rtf = result.rtf_end_to_end
        axes.errorbar([rtf.median], [y], xerr=[[rtf.median - rtf.min], [rtf.max - rtf.median]], fmt="o", capsize=3)
        axes.annotate(f"{result.model} ({result.device})", (rtf.median, y), textcoords="offset points",
                      xytext=(6, 6))
    speeds = [result.rtf_end_to_end.median for result, _ in points]
    if speeds and max(speeds) > 10 * min(speeds):  # log scale only when speeds span decades
        axes.set_xscale("log")
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.set_xlabel("End-to-end speed (× real time, higher is faster)")
    axes.set_ylabel(label)
    axes.set_title(title)
    axes.margins(x=0.15, y=0.15)  # room for the labels
    axes.grid(True, which="both", alpha=0.3)
    figure.savefig(path, dpi=120)


def write_reports(document: dict[str, Any], results: Sequence[ModelResult], caption: str,
                  paths: dict[str, Path]) -> None:
    """Write the JSON ``document``, the Markdown table and the plot to ``paths``."""
    paths["json"].parent.mkdir(parents=True, exist_ok=True)
    paths["json"].write_text(json.dumps(document, indent=2) + "\n")
    paths["md"].write_text(markdown(results, caption))
    plot(results, paths["png"])
