"""The template's tests: sepframework's conformance suite, then the model's own behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from sep_example.bandpass import BandPassSeparator

from sepframework import SeparationError
from sepframework.conformance import SeparatorConformance


class TestConformance(SeparatorConformance):
    """Every sepframework check, one test each."""

    tolerance = 1e-5  # a pure FIR filter: chunked output equals whole output

    def make_model(self) -> BandPassSeparator:
        return BandPassSeparator.load({}, None)


def test_the_voice_band_goes_to_vocals_and_the_rest_to_accompaniment() -> None:
    model = BandPassSeparator.load({"low_hz": 200.0, "high_hz": 4000.0}, None)
    t = np.arange(model.sample_rate) / model.sample_rate
    bass, voice = np.sin(2 * np.pi * 50 * t), np.sin(2 * np.pi * 1000 * t)
    stems = model.separate_block(np.stack([bass + voice]).astype(np.float32))
    inner = slice(1000, -1000)  # away from the signal's edges
    assert np.allclose(stems["vocals"][0, inner], voice[inner], atol=1e-3)
    assert np.allclose(stems["accompaniment"][0, inner], bass[inner], atol=1e-3)
    assert np.allclose(stems["vocals"] + stems["accompaniment"], bass + voice, atol=1e-5)


def test_an_impossible_band_is_a_clear_error() -> None:
    with pytest.raises(SeparationError, match="need 0 < low_hz < high_hz < 11025"):
        BandPassSeparator.load({"low_hz": 5000.0, "high_hz": 3000.0}, None)
