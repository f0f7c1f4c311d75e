"""The GRU mask network: magnitude frames in, one soft mask per source out.

Joint time-frequency masking (Huang et al., 2014): the network predicts every source at
once and its masks are a softmax over sources, so they sum to one and the estimates
add up to the mixture. A unidirectional network is frame-causal: mask frame ``t``
depends on magnitude frames ``0..t`` only, and its GRU state can be carried across calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from sepframework.interfaces import SeparationError
from sepframework.stft import stft_problem


#: A GRU called as ``nn.GRU(batch_first=True)`` is: (inputs, state or None) -> (outputs, final state).
GRUCall = Callable[[torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, torch.Tensor]]

#: Smallest value of each whole-number :class:`GRUConfig` field.
_SMALLEST = {"n_fft": 2, "hop_length": 1, "hidden_size": 1, "num_layers": 1, "n_sources": 1}


@dataclass(frozen=True)
class GRUConfig:
    """Hyper-parameters of a GRU separator; recorded as ``args`` in ``config.json``."""

    n_fft: int = 1024
    hop_length: int = 512
    hidden_size: int = 128
    num_layers: int = 2
    bidirectional: bool = False
    n_sources: int = 2

    @property
    def n_bins(self) -> int:
        """Frequency bins per STFT frame."""
        return self.n_fft // 2 + 1

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> GRUConfig:
        """Config from ``config.json`` args; unknown keys and unusable values are a clear error."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(args) - known)
        if unknown:
            raise SeparationError(f"unknown GRU config key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        config = cls(**args)
        for key, minimum in _SMALLEST.items():
            value = getattr(config, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
                raise SeparationError(f"{key} must be {what}, got {value!r}")
        if not isinstance(config.bidirectional, bool):
            raise SeparationError(f"bidirectional must be true or false, got {config.bidirectional!r}")
        problem = stft_problem(config.n_fft, config.hop_length)
        if problem is not None:
            raise SeparationError(problem)
        return config

    def to_args(self) -> dict[str, Any]:
        """The config as plain JSON-ready values."""
        return asdict(self)


class MaskGRU(nn.Module):
    """log-magnitude -> per-bin affine -> Linear+tanh -> GRU -> skip-joined MLP -> softmax masks.

    Input ``magnitude`` (batch, frames, bins); output masks (batch, frames, sources, bins)
    and the GRU state (num_layers * directions, batch, hidden).
    """

    def __init__(self, config: GRUConfig) -> None:
        super().__init__()
        self.config = config
        hidden, bins = config.hidden_size, config.n_bins
        directions = 2 if config.bidirectional else 1
        self.input_mean = nn.Parameter(torch.zeros(bins))
        self.input_scale = nn.Parameter(torch.ones(bins))
        self.encoder = nn.Sequential(nn.Linear(bins, hidden), nn.Tanh())
        self.gru = nn.GRU(hidden, hidden, config.num_layers, batch_first=True, bidirectional=config.bidirectional)
        self.decoder = nn.Sequential(
            nn.Linear(hidden * (1 + directions), hidden),
            nn.ReLU(),
            nn.Linear(hidden, config.n_sources * bins),
        )

    def forward(
        self, magnitude: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch, frames, bins = magnitude.shape
        encoded = self.encode(magnitude)
        recurrent, state = self.gru(encoded, state)
        logits = self.decoder[-1](self._decoder_hidden(encoded, recurrent))
        masks = torch.softmax(logits.view(batch, frames, self.config.n_sources, bins), dim=2)
        return masks, state

    def first_mask(
        self,
        magnitude: torch.Tensor,
        state: torch.Tensor | None = None,
        layer: tuple[torch.Tensor, torch.Tensor] | None = None,
        gru: GRUCall | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The first source's mask (batch, frames, bins) of a two-source network, and the new GRU state.

        Equal to ``forward(magnitude, state)[0][:, :, 0]`` at half the output layer's cost:
        a softmax over two logits is the sigmoid of their difference, so the layer of
        :meth:`first_mask_layer` replaces the output layer, and no softmax over a strided
        axis is needed. Callers making many small calls (streaming) pass that ``layer``,
        computed once. ``gru`` runs the GRU layers in place of ``self.gru`` (same call and
        results, e.g. :class:`~sep_gru.onnx_gru.OnnxGRU`).
        """
        encoded = self.encode(magnitude)
        recurrent, state = (gru if gru is not None else self.gru)(encoded, state)
        return self.decode_first_mask(encoded, recurrent, layer), state

    def encode(self, magnitude: torch.Tensor) -> torch.Tensor:
        """The GRU's input (..., frames, hidden) of magnitude frames (..., frames, bins); frame-wise."""
        return self.encoder((torch.log1p(magnitude) - self.input_mean) * self.input_scale)

    def decode_first_mask(
        self,
        encoded: torch.Tensor,
        recurrent: torch.Tensor,
        layer: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The first source's mask of :meth:`encode`'s and the GRU's outputs; frame-wise."""
        weight, bias = layer if layer is not None else self.first_mask_layer()
        return torch.sigmoid(nn.functional.linear(self._decoder_hidden(encoded, recurrent), weight, bias))

    def first_mask_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight and bias of the first source's mask logits: the difference of the two
        sources' rows of the output layer."""
        if self.config.n_sources != 2:
            raise SeparationError(f"first_mask needs a two-source network, not {self.config.n_sources} sources")
        weight, bias = self.decoder[-1].weight, self.decoder[-1].bias
        bins = self.config.n_bins
        return weight[:bins] - weight[bins:], bias[:bins] - bias[bins:]

    def _decoder_hidden(self, encoded: torch.Tensor, recurrent: torch.Tensor) -> torch.Tensor:
        """The output layer's input (..., frames, hidden): the MLP over the GRU output joined with its input."""
        return self.decoder[:-1](torch.cat([encoded, recurrent], dim=-1))
