"""Bounded memory: peak RSS of `separate_file` for a 60-minute input vs. a 1-minute input.

Target (issue 2): the 60-minute peak stays within 200 MB of the 1-minute peak. Each run
happens in a fresh process so the peaks do not mix (peak = ``VmHWM``, see
:func:`sepframework.bench.measure.peak_rss_mb`). Run with `make bench`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

MODELS = ["unet", "gru", "repet-sim"]
RATE = 44100

MEASURE = """
import json, sys, time
import sepframework
from sepframework.bench.measure import peak_rss_mb
from sepframework.pipeline import OutputSpec, separate_file
model = sepframework.load(sys.argv[2], device="cpu")
start = time.perf_counter()
separate_file(sys.argv[1], model, OutputSpec(outdir=sys.argv[3], overwrite=True))
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_rss_mb": peak_rss_mb()}))
"""


def write_long_wav(path: Path, minutes: float) -> Path:
    """A stereo 16-bit WAV of noisy tones, written block by block (never whole in memory)."""
    rng = np.random.default_rng(0)
    block = RATE * 10
    t = np.arange(block) / RATE
    with sf.SoundFile(path, "w", RATE, 2, subtype="PCM_16") as handle:
        for _ in range(int(minutes * 6)):
            tone = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(block)
            handle.write(np.stack([tone, 0.8 * tone], axis=1))
    return path


def peak_rss(path: Path, outdir: Path, model: str) -> dict:
    result = subprocess.run([sys.executable, "-c", MEASURE, str(path), model, str(outdir)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("model", MODELS)
def test_peak_memory_does_not_grow_with_input_length(tmp_path, model, benchmark) -> None:
    short = peak_rss(write_long_wav(tmp_path / "one.wav", 1), tmp_path / "out", model)
    long = benchmark.pedantic(
        lambda: peak_rss(write_long_wav(tmp_path / "sixty.wav", 60), tmp_path / "out", model),
        rounds=1, iterations=1,
    )
    benchmark.extra_info.update({"model": model, "peak_rss_1min_mb": short["peak_rss_mb"],
                                 "peak_rss_60min_mb": long["peak_rss_mb"],
                                 "seconds_60min": long["seconds"]})
    print(f"\n{model}: peak RSS 1 min {short['peak_rss_mb']:.0f} MB, "
          f"60 min {long['peak_rss_mb']:.0f} MB ({long['seconds']:.1f} s)")
    assert long["peak_rss_mb"] - short["peak_rss_mb"] < 200
