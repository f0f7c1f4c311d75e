"""One benchmark job in a fresh interpreter: ``python -m sepframework.bench.worker JOB.json``.

A fresh process per job keeps load times cold and memory peaks separate between models
and runs. The job file is a JSON object naming the ``model``, the ``device``, the
``song`` to separate, a ``scratch`` folder for the stems (written to a fresh folder in it,
deleted after the timing), optionally ``quality``
(``dataset``, ``metric``, ``limit``) and where to write the ``result``: a JSON object of
measurements, or ``{"error": message}`` for a user-facing error.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import sepframework
from sepframework.allocator import keep_freed_memory
from sepframework.audio import audio_info, open_reader, read_audio, resample
from sepframework.bench.measure import gpu_name, gpu_peak_mb, peak_rss_mb, reset_gpu_peak, timed
from sepframework.engine import plan_segments
from sepframework.evaluation.scoring import score_dataset
from sepframework.interfaces import SeparationError, Separator
from sepframework.pipeline import OutputSpec, separate_file
from sepframework.streaming import Streamer

#: Seconds of the input separated once before timing (JIT compilation, allocator warm-up).
WARMUP_SECONDS = 2.0
#: Streaming is timed on blocks of this length, fed at the input's rate ...
STREAM_BLOCK_SECONDS = 0.064
#: ... over at most this much of the input.
STREAM_SECONDS = 20.0


def _warm_up(model: Separator, song: Path) -> float:
    """Separate the first seconds of ``song`` once; returns how long that took."""
    with open_reader(song) as reader:
        head = next(reader.blocks(int(WARMUP_SECONDS * reader.sample_rate)))
        audio = resample(head, reader.sample_rate, model.sample_rate)
    return timed(lambda: model.separate_block(audio), model.device)[1]


def _network_seconds(model: Separator, song: Path) -> float:
    """Time of ``separate_block`` alone over ``song`` at the model's rate, in the engine's segments."""
    audio, _ = read_audio(song, model.sample_rate)
    segment, _ = plan_segments(model, None)
    return sum(timed(lambda start=start: model.separate_block(audio[:, start : start + segment]), model.device)[1]
               for start in range(0, audio.shape[1], segment))


def measure_streaming(model: Separator, song: Path) -> dict[str, Any] | None:
    """Latency of live separation, or ``None`` for a model that cannot stream.

    ``algorithmic_ms`` is the model's own delay (its analysis window); ``compute_ms`` and
    ``compute_p95_ms`` the median and 95th percentile of the time :meth:`Streamer.process`
    takes per ``block_ms`` block of the input (a block must be done before the next arrives),
    on one CPU thread as ``sep stream`` computes.
    """
    from sepframework.cpu_threads import one_cpu_thread  # here: it imports PyTorch, part of the timed load

    with open_reader(song) as reader, one_cpu_thread():
        try:
            streamer = Streamer(model, reader.channels, reader.sample_rate)
        except SeparationError:
            return None
        block = round(STREAM_BLOCK_SECONDS * reader.sample_rate)
        times = []
        for samples in reader.blocks(block):
            if samples.shape[1] < block or len(times) * block >= STREAM_SECONDS * reader.sample_rate:
                break
            times.append(timed(lambda samples=samples: streamer.process(samples), model.device)[1])
        rate = reader.sample_rate
    if not times:
        raise SeparationError(f"{song} is too short to time streaming (less than {STREAM_BLOCK_SECONDS} s)")
    return {
        "algorithmic_ms": 1000 * streamer.latency_samples / model.sample_rate,
        "block_ms": 1000 * block / rate,
        "compute_ms": 1000 * float(np.median(times)),
        "compute_p95_ms": 1000 * float(np.percentile(times, 95)),
    }


def measure_speed(model: Separator, name: str, song: Path, scratch: Path) -> dict[str, Any]:
    """Real-time factors, peak memory and streaming latency of the loaded ``model``.

    The song is separated twice: ``end_to_end_s`` is the first time, what ``sep run``
    takes for one song; ``next_song_s`` the second, what each further song of a ``sep
    run`` with several inputs takes (the process's memory is then already mapped). Peak
    memory is read right after these runs, before the network-alone timing holds the
    whole input in memory: it is what ``sep run`` needs.
    """
    device = model.device
    warmup_s = _warm_up(model, song)
    reset_gpu_peak(device)
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as stems:  # new files, as for a user; deleted untimed

        def separate(folder: str) -> dict[str, Path]:
            return separate_file(song, model, OutputSpec(outdir=Path(stems, folder)), model_name=name)

        paths, end_to_end_s = timed(lambda: separate("first"), device)
        next_song_s = timed(lambda: separate("next"), device)[1]
        peak_rss, peak_gpu = peak_rss_mb(), gpu_peak_mb(device)
        output = audio_info(next(iter(paths.values())))
    return {
        "sample_rate": model.sample_rate,
        "gpu": gpu_name(device),
        "audio_s": output.frames / output.sample_rate,
        "warmup_s": warmup_s,
        "end_to_end_s": end_to_end_s,
        "next_song_s": next_song_s,
        "network_s": _network_seconds(model, song),
        "peak_rss_mb": peak_rss,
        "peak_gpu_mb": peak_gpu,
        "streaming": measure_streaming(model, song),
    }


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Load the job's model and measure it; with ``job["quality"]``, score it afterwards."""
    model, load_s = timed(lambda: sepframework.load(job["model"], job["device"]), job["device"])
    result = {"load_s": load_s, **measure_speed(model, job["model"], Path(job["song"]), Path(job["scratch"]))}
    if job.get("quality"):
        quality = job["quality"]
        try:
            result["quality"] = score_dataset(model, Path(quality["dataset"]), quality["metric"], quality["limit"])
        except SeparationError as error:  # the speed measured stays
            result["quality_error"] = str(error)
    return result


def main(argv: list[str]) -> None:
    """Run the job file ``argv[0]``, writing its result file; user errors become ``{"error": ...}``."""
    keep_freed_memory()  # as the sep command does
    job = json.loads(Path(argv[0]).read_text())
    try:
        result = run_job(job)
    except SeparationError as error:
        result = {"error": str(error)}
    Path(job["result"]).write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
