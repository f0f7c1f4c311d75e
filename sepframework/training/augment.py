"""Training batches drawn at random from a few tracks: crops, remixes and gains.

Every example is a random crop; with probability ``remix_probability`` each source comes
from a different, independently chosen track (new vocal/accompaniment pairs), and every
source gets a random gain. Tracks are chosen in proportion to their length, so every
second of audio is equally likely. All randomness comes from one seeded NumPy generator
whose state can be saved and restored, so a resumed run draws the same batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from sepframework.datasets import Track


def match_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """``audio`` (c, n) as ``channels`` channels: averaged down or repeated up."""
    if audio.shape[0] == channels:
        return audio
    if channels == 1:
        return audio.mean(axis=0, keepdims=True)
    return np.repeat(audio.mean(axis=0, keepdims=True), channels, axis=0)


class RemixSampler:
    """Draws (mixture, targets) batches from ``tracks``.

    ``mixture`` is (batch, channels, segment) and ``targets`` (batch, sources, channels,
    segment), float32 tensors; the mixture is the sum of the targets.
    """

    def __init__(
        self,
        tracks: Sequence[Track],
        sources: Sequence[str],
        segment: int,
        channels: int,
        seed: int,
        remix_probability: float = 0.5,
        gain_db: float = 6.0,
    ) -> None:
        if not tracks:
            raise ValueError("no training tracks")
        self.sources = tuple(sources)
        self.segment = segment
        self.remix_probability = remix_probability
        self.gain_db = gain_db
        self.audio = [
            {name: match_channels(track.sources[name], channels).astype(np.float32) for name in self.sources}
            for track in tracks
        ]
        lengths = np.array([track.length for track in tracks], dtype=np.float64)
        self.weights = lengths / lengths.sum()
        self.rng = np.random.default_rng(seed)

    def _crop(self, audio: np.ndarray, position: float) -> np.ndarray:
        """``segment`` samples starting at ``position`` (0..1) of the free range, zero-padded."""
        excess = audio.shape[1] - self.segment
        start = int(position * (abs(excess) + 1))
        if excess < 0:
            return np.pad(audio, ((0, 0), (start, -excess - start)))
        return audio[:, start : start + self.segment]

    def example(self) -> np.ndarray:
        """One example: (sources, channels, segment)."""
        count = len(self.audio)
        index = int(self.rng.choice(count, p=self.weights))
        position = self.rng.random()
        remix = self.rng.random() < self.remix_probability
        stems = []
        for name in self.sources:
            if remix:  # each source from its own track and crop
                index = int(self.rng.choice(count, p=self.weights))
                position = self.rng.random()
            gain = np.float32(10 ** (self.rng.uniform(-self.gain_db, self.gain_db) / 20))
            stems.append(self._crop(self.audio[index][name], position) * gain)
        return np.stack(stems)

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mixture, targets)`` for ``batch_size`` fresh examples."""
        targets = torch.from_numpy(np.stack([self.example() for _ in range(batch_size)]))
        return targets.sum(dim=1), targets

    def state(self) -> dict[str, Any]:
        """The generator state, to save in a checkpoint."""
        return self.rng.bit_generator.state

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from a state returned by :meth:`state`."""
        self.rng.bit_generator.state = state
