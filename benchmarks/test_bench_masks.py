"""Ratio masks and their application on 3 minutes of stereo spectrogram: Numba kernels vs NumPy.

The spectrogram is what ``STFT(1024, 256).forward`` gives for 3 minutes of 16 kHz stereo
audio, with two sources. Each group compares the kernel with the plain NumPy expression of
the same result (checked equal). With ``--benchmark-disable`` every case runs once on one
second as a smoke test.
"""

from __future__ import annotations

import numpy as np
import pytest

from sepframework.masks import apply_masks, ratio_masks
from sepframework.stft import STFT

SECONDS = 180
SMOKE_SECONDS = 1
RATE = 16_000
POWER, EPS = 2.0, 1e-8


def _numpy_ratio_masks(estimates: np.ndarray, power: float, eps: float) -> np.ndarray:
    weights = np.abs(estimates) ** power + eps
    return (weights / weights.sum(axis=0)).astype(np.float32)


def _numpy_apply_masks(mix_spec: np.ndarray, masks: np.ndarray) -> np.ndarray:
    return (mix_spec[None] * np.clip(masks, 0.0, 1.0)).astype(np.complex64)


@pytest.fixture
def spectrograms(benchmark) -> tuple[np.ndarray, np.ndarray]:
    """A stereo mixture spectrogram and two magnitude estimates of its sources."""
    seconds = SMOKE_SECONDS if benchmark.disabled else SECONDS
    audio = np.random.default_rng(0).uniform(-1, 1, (2, seconds * RATE)).astype(np.float32)
    mix_spec = STFT(n_fft=1024, hop_length=256).forward(audio)
    magnitude = np.abs(mix_spec)
    estimates = np.stack([0.3 * magnitude, 0.7 * magnitude + 0.01])
    return mix_spec, estimates


@pytest.mark.parametrize("implementation", [ratio_masks, _numpy_ratio_masks], ids=["sepframework", "numpy"])
def test_ratio_masks(benchmark, spectrograms, implementation) -> None:
    _, estimates = spectrograms
    benchmark.group = "ratio masks (power 2), 2 sources, 3 min stereo 16 kHz 1024/256"
    masks = benchmark(implementation, estimates, POWER, EPS)
    np.testing.assert_allclose(masks, _numpy_ratio_masks(estimates, POWER, EPS), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("implementation", [apply_masks, _numpy_apply_masks], ids=["sepframework", "numpy"])
def test_apply_masks(benchmark, spectrograms, implementation) -> None:
    mix_spec, estimates = spectrograms
    masks = ratio_masks(estimates, POWER, EPS)
    benchmark.group = "apply masks, 2 sources, 3 min stereo 16 kHz 1024/256"
    sources = benchmark(implementation, mix_spec, masks)
    np.testing.assert_allclose(sources, _numpy_apply_masks(mix_spec, masks), rtol=1e-6, atol=1e-7)
