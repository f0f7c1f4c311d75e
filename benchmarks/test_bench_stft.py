"""STFT + iSTFT round trip of 3 minutes of stereo audio: sepframework vs torch vs scipy.

Each group compares the three on the same signal and settings. With
``--benchmark-disable`` every case runs once on one second of audio as a smoke test.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from sepframework.stft import STFT

SECONDS = 180
SMOKE_SECONDS = 1
SETTINGS = {
    "44k-4096/1024": (44_100, 4096, 1024),
    "16k-1024/256": (16_000, 1024, 256),
}


def _sepframework(audio: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    stft = STFT(n_fft=n_fft, hop_length=hop)
    return stft.inverse(stft.forward(audio), audio.shape[1])


def _torch(audio: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    signal = torch.from_numpy(audio)
    window = torch.hann_window(n_fft)
    spec = torch.stft(
        signal, n_fft, hop, window=window, center=True, pad_mode="constant", return_complex=True
    )
    return torch.istft(spec, n_fft, hop, window=window, center=True, length=audio.shape[1]).numpy()


def _scipy(audio: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    _, _, spec = scipy.signal.stft(audio, nperseg=n_fft, noverlap=n_fft - hop, window="hann")
    _, signal = scipy.signal.istft(spec, nperseg=n_fft, noverlap=n_fft - hop, window="hann")
    return signal[:, : audio.shape[1]]


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize(
    "implementation", [_sepframework, _torch, _scipy], ids=["sepframework", "torch", "scipy"]
)
def test_roundtrip(benchmark, setting, implementation):
    sample_rate, n_fft, hop = SETTINGS[setting]
    seconds = SMOKE_SECONDS if benchmark.disabled else SECONDS
    audio = np.random.default_rng(0).uniform(-1, 1, (2, seconds * sample_rate)).astype(np.float32)
    benchmark.group = f"stft+istft {setting}"
    result = benchmark(implementation, audio, n_fft, hop)
    np.testing.assert_allclose(result, audio, atol=1e-4)
