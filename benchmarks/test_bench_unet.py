"""Speed and memory of the shipped ``unet`` model (issue target on 2 CPU cores).

A 3-minute 44.1 kHz stereo 16-bit WAV is separated end to end (decode, resample to
16 kHz, STFT, U-Net, iSTFT, resample back, write two stems): 50x real time or faster,
i.e. at most 3.6 s. ``test_separate_file`` times the library call with the model loaded;
``test_sep_run_command`` times the whole ``sep run`` process (interpreter start, imports,
model loading included) and its peak memory.

Run with ``make bench`` (or ``pytest benchmarks/test_bench_unet.py --benchmark-enable -s``);
real-time factors and memory are in each result's ``extra_info``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sepframework.model_files import read_config, sha256_of
from sepframework.pipeline import OutputSpec, separate_file
from sep_unet.model import UNetSeparator

SONG_SECONDS = 180
SONG_RATE = 44100
MODEL_DIR = Path(__file__).resolve().parents[1] / "registry" / "unet"
#: ``sep ARGS`` that reports its own peak memory (``VmHWM``: the child's ``ru_maxrss``
#: would include the size of this forking test process).
SEP_REPORTING_PEAK = """
import atexit, sys
from sepframework.bench.measure import peak_rss_mb
atexit.register(lambda: print(f"peak_rss_mb={peak_rss_mb()}", file=sys.stderr))
from sepframework.cli import main
sys.argv = ["sep", *sys.argv[1:]]
main()
"""
FILES = ("model.safetensors", "config.json")


@pytest.fixture(scope="module")
def model_files() -> dict[str, Path]:
    files = {name: MODEL_DIR / name for name in FILES}
    if not all(path.is_file() for path in files.values()):
        pytest.skip("registry/unet is not bundled")
    return files


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 minutes of 44.1 kHz stereo 16-bit noisy tones (content does not change the speed)."""
    path = tmp_path_factory.mktemp("song") / "song.wav"
    rng = np.random.default_rng(0)
    t = np.arange(SONG_SECONDS * SONG_RATE) / SONG_RATE
    tones = 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) + 0.1 * np.sin(2 * np.pi * 1760 * t)
    audio = np.stack([tones, 0.7 * tones]) + 0.02 * rng.standard_normal((2, t.size))
    sf.write(path, audio.T.astype(np.float32), SONG_RATE, subtype="PCM_16")
    return path


def test_separate_file(benchmark, song: Path, tmp_path: Path, model_files: dict[str, Path]) -> None:
    model = UNetSeparator.load(read_config(model_files)["args"], model_files, device="cpu")
    spec = OutputSpec(outdir=tmp_path, overwrite=True)
    paths = benchmark.pedantic(lambda: separate_file(song, model, spec, model_name="unet"),
                               rounds=3, iterations=1, warmup_rounds=1)
    assert sf.info(str(paths["vocals"])).frames == SONG_SECONDS * SONG_RATE
    median = benchmark.stats.stats.median
    benchmark.extra_info.update({"median_s": median, "realtime_factor": SONG_SECONDS / median})
    print(f"\nunet separate_file: {median:.2f} s for {SONG_SECONDS} s, {SONG_SECONDS / median:.0f}x real time")
    assert SONG_SECONDS / median >= 50


def test_sep_run_command(benchmark, song: Path, tmp_path: Path, model_files: dict[str, Path]) -> None:
    """The ``sep run --model unet`` process, through a registry holding only this model."""
    index = {"models": {"unet": {
        "plugin": "unet", "repo_id": "local/unet", "revision": None, "sample_rate": 16000,
        "sources": ["vocals", "accompaniment"],
        "files": {name: sha256_of(path) for name, path in model_files.items()},
    }}}
    (tmp_path / "unet").mkdir()
    for name, path in model_files.items():
        (tmp_path / "unet" / name).symlink_to(path)
    (tmp_path / "index.json").write_text(json.dumps(index))
    env = {**os.environ, "SEP_REGISTRY": str(tmp_path)}
    command = [sys.executable, "-c", SEP_REPORTING_PEAK, "run", "--model", "unet", "-q", "--overwrite",
               "-o", str(tmp_path / "out"), str(song)]

    def run() -> tuple[float, float]:
        start = time.perf_counter()
        process = subprocess.run(command, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        assert process.returncode == 0, process.stderr
        return seconds, float(process.stderr.strip().splitlines()[-1].removeprefix("peak_rss_mb="))

    seconds, peak_mb = benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update({"seconds": seconds, "realtime_factor": SONG_SECONDS / seconds, "peak_rss_mb": peak_mb})
    print(f"\nsep run --model unet: {seconds:.2f} s ({SONG_SECONDS / seconds:.0f}x real time), peak RSS {peak_mb:.0f} MB")
    assert sf.info(str(tmp_path / "out" / "song" / "vocals.wav")).frames == SONG_SECONDS * SONG_RATE
