"""A fixed band-pass separator: the voice band is "vocals", everything else "accompaniment".

It is no good at separating songs, but it shows every part of a plugin: a
:class:`~sepframework.Separator` subclass with ``sample_rate``, ``sources`` and
``context_samples``, a ``load`` building it from the ``args`` of ``config.json``, and a
``separate_block`` whose output depends only on nearby input (so the chunked engine
reproduces whole-signal output exactly).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sepframework import SeparationError, Separator

#: Length of the FIR filter; odd, so it has a centre tap.
TAPS = 511


def band_pass_kernel(low_hz: float, high_hz: float, sample_rate: int, taps: int = TAPS) -> np.ndarray:
    """A linear-phase FIR band-pass filter: difference of two windowed sincs."""
    n = np.arange(taps) - taps // 2
    low, high = low_hz / sample_rate, high_hz / sample_rate
    kernel = 2 * high * np.sinc(2 * high * n) - 2 * low * np.sinc(2 * low * n)
    return (kernel * np.blackman(taps)).astype(np.float32)


class BandPassSeparator(Separator):
    """Vocals: the mixture filtered to ``low_hz``-``high_hz``; accompaniment: the rest."""

    sample_rate = 22050
    sources = ("vocals", "accompaniment")
    #: The filter looks ``TAPS // 2`` samples each side of the output sample.
    context_samples = TAPS // 2

    def __init__(self, low_hz: float = 200.0, high_hz: float = 4000.0) -> None:
        super().__init__()
        if not 0 < low_hz < high_hz < self.sample_rate / 2:
            raise SeparationError(
                f"example-bandpass: need 0 < low_hz < high_hz < {self.sample_rate / 2:g}, "
                f"got {low_hz:g} and {high_hz:g}"
            )
        self.kernel = band_pass_kernel(low_hz, high_hz, self.sample_rate)

    @classmethod
    def load(
        cls, args: Mapping[str, Any], weights: Mapping[str, Any] | None, device: str = "cpu"
    ) -> BandPassSeparator:
        """Build from ``config.json`` arguments; this model has no weights (``weights`` is unused)."""
        return cls(**args).to(device)

    def separate_block(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        half = TAPS // 2
        vocals = np.stack(
            [np.convolve(channel, self.kernel, mode="full")[half:half + audio.shape[1]] for channel in audio]
        ).astype(np.float32)
        return {"vocals": vocals, "accompaniment": (audio - vocals).astype(np.float32)}
