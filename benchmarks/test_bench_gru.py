"""Speed of the GRU models (issue targets on 2 CPU cores).

* Batch: a 3-minute 44.1 kHz stereo 16-bit WAV separated end to end by ``separate_file``
  (decode, resample, STFT, network, iSTFT, resample back, write two stems): 200x real
  time or faster, i.e. at most 0.9 s.
* Streaming: compute time of ``Streamer.process`` per 64 ms block, on one thread as
  ``sep stream`` runs: under 5 ms.

Run with ``make bench`` (or ``pytest benchmarks/test_bench_gru.py --benchmark-enable``);
the medians and real-time factors are in each result's ``extra_info``.
"""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np
import pytest
import soundfile as sf
import torch

from sepframework.model_files import read_config
from sepframework.cpu_threads import limit_cpu_threads
from sepframework.pipeline import OutputSpec, separate_file
from sepframework.streaming import Streamer
from sep_gru.model import WEIGHTS_FILE, GRUSeparator

SONG_SECONDS = 180
SONG_RATE = 44100
REGISTRY = Path(__file__).resolve().parents[1] / "registry"


def shipped_model(name: str) -> GRUSeparator:
    """A shipped registry model loaded from its bundled files (no index entry needed)."""
    files = {filename: REGISTRY / name / filename for filename in (WEIGHTS_FILE, "config.json")}
    if not all(path.is_file() for path in files.values()):
        pytest.skip(f"registry/{name} is not bundled")
    return GRUSeparator.load(read_config(files)["args"], files, device="cpu")


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 minutes of 44.1 kHz stereo 16-bit noisy chords (content does not change the speed)."""
    path = tmp_path_factory.mktemp("song") / "song.wav"
    rng = np.random.default_rng(0)
    t = np.arange(SONG_SECONDS * SONG_RATE) / SONG_RATE
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 880.0))
    audio = np.stack([chord, 0.8 * chord]) + 0.02 * rng.standard_normal((2, t.size))
    sf.write(path, audio.T.astype(np.float32), SONG_RATE, subtype="PCM_16")
    return path


@pytest.mark.parametrize("name", ["gru", "gru-stream"])
def test_batch_separation_of_a_3_minute_song(benchmark, song: Path, tmp_path: Path, name: str) -> None:
    model = shipped_model(name)
    spec = OutputSpec(outdir=tmp_path, overwrite=True)
    paths = benchmark.pedantic(lambda: separate_file(song, model, spec, model_name=name),
                               rounds=5, iterations=1, warmup_rounds=1)
    assert sf.info(str(paths["vocals"])).frames == SONG_SECONDS * SONG_RATE
    median = benchmark.stats.stats.median
    benchmark.extra_info.update({"model": name, "median_s": median, "realtime_factor": SONG_SECONDS / median})


@pytest.fixture
def one_thread():
    """The thread setting of ``sep stream`` (one CPU thread, see ``streaming_cli``), undone afterwards."""
    threads = torch.get_num_threads(), numba.get_num_threads()
    limit_cpu_threads(1)
    yield
    torch.set_num_threads(threads[0])
    numba.set_num_threads(threads[1])


@pytest.mark.parametrize("rate", [16000, 44100])
def test_streaming_compute_per_64_ms_block(benchmark, one_thread, rate: int) -> None:
    model = shipped_model("gru-stream")
    block_samples = round(0.064 * rate)
    streamer = Streamer(model, channels=2, sample_rate=rate)
    blocks = iter(0.1 * np.random.default_rng(0).standard_normal((10_000, 2, block_samples)).astype(np.float32))
    streamer.process(next(blocks))
    out = benchmark.pedantic(lambda: streamer.process(next(blocks)), rounds=500, iterations=1, warmup_rounds=20)
    assert out["vocals"].shape[0] == 2
    benchmark.extra_info.update({"rate": rate, "block_samples": block_samples,
                                 "median_ms": 1000 * benchmark.stats.stats.median,
                                 "latency_ms": 1000 * streamer.latency_samples / model.sample_rate})
