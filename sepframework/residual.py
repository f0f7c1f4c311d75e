"""The residual source at the input's rate: the mixture minus the other sources.

A model working at a lower rate than its input (16 kHz for 44.1 kHz music) cannot
represent the input's top band, so resampling every stem back loses it from all of them.
For a model that declares a ``residual_source`` (e.g. accompaniment = mixture - vocals),
the other stems are resampled back and the residual is computed from the original
mixture, so the stems still sum to the input, the top band (cymbals, air) stays in the
accompaniment, and one resampler is saved.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

import numpy as np

from sepframework.audio import StreamResampler
from sepframework.interfaces import Separator


class StemsBack:
    """How a stream of separated stems gets back to the input's rate.

    ``residual`` is the source computed from the mixture, or ``None``: only when the stems
    are resampled back (at equal rates the model's own output is exact) and the model's
    ``residual_source`` is among the ``wanted`` stems. ``mixture`` keeps the input for it
    (push every input block). ``computed`` are the sources taken from the model, and
    ``resamplers`` holds a stream resampler for each of them, or is ``None`` at equal rates.
    """

    def __init__(self, model: Separator, wanted: Sequence[str], rate: int, channels: int) -> None:
        resampled = rate != model.sample_rate
        self.residual = model.residual_source if resampled and model.residual_source in wanted else None
        self.mixture = MixtureBuffer(channels) if self.residual else None
        self.computed = [name for name in (model.sources if self.residual else wanted) if name != self.residual]
        self.resamplers = ({name: StreamResampler(model.sample_rate, rate, channels) for name in self.computed}
                           if resampled else None)


class MixtureBuffer:
    """Input blocks kept until the separated samples at the same positions come out.

    :meth:`push` every input block; :meth:`residual` then takes the next ``n`` mixture
    samples, so memory is bounded by the model's delay, not by the input's length.
    """

    def __init__(self, channels: int) -> None:
        self._blocks: deque[np.ndarray] = deque()
        self._empty = np.zeros((0, channels), dtype=np.float32)

    def push(self, block: np.ndarray) -> None:
        """Keep a copy of ``block`` (channels, n) of the input (the caller may reuse its buffer)."""
        if block.shape[1]:
            self._blocks.append(np.array(block, dtype=np.float32))

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` input samples, (channels, n); they must have been pushed.

        The result is a transposed view of an interleaved (n, channels) array, the layout
        of :meth:`AudioReader.blocks` and of resampled stems.
        """
        parts, needed = [self._empty], n
        while needed:
            block = self._blocks.popleft()
            if block.shape[1] > needed:
                self._blocks.appendleft(block[:, needed:])
                block = block[:, :needed]
            parts.append(block.T)
            needed -= block.shape[1]
        return np.concatenate(parts, axis=0).T

    def residual(self, others: Mapping[str, np.ndarray]) -> np.ndarray:
        """The mixture minus ``others`` (equal-length (channels, n) stems at the input's rate)."""
        stems = list(others.values())
        residual = self.take(stems[0].shape[1])  # a fresh array, in the mixture's layout
        for stem in stems:
            residual -= stem
        return residual
