"""What a plugin provides so the shared library can train its model.

A plugin subclasses :class:`Trainable` (model factory, loss on a batch, inference
wrapper, export) and registers it in the ``sepframework.trainers`` entry-point group
under its model's name. The library does everything else: data, augmentation, the
loop, checkpoints, early stopping, export and the model card.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from sepframework.interfaces import SeparationError, Separator
from sepframework.training.spectra import TARGETS


class Trainable(ABC):
    """A trainable model family, configured by ``args`` (the ``config.json`` arguments).

    Batches are ``mixture`` (batch, channels, samples) and ``targets``
    (batch, sources, channels, samples) waveforms at :attr:`sample_rate`, sources in the
    order of :attr:`sources`. ``sep train`` constructs it as ``cls(args, target=...)``: a
    subclass that overrides ``__init__`` takes and passes on both.
    """

    #: The Separator subclass that loads the exported files (its ``load`` receives ``args``).
    separator_class: ClassVar[type[Separator]]
    #: Sources the model is trained to output, in the order of ``targets``.
    sources: ClassVar[tuple[str, ...]] = ("vocals", "accompaniment")
    #: Model arguments used when the caller gives none; recorded in ``config.json``.
    default_args: ClassVar[dict[str, Any]] = {}
    #: Overrides of :class:`sepframework.training.TrainConfig` defaults for this model.
    train_defaults: ClassVar[dict[str, Any]] = {}
    #: Channels of the training batches (1: the mean of the channels).
    channels: ClassVar[int] = 1
    #: Markdown paragraph describing the model, for the model card.
    description: ClassVar[str] = ""

    def __init__(self, args: Mapping[str, Any] | None = None, target: str = "magnitude") -> None:
        unknown = set(args or {}) - set(self.default_args)
        if unknown:
            raise SeparationError(f"unknown model argument(s) {', '.join(sorted(unknown))}; "
                                  f"known: {', '.join(sorted(self.default_args))}")
        if target not in TARGETS:
            raise SeparationError(f"unknown training target {target!r}; use one of {', '.join(TARGETS)}")
        self.args: dict[str, Any] = {**self.default_args, **(args or {})}
        #: What masked magnitudes are trained towards (see :mod:`sepframework.training.spectra`).
        self.target = target

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """Rate (Hz) of the training audio."""

    @property
    @abstractmethod
    def segment_samples(self) -> int:
        """Length of the training crops, in samples."""

    @abstractmethod
    def build_model(self) -> torch.nn.Module:
        """A freshly initialised network (the caller seeds torch first)."""

    @abstractmethod
    def loss(self, model: torch.nn.Module, mixture: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Scalar loss of ``model`` on one batch (already on the model's device)."""

    @abstractmethod
    def separator(self, model: torch.nn.Module, device: str) -> Separator:
        """An inference Separator around the (trained) ``model``, for validation."""

    def export(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """Tensors to store in ``model.safetensors``; by default the state dict."""
        return {name: tensor.detach() for name, tensor in model.state_dict().items()}
