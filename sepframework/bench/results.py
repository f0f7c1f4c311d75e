"""Benchmark results: the spread of repeated runs and one model's aggregated measurements."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Spread:
    """Median, minimum and maximum of a measurement repeated over runs."""

    median: float
    min: float
    max: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """The spread of ``values`` (one per run, at least one)."""
        if not values:
            raise ValueError("a spread needs at least one value")
        return cls(statistics.median(values), min(values), max(values), tuple(values))


@dataclass(frozen=True)
class Streaming:
    """Live-separation latency: the model's algorithmic delay and compute time per block.

    ``compute_ms`` and ``compute_p95_ms`` spread the per-run median and 95th percentile.
    """

    algorithmic_ms: float
    block_ms: float
    compute_ms: Spread
    compute_p95_ms: Spread


@dataclass(frozen=True)
class ModelResult:
    """Everything measured for one model on one device; ``error`` says why a part is missing."""

    model: str
    device: str
    gpu: str | None = None
    sample_rate: int | None = None
    audio_s: float | None = None
    load_s: Spread | None = None
    warmup_s: Spread | None = None
    #: Real-time factors: seconds of audio separated per second of processing (higher is faster).
    rtf_end_to_end: Spread | None = None
    #: The same for the songs after the first of a process (``sep run`` with several inputs).
    rtf_next_song: Spread | None = None
    rtf_network: Spread | None = None
    peak_rss_mb: Spread | None = None
    peak_gpu_mb: Spread | None = None
    streaming: Streaming | None = None
    quality: dict[str, Any] | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The result as plain JSON values (a spread as its median, min, max and values)."""
        return asdict(self)


def aggregate(model: str, device: str, runs: Sequence[Mapping[str, Any]], error: str | None) -> ModelResult:
    """One model's result from its runs (worker results, one of them possibly with quality
    scores or the reason it has none)."""
    if not runs:
        return ModelResult(model, device, error=error)
    quality_error = next((run["quality_error"] for run in runs if run.get("quality_error")), None)
    if quality_error is not None:
        error = "; ".join(filter(None, [error, f"quality not scored: {quality_error}"]))

    def spread(key: str) -> Spread:
        return Spread.of([run[key] for run in runs])

    first = runs[0]
    streams = [run["streaming"] for run in runs if run["streaming"]]
    return ModelResult(
        model=model,
        device=device,
        gpu=first["gpu"],
        sample_rate=first["sample_rate"],
        audio_s=first["audio_s"],
        load_s=spread("load_s"),
        warmup_s=spread("warmup_s"),
        rtf_end_to_end=Spread.of([run["audio_s"] / run["end_to_end_s"] for run in runs]),
        rtf_next_song=Spread.of([run["audio_s"] / run["next_song_s"] for run in runs]),
        rtf_network=Spread.of([run["audio_s"] / run["network_s"] for run in runs]),
        peak_rss_mb=spread("peak_rss_mb"),
        peak_gpu_mb=spread("peak_gpu_mb") if first["peak_gpu_mb"] is not None else None,
        streaming=Streaming(streams[0]["algorithmic_ms"], streams[0]["block_ms"],
                            Spread.of([stream["compute_ms"] for stream in streams]),
                            Spread.of([stream["compute_p95_ms"] for stream in streams])) if streams else None,
        quality=next((run["quality"] for run in runs if run.get("quality")), None),
        error=error,
    )
