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
from sepframework.training.targets import TARGETS


#: Shortest training crop ``--crop-seconds`` accepts.
MIN_CROP_SECONDS = 0.5


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
    #: Markdown paragraph describing the model, for the model card (a property where it
    #: depends on :attr:`args`, so that a card never states defaults the run overrode).
    description: str = ""
    #: Whether the training crops may be longer or shorter than :attr:`segment_samples`
    #: (``--crop-seconds``); False for a network that needs inputs of exactly that size.
    variable_crop: ClassVar[bool] = False

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
        """Default length of the training crops, in samples."""

    def crop_samples(self, seconds: float | None) -> int:
        """Length of the training crops: ``seconds`` (``--crop-seconds``), or by default
        :attr:`segment_samples`. A clear error where this model cannot change it."""
        if seconds is None:
            return self.segment_samples
        if not self.variable_crop:
            raise SeparationError(
                f"this model trains on fixed {self.segment_samples / self.sample_rate:.2f} s crops; "
                "--crop-seconds does not apply to it"
            )
        if seconds < MIN_CROP_SECONDS:
            raise SeparationError(f"--crop-seconds must be at least {MIN_CROP_SECONDS} s, got {seconds}")
        return int(round(seconds * self.sample_rate))

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
