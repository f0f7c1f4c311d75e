"""Training batches drawn at random from a few tracks: crops, remixes, gains and pitch shifts.

Every example is a random crop; with probability ``remix_probability`` each source comes
from a different, independently chosen track (new vocal/accompaniment pairs), and every
source gets a random gain. With ``pitch_semitones`` each source is also shifted in pitch
by up to that many semitones, by resampling a longer or shorter crop to the crop length
(tempo and formants move with the pitch, as for a different, higher or lower voice);
the sources of an example that is not a remix share one shift, so they stay in tune.
Tracks are chosen in proportion to their length, so every second of audio is equally
likely. All randomness comes from one seeded NumPy generator whose state can be saved
and restored, so a resumed run draws the same batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import soxr
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
        pitch_semitones: float = 0.0,
    ) -> None:
        if not tracks:
            raise ValueError("no training tracks")
        self.sources = tuple(sources)
        self.segment = segment
        self.remix_probability = remix_probability
        self.gain_db = gain_db
        self.pitch_semitones = pitch_semitones
        self.audio = [
            {name: match_channels(track.sources[name], channels).astype(np.float32) for name in self.sources}
            for track in tracks
        ]
        lengths = np.array([track.length for track in tracks], dtype=np.float64)
        self.weights = lengths / lengths.sum()
        self.rng = np.random.default_rng(seed)

    def _crop(self, audio: np.ndarray, position: float, length: int) -> np.ndarray:
        """``length`` samples starting at ``position`` (0..1) of the free range, zero-padded."""
        excess = audio.shape[1] - length
        start = int(position * (abs(excess) + 1))
        if excess < 0:
            return np.pad(audio, ((0, 0), (start, -excess - start)))
        return audio[:, start : start + length]

    def _pitch_ratio(self) -> float:
        """A random pitch ratio within ±``pitch_semitones`` (1 when pitch shifts are off)."""
        if not self.pitch_semitones:
            return 1.0  # no draw: runs without pitch shifts draw the batches they always did
        return 2 ** (self.rng.uniform(-self.pitch_semitones, self.pitch_semitones) / 12)

    def _shifted_crop(self, audio: np.ndarray, position: float, ratio: float) -> np.ndarray:
        """A crop of ``segment`` samples, ``ratio`` times higher in pitch than ``audio``."""
        if ratio == 1.0:
            return self._crop(audio, position, self.segment)
        source = self._crop(audio, position, round(self.segment * ratio))
        # ratio samples -> 1; soxr may give one sample less than segment (about 2 % of the
        # ratios), which the crop then pads with a zero: kept, as the shipped GRUs trained so
        shifted = soxr.resample(np.ascontiguousarray(source.T), ratio, 1.0).T
        return self._crop(shifted, 0.0, self.segment)

    def example(self) -> np.ndarray:
        """One example: (sources, channels, segment)."""
        count = len(self.audio)
        index = int(self.rng.choice(count, p=self.weights))
        position = self.rng.random()
        remix = self.rng.random() < self.remix_probability
        ratio = self._pitch_ratio()
        stems = []
        for name in self.sources:
            if remix:  # each source from its own track, crop and pitch
                index = int(self.rng.choice(count, p=self.weights))
                position = self.rng.random()
                ratio = self._pitch_ratio()
            gain = np.float32(10 ** (self.rng.uniform(-self.gain_db, self.gain_db) / 20))
            stems.append(self._shifted_crop(self.audio[index][name], position, ratio) * gain)
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
