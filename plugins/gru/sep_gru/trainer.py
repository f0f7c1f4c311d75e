"""Training the GRU separator with the shared library (``sep train gru``).

Both sources are learnt at once: the masked mixture magnitudes of vocals and
accompaniment are compared (L1) with their targets (the true magnitudes, or with
``--target phase-sensitive`` their phase-sensitive part), or with ``--target waveform``
their inverse STFTs with the source waveforms (thresholded SDR), so the masks that sum
to one are trained jointly. The STFT matches the separator's (periodic Hann, centred).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from sepframework.interfaces import Separator
from sepframework.training import Trainable
from sepframework.training.spectra import spectrogram, target_magnitude, waveform_loss

from sep_gru.model import GRUSeparator
from sep_gru.network import GRUConfig, MaskGRU


class GRUTrainable(Trainable):
    """Trainer of :class:`~sep_gru.model.GRUSeparator`; ``--arg bidirectional=true`` for the offline model."""

    separator_class = GRUSeparator
    default_args: ClassVar[dict[str, Any]] = GRUConfig().to_args()
    train_defaults: ClassVar[dict[str, Any]] = {"batch_size": 16, "steps_per_epoch": 250, "epochs": 8,
                                                "patience": 3, "lr_patience": 1, "remix_probability": 0.75}
    @property
    def description(self) -> str:
        """Model card paragraph, with this run's window, latency and network direction."""
        config = self.config
        window_ms = 1000 * config.n_fft / GRUSeparator.sample_rate
        mode = ("a bidirectional network for the best offline quality" if config.bidirectional else
                f"a unidirectional (causal) network that streams in real time with {window_ms:g} ms "
                "algorithmic latency")
        return (
            f"A recurrent singing-voice separator: {config.num_layers} GRU layers of {config.hidden_size} "
            f"units{' per direction' if config.bidirectional else ''} over {GRUSeparator.sample_rate // 1000} kHz magnitude spectrogram frames "
            f"({config.n_fft}-sample Hann window, hop {config.hop_length}) predict soft masks for vocals "
            "and accompaniment that sum to one (joint time-frequency masking, Huang et al. 2014). Stereo "
            f"input is masked per channel with masks computed from the channel-mean magnitude. This is {mode}."
        )

    #: Seconds of audio per training crop, unless ``--crop-seconds`` says otherwise.
    crop_seconds: ClassVar[float] = 4.0
    variable_crop = True

    @property
    def config(self) -> GRUConfig:
        """The model arguments as a :class:`GRUConfig`."""
        return GRUConfig.from_args(self.args)

    @property
    def sample_rate(self) -> int:
        return GRUSeparator.sample_rate

    @property
    def segment_samples(self) -> int:
        return int(self.crop_seconds * self.sample_rate)

    def build_model(self) -> torch.nn.Module:
        return MaskGRU(self.config)

    def loss(self, model: torch.nn.Module, mixture: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        config = self.config
        mono_mixture, mono_targets = mixture.mean(dim=1), targets.mean(dim=2)
        mixture_spec = spectrogram(mono_mixture, config.n_fft, config.hop_length)  # (batch, bins, frames)
        mixture_magnitude = mixture_spec.abs().transpose(1, 2)  # (batch, frames, bins)
        masks, _ = model(mixture_magnitude)  # (batch, frames, sources, bins)
        if self.target == "waveform":
            masked = masks.permute(0, 2, 3, 1) * mixture_spec.unsqueeze(1)  # (batch, sources, bins, frames)
            return waveform_loss(masked, mono_targets, mono_mixture, config.n_fft, config.hop_length)
        source_specs = spectrogram(mono_targets, config.n_fft, config.hop_length)  # (batch, sources, ...)
        wanted = target_magnitude(source_specs, mixture_spec.unsqueeze(1), self.target)
        estimates = masks * mixture_magnitude.unsqueeze(2)
        return torch.nn.functional.l1_loss(estimates, wanted.permute(0, 3, 1, 2))

    def separator(self, model: torch.nn.Module, device: str) -> Separator:
        return GRUSeparator(self.config, network=model).to(device)
