"""Training the U-Net with the shared library: magnitude patches, L1 on masked mixtures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from sepframework.interfaces import Separator
from sepframework.training import Trainable
from sepframework.training.spectra import spectrogram, target_magnitude, waveform_loss
from sep_unet.model import DEFAULT_ARGS, UNetSeparator, check_args
from sep_unet.network import UNet


class UNetTrainable(Trainable):
    """The ``unet`` model for ``sep train unet``.

    A batch's mono mixtures become (batch, 1, n_fft / 2, patch_frames) magnitude patches
    (Nyquist bin dropped); the loss is the L1 distance between the masked mixture and the
    vocal target plus that between the complement-masked mixture and the accompaniment
    target (magnitudes, or their phase-sensitive part: ``self.target``); with the
    ``"waveform"`` target, minus the thresholded SDR of both masked mixtures' inverse STFTs.
    """

    separator_class = UNetSeparator
    default_args = DEFAULT_ARGS
    train_defaults = {"batch_size": 8, "learning_rate": 1e-3, "steps_per_epoch": 150, "epochs": 30,
                      "patience": 5, "lr_patience": 2}

    @property
    def description(self) -> str:
        """Model card paragraph, with this run's STFT and patch sizes."""
        args = self.args
        return (
            "U-Net singing-voice separation (Jansson et al., *Singing Voice Separation with Deep U-Net "
            "Convolutional Networks*, ISMIR 2017): six 5x5 stride-2 convolutions and six transposed "
            f"convolutions with skip connections predict a soft vocal mask on {args['n_fft'] // 2}-bin x "
            f"{args['patch_frames']}-frame STFT magnitude patches ({args['sample_rate']} Hz, "
            f"{args['n_fft']}-sample window, hop {args['hop_length']}) of the channel mean; the "
            "accompaniment is the complement. The mixture phase is used for reconstruction."
        )

    def __init__(self, args: Mapping[str, Any] | None = None, target: str = "magnitude") -> None:
        super().__init__(args, target)
        self.args = check_args(self.args)

    @property
    def sample_rate(self) -> int:
        return self.args["sample_rate"]

    @property
    def segment_samples(self) -> int:
        # (frames - 1) * hop samples give exactly `patch_frames` centred STFT frames.
        return (self.args["patch_frames"] - 1) * self.args["hop_length"]

    def build_model(self) -> torch.nn.Module:
        return UNet()

    def spectrogram(self, audio: torch.Tensor) -> torch.Tensor:
        """(..., samples) -> complex (..., n_fft / 2, frames) STFT, Nyquist bin dropped."""
        n_fft = self.args["n_fft"]
        return spectrogram(audio, n_fft, self.args["hop_length"])[..., : n_fft // 2, :]

    def loss(self, model: torch.nn.Module, mixture: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.target == "waveform":
            return self.waveform_loss(model, mixture, targets)
        mixture_spec = self.spectrogram(mixture)  # (batch, 1, bins, frames)
        vocals, accompaniment = (target_magnitude(self.spectrogram(targets[:, s]), mixture_spec, self.target)
                                 for s in range(2))
        mix = mixture_spec.abs()
        mask = model(mix)
        return (mask * mix - vocals).abs().mean() + ((1 - mask) * mix - accompaniment).abs().mean()

    def waveform_loss(self, model: torch.nn.Module, mixture: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Minus the thresholded SDR of both sources, masked as the separator masks them
        (the Nyquist bin takes its neighbour's mask)."""
        n_fft, hop = self.args["n_fft"], self.args["hop_length"]
        mixture_spec = spectrogram(mixture.mean(dim=1, keepdim=True), n_fft, hop)  # (batch, 1, bins + 1, frames)
        mask = model(mixture_spec[..., : n_fft // 2, :].abs())
        mask = torch.cat([mask, mask[..., -1:, :]], dim=-2)
        masked = torch.cat([mask, 1 - mask], dim=1) * mixture_spec  # (batch, 2, bins + 1, frames)
        return waveform_loss(masked, targets.mean(dim=2), mixture.mean(dim=1), n_fft, hop)

    def separator(self, model: torch.nn.Module, device: str) -> Separator:
        return UNetSeparator(model, self.args).to(device)
