"""Shared fixtures: small real audio files and a local test model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Caches written by the code under test (``SEP_CACHE_DIR``) go to a temporary folder, not ``~/.cache``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEP_CACHE_DIR", str(tmp_path_factory.mktemp("sep-cache")))
        yield


def mir1k_dir() -> Path:
    """The MIR-1K training split beside the repository (env ``SEP_MIR1K`` overrides)."""
    return Path(os.environ.get("SEP_MIR1K", Path(__file__).resolve().parents[2] / "shared/data/mir1k"))


@pytest.fixture
def mir1k() -> Path:
    """Path of the MIR-1K data; skips the test when it is not available."""
    path = mir1k_dir()
    if not (path / "train").is_dir():
        pytest.skip(f"MIR-1K data not found at {path} (set SEP_MIR1K)")
    return path


def tone_mix(seconds: float, rate: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    """A deterministic test signal: two tones plus a little noise, (channels, samples)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    base = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 1500 * t)
    audio = np.stack([base * (1 - 0.2 * c) for c in range(channels)]) + 0.01 * rng.standard_normal((channels, t.size))
    return audio.astype(np.float32)


@pytest.fixture
def write_wav(tmp_path: Path):
    """Write a test signal as a float WAV file and return its path."""

    def write(name: str, seconds: float = 3.0, rate: int = 44100, channels: int = 2) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, tone_mix(seconds, rate, channels).T, rate, subtype="FLOAT")
        return path

    return write
