"""REPET-SIM (Rafii & Pardo, 2012): a training-free vocal separator.

The accompaniment repeats; the voice does not. For every frame, the frames most similar
to it (cosine similarity of magnitude spectra) are found, and their element-wise median
models the repeating background. The background mask is that model divided by the
mixture magnitude; the vocals get the complement. It needs no weights, so it gives
``sep run`` a working model before any network is trained, and benchmarks a baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numba import njit, prange

from sepframework.interfaces import Separator
from sepframework.masks import apply_masks
from sepframework.stft import STFT


@njit(cache=True, parallel=True)
def repeating_model(
    magnitude: np.ndarray, similarity: np.ndarray, max_neighbours: int, min_distance: int, threshold: float
) -> np.ndarray:
    """Median of each frame's most similar frames: (bins, frames) -> (bins, frames).

    Neighbours of frame j are picked greedily by decreasing similarity, above ``threshold``
    and at least ``min_distance`` frames from those already picked; j itself is always one.
    """
    bins, frames = magnitude.shape
    model = np.empty_like(magnitude)
    for j in prange(frames):
        order = np.argsort(-similarity[j])
        picked = np.empty(max_neighbours, dtype=np.int64)
        count = 0
        for candidate in order:
            if count == max_neighbours or similarity[j, candidate] < threshold:
                break
            far_enough = True
            for p in range(count):
                if abs(picked[p] - candidate) < min_distance:
                    far_enough = False
                    break
            if far_enough:
                picked[count] = candidate
                count += 1
        if count == 0:
            picked[0] = j
            count = 1
        values = np.empty(count, dtype=magnitude.dtype)
        for b in range(bins):
            for p in range(count):
                values[p] = magnitude[b, picked[p]]
            model[b, j] = np.median(values)
    return model


class RepetSim(Separator):
    """REPET-SIM separator (vocals, accompaniment) with no learned weights."""

    sample_rate = 16000
    sources = ("vocals", "accompaniment")
    residual_source = "accompaniment"  # the masks sum to one

    def __init__(
        self,
        n_fft: int = 1024,
        hop_length: int = 256,
        max_neighbours: int = 20,
        min_distance_seconds: float = 0.5,
        threshold: float = 0.0,
    ) -> None:
        super().__init__()
        self.stft = STFT(n_fft=n_fft, hop_length=hop_length)
        self.max_neighbours = max_neighbours
        self.min_distance = max(1, round(min_distance_seconds * self.sample_rate / hop_length))
        self.threshold = threshold

    @classmethod
    def load(cls, args: Mapping[str, Any], weights: Mapping[str, Any] | None, device: str = "cpu") -> RepetSim:
        return cls(**args).to(device)

    def separate_block(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        spec = self.stft.forward(audio)  # (channels, bins, frames)
        magnitude = np.abs(spec).mean(axis=0)
        unit = magnitude / np.maximum(np.linalg.norm(magnitude, axis=0, keepdims=True), 1e-8)
        similarity = unit.T @ unit
        background = repeating_model(magnitude, similarity, self.max_neighbours, self.min_distance, self.threshold)
        accompaniment_mask = np.minimum(background, magnitude) / np.maximum(magnitude, 1e-8)
        masks = np.stack([1.0 - accompaniment_mask, accompaniment_mask])[:, None]  # (2, 1, bins, frames)
        vocals_spec, accompaniment_spec = apply_masks(spec, np.broadcast_to(masks, (2, *spec.shape)))
        length = audio.shape[1]
        return {
            "vocals": self.stft.inverse(vocals_spec, length),
            "accompaniment": self.stft.inverse(accompaniment_spec, length),
        }
