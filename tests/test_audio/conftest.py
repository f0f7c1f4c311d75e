"""Test signals and encoders shared by the audio tests."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy import signal


def music(seconds: float, rate: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Tones that differ per channel plus a little noise, float32 (channels, samples), peak < 0.6."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    tones = [0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) + 0.2 * np.sin(2 * np.pi * 1300 * t + c) for c in range(channels)]
    return (np.stack(tones) + 0.02 * rng.standard_normal((channels, t.size))).astype(np.float32)


def best_correlation(decoded: np.ndarray, source: np.ndarray, max_lag: int = 4096) -> tuple[float, int]:
    """Highest normalised correlation of the first channels over lags |lag| <= ``max_lag``, and that lag.

    Lossy codecs delay and pad the signal, so the decoded audio is compared at its best lag.
    """
    a, b = decoded[0].astype(np.float64), source[0].astype(np.float64)
    correlation = signal.correlate(a, b, mode="full", method="fft")
    lags = signal.correlation_lags(a.size, b.size, mode="full")
    within = np.abs(lags) <= max_lag
    best = int(np.argmax(correlation[within]))
    return float(correlation[within][best] / (np.linalg.norm(a) * np.linalg.norm(b))), int(lags[within][best])


@pytest.fixture
def ffmpeg() -> Callable[..., Path]:
    """``ffmpeg(output, *inputs_and_options)``: run the ffmpeg command line to make a test file."""
    binary = shutil.which("ffmpeg")
    if binary is None:
        pytest.skip("the ffmpeg program is not installed; it makes the MP3/AAC test files")

    def run(output: Path, *arguments: str | Path) -> Path:
        subprocess.run([binary, "-loglevel", "error", "-y", *map(str, arguments), str(output)], check=True)
        return output

    return run
