"""Spectrograms and training targets for magnitude-masking models.

A masking model multiplies the mixture's magnitude by a mask and keeps the mixture's
phase. Its training target for a source is either

- ``"magnitude"``: the source's magnitude ``|S|`` (magnitude spectrum approximation), or
- ``"phase-sensitive"``: ``|S| cos(angle(S) - angle(X))`` clipped to ``[0, |X|]``, the
  truncated phase-sensitive approximation of Erdogan et al. (ICASSP 2015). It is the part of
  the source that lies along the mixture's phase, so the mask learns what actually
  reconstructs the waveform (what SDR measures) instead of magnitudes the mixture phase
  cannot deliver.

A third target, ``"waveform"``, trains the masked mixture spectrogram, inverted with the
mixture's phase, towards each source's waveform: the loss is minus a thresholded SDR
(:func:`waveform_loss`), so training optimises what BSS Eval scores, with every crop and
source weighted alike whatever its loudness.
"""

from __future__ import annotations

import torch

from sepframework.training.targets import TARGETS

#: Upper bound (dB) of a :func:`waveform_loss` example's SDR: near it, gradients fade.
SDR_CEILING_DB = 30.0


def spectrogram(audio: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """Complex STFT (..., n_fft // 2 + 1, frames) of (..., samples) audio, as the separators
    compute it: periodic Hann window, centred frames, zero padding."""
    shape = audio.shape[:-1]
    window = torch.hann_window(n_fft, periodic=True, device=audio.device)
    spec = torch.stft(audio.reshape(-1, audio.shape[-1]), n_fft, hop_length, window=window, center=True,
                      pad_mode="constant", return_complex=True)
    return spec.reshape(*shape, *spec.shape[1:])


def inverse_spectrogram(spec: torch.Tensor, n_fft: int, hop_length: int, length: int) -> torch.Tensor:
    """Waveforms (..., length) of complex spectrograms (..., bins, frames): the inverse of
    :func:`spectrogram`."""
    shape = spec.shape[:-2]
    window = torch.hann_window(n_fft, periodic=True, device=spec.device)
    audio = torch.istft(spec.reshape(-1, *spec.shape[-2:]), n_fft, hop_length, window=window, center=True,
                        length=length)
    return audio.reshape(*shape, length)


def waveform_loss(masked: torch.Tensor, sources: torch.Tensor, mixture: torch.Tensor,
                  n_fft: int, hop_length: int) -> torch.Tensor:
    """Minus the mean thresholded SDR (dB) of masked mixture spectrograms against sources.

    ``masked`` (batch, sources, bins, frames) are the masks times the complex mixture
    spectrogram, ``sources`` (batch, sources, samples) the true waveforms and ``mixture``
    (batch, samples) their sum. The SDR of an example is
    ``10 log10((|s|^2 + e) / (|s - s_hat|^2 + t |s|^2 + e))``: ``t`` bounds it by
    :data:`SDR_CEILING_DB` (Wisdom et al. 2020), so easy examples do not dominate, and ``e``,
    the mixture's energy lowered by as much, keeps silent sources finite: a silent source
    scores at most 0 dB, and an error as loud as ``e`` costs it 3 dB, so leaks far below
    what a whole-clip SDR notices are not chased.
    """
    estimates = inverse_spectrogram(masked, n_fft, hop_length, sources.shape[-1])
    source_energy = sources.pow(2).sum(dim=-1)
    error_energy = (sources - estimates).pow(2).sum(dim=-1)
    threshold = 10 ** (-SDR_CEILING_DB / 10)
    floor = threshold * mixture.pow(2).sum(dim=-1, keepdim=True) + 1e-10
    sdr = 10 * torch.log10((source_energy + floor) / (error_energy + threshold * source_energy + floor))
    return -sdr.mean()


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
