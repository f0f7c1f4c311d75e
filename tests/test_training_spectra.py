"""Training spectrograms and masking targets (magnitude, phase-sensitive and waveform)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from sepframework.cli import cli
from sepframework.interfaces import SeparationError
from sepframework.stft import STFT
from sepframework.training import TrainConfig, fit
from sepframework.training.spectra import (SDR_CEILING_DB, inverse_spectrogram, spectrogram, target_magnitude,
                                          waveform_loss)
from tests.test_training import TinyTrainable, synthetic_tracks


def test_the_training_spectrogram_is_the_separators_stft() -> None:
    audio = np.random.default_rng(0).standard_normal((3, 2, 5000)).astype(np.float32)
    spec = spectrogram(torch.from_numpy(audio), 512, 128)
    assert spec.shape == (3, 2, 257, 40)
    for batch in range(3):
        np.testing.assert_allclose(spec[batch].numpy(), STFT(512, 128).forward(audio[batch]), atol=2e-4)


def test_the_magnitude_target_is_the_source_magnitude() -> None:
    source = torch.randn(4, 6, dtype=torch.complex64)
    mixture = torch.randn(4, 6, dtype=torch.complex64)
    torch.testing.assert_close(target_magnitude(source, mixture, "magnitude"), source.abs())


def test_the_phase_sensitive_target_is_the_part_along_the_mixture_phase_clipped_to_it() -> None:
    mixture = torch.tensor([2 + 0j, 2j, 1 + 1j, 3 + 0j, 1 + 0j, 0j])
    source = torch.tensor([1 + 0j, 1 + 0j, -1 - 1j, 4 + 0j, 1 + 1j, 1 + 0j])
    # in phase: |S|; orthogonal: 0; opposite: 0 (clipped); larger than the mixture: |X|;
    # 45 degrees off: |S| cos 45 = 1; silent mixture: 0
    expected = torch.tensor([1.0, 0.0, 0.0, 3.0, 1.0, 0.0])
    torch.testing.assert_close(target_magnitude(source, mixture, "phase-sensitive"), expected)


def test_an_unknown_target_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown training target 'phase'"):
        target_magnitude(torch.ones(1, dtype=torch.complex64), torch.ones(1, dtype=torch.complex64), "phase")
    with pytest.raises(SeparationError, match="use one of magnitude, phase-sensitive, waveform$"):
        TinyTrainable(target="phase")


def test_fit_refuses_a_config_whose_target_the_trainable_does_not_use(tmp_path) -> None:
    with pytest.raises(ValueError, match="differs"):
        fit(TinyTrainable(), synthetic_tracks(), TrainConfig(target="phase-sensitive", epochs=1), tmp_path)


def test_sep_train_lists_the_targets_on_a_bad_one(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["train", "unet", "--data", str(tmp_path), "--target", "phase"])
    assert result.exit_code == 2
    assert "'phase' is not one of 'magnitude', 'phase-sensitive', 'waveform'" in result.output


def test_the_inverse_spectrogram_reconstructs_the_audio() -> None:
    audio = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 3, 7001)).astype(np.float32))
    spec = spectrogram(audio, 1024, 512)
    restored = inverse_spectrogram(spec, 1024, 512, audio.shape[-1])
    assert restored.shape == audio.shape
    assert float((restored - audio).abs().max()) < 1e-5


def thresholded_sdr(scale: float, sources: torch.Tensor) -> float:
    """The thresholded SDR (dB) of estimates ``scale`` times the sources, by its formula."""
    tau = 10 ** (-SDR_CEILING_DB / 10)
    source_energy = sources.pow(2).sum(dim=-1)
    floor = tau * sources.sum(dim=1, keepdim=True).pow(2).sum(dim=-1)
    error_energy = (1 - scale) ** 2 * source_energy
    return float((10 * torch.log10((source_energy + floor) / (error_energy + tau * source_energy + floor))).mean())


def test_the_waveform_loss_is_minus_the_thresholded_sdr() -> None:
    sources = torch.from_numpy(np.random.default_rng(2).standard_normal((3, 2, 8000)).astype(np.float32))
    spec = spectrogram(sources, 512, 128)
    for scale in (0.0, 0.5, 0.9, 1.0):
        loss = waveform_loss(scale * spec, sources, sources.sum(dim=1), 512, 128)
        assert -float(loss) == pytest.approx(thresholded_sdr(scale, sources), abs=1e-3)
    # equal-power uncorrelated sources: perfect estimates reach the ceiling less the floor's
    # share (|s|^2 = |x|^2 / 2); silent estimates score about 0 dB
    perfect = -float(waveform_loss(spec, sources, sources.sum(dim=1), 512, 128))
    assert perfect == pytest.approx(SDR_CEILING_DB - 10 * np.log10(3), abs=0.05)
    silent = -float(waveform_loss(0 * spec, sources, sources.sum(dim=1), 512, 128))
    assert silent == pytest.approx(0.0, abs=0.01)


def test_a_silent_source_keeps_the_waveform_loss_finite() -> None:
    sources = torch.from_numpy(np.random.default_rng(2).standard_normal((3, 2, 8000)).astype(np.float32))
    sources[:, 0] = 0
    mixture = sources.sum(dim=1)
    masked = spectrogram(sources, 512, 128)
    vocals = masked[:, :1]
    assert -float(waveform_loss(vocals, sources[:, :1], mixture, 512, 128)) == pytest.approx(0.0, abs=1e-3)
    # a leak of the mixture into the silent vocals as loud as the floor (-30 dB) costs 3 dB,
    # a 10 times louder one (-20 dB) 10.4 dB
    for leak_db, cost_db in ((-30, 10 * np.log10(2)), (-20, 10 * np.log10(11))):
        leaky = 10 ** (leak_db / 20) * spectrogram(mixture, 512, 128)[:, None]
        sdr = -float(waveform_loss(leaky, sources[:, :1], mixture, 512, 128))
        assert sdr == pytest.approx(-cost_db, abs=0.01)
