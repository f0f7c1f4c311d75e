"""Spectrograms and training targets for magnitude-masking models.

A masking model multiplies the mixture's magnitude by a mask and keeps the mixture's
phase. Its training target for a source is either

- ``"magnitude"``: the source's magnitude ``|S|`` (magnitude spectrum approximation), or
- ``"phase-sensitive"``: ``|S| cos(angle(S) - angle(X))`` clipped to ``[0, |X|]``, the
  truncated phase-sensitive approximation of Erdogan et al. (ICASSP 2015). It is the part of
  the source that lies along the mixture's phase, so the mask learns what actually
  reconstructs the waveform (what SDR measures) instead of magnitudes the mixture phase
  cannot deliver.
"""

from __future__ import annotations

import torch

#: Names of the training targets, for ``TrainConfig.target`` and ``sep train --target``.
TARGETS = ("magnitude", "phase-sensitive")


def spectrogram(audio: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """Complex STFT (..., n_fft // 2 + 1, frames) of (..., samples) audio, as the separators
    compute it: periodic Hann window, centred frames, zero padding."""
    shape = audio.shape[:-1]
    window = torch.hann_window(n_fft, periodic=True, device=audio.device)
    spec = torch.stft(audio.reshape(-1, audio.shape[-1]), n_fft, hop_length, window=window, center=True,
                      pad_mode="constant", return_complex=True)
    return spec.reshape(*shape, *spec.shape[1:])


def target_magnitude(source: torch.Tensor, mixture: torch.Tensor, target: str) -> torch.Tensor:
    """The magnitude a mask on ``|mixture|`` should produce for ``source`` (complex spectrograms
    of broadcastable shapes), for the training ``target`` (one of :data:`TARGETS`)."""
    if target == "magnitude":
        return source.abs()
    if target == "phase-sensitive":
        mixture_magnitude = mixture.abs()
        along_mixture = (source * mixture.conj()).real / mixture_magnitude.clamp_min(1e-8)
        return torch.minimum(along_mixture.clamp_min(0), mixture_magnitude)
    raise ValueError(f"unknown training target {target!r}; use one of {', '.join(TARGETS)}")
