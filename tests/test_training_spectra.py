"""Training spectrograms and masking targets (magnitude and phase-sensitive)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from sepframework.cli import cli
from sepframework.interfaces import SeparationError
from sepframework.stft import STFT
from sepframework.training import TrainConfig, fit
from sepframework.training.spectra import spectrogram, target_magnitude
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
    with pytest.raises(SeparationError, match="use one of magnitude, phase-sensitive"):
        TinyTrainable(target="phase")


def test_fit_refuses_a_config_whose_target_the_trainable_does_not_use(tmp_path) -> None:
    with pytest.raises(ValueError, match="differs"):
        fit(TinyTrainable(), synthetic_tracks(), TrainConfig(target="phase-sensitive", epochs=1), tmp_path)


def test_sep_train_lists_the_targets_on_a_bad_one(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["train", "unet", "--data", str(tmp_path), "--target", "phase"])
    assert result.exit_code == 2
    assert "'phase' is not one of 'magnitude', 'phase-sensitive'" in result.output
