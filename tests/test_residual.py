"""The residual source at the input's rate: stems sum to the input, and what a lower-rate
model cannot represent (its top band) stays in the residual stem."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from sepframework.pipeline import OutputSpec, separate_file
from sepframework.residual import MixtureBuffer
from sepframework.streaming import Streamer
from tests.test_engine import FIRSeparator
from tests.test_streaming import FixedSplit, stream_through

RATE = 44100


class ResidualFIR(FIRSeparator):
    """The FIR test model (8 kHz) declaring its accompaniment the residual."""

    residual_source = "accompaniment"


class ResidualSplit(FixedSplit):
    residual_source = "accompaniment"


def song(seconds: float = 3.0) -> np.ndarray:
    """Stereo: a 300 Hz tone the model sees, plus a 12 kHz tone above its 4 kHz Nyquist."""
    t = np.arange(int(seconds * RATE)) / RATE
    low, high = 0.3 * np.sin(2 * np.pi * 300 * t), 0.2 * np.sin(2 * np.pi * 12000 * t)
    return np.stack([low + high, 0.5 * low + high]).astype(np.float32)


def band_energy(audio: np.ndarray, low_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(audio, axis=1)) ** 2
    frequencies = np.fft.rfftfreq(audio.shape[1], 1 / RATE)
    return float(spectrum[:, frequencies > low_hz].sum())


def test_mixture_buffer_returns_samples_in_order_across_blocks() -> None:
    buffer = MixtureBuffer(channels=2)
    audio = np.arange(20, dtype=np.float32).reshape(2, 10)
    for start, stop in [(0, 3), (3, 4), (4, 10)]:
        buffer.push(audio[:, start:stop])
    assert buffer.take(0).shape == (2, 0)
    np.testing.assert_array_equal(buffer.take(5), audio[:, :5])
    np.testing.assert_array_equal(buffer.residual({"vocals": np.ones((2, 5), np.float32)}), audio[:, 5:] - 1)


@pytest.mark.parametrize("model_class, keeps_top_band", [(ResidualFIR, True), (FIRSeparator, False)])
def test_the_top_band_stays_in_the_residual_stem(tmp_path, model_class, keeps_top_band: bool) -> None:
    mixture = song()
    sf.write(tmp_path / "song.wav", mixture.T, RATE, subtype="FLOAT")
    written = separate_file(tmp_path / "song.wav", model_class(), OutputSpec(outdir=tmp_path / "out"))
    stems = {name: sf.read(path, dtype="float32", always_2d=True)[0].T for name, path in written.items()}
    top = band_energy(mixture, 6000)
    assert band_energy(stems["vocals"], 6000) < 1e-6 * top
    if keeps_top_band:
        np.testing.assert_allclose(stems["vocals"] + stems["accompaniment"], mixture, atol=1e-6)
        assert band_energy(stems["accompaniment"], 6000) == pytest.approx(top, rel=1e-3)
    else:  # every stem resampled from 8 kHz: the 12 kHz tone is lost
        assert band_energy(stems["accompaniment"], 6000) < 1e-3 * top


def test_in_memory_chunked_and_single_stem_runs_agree(tmp_path) -> None:
    mixture = song(5.0)
    sf.write(tmp_path / "song.wav", mixture.T, RATE, subtype="FLOAT")
    model = ResidualFIR()
    in_memory = model.separate(mixture, RATE)
    np.testing.assert_allclose(in_memory["vocals"] + in_memory["accompaniment"], mixture, atol=1e-6)
    only = separate_file(tmp_path / "song.wav", model, OutputSpec(outdir=tmp_path / "a"), stems=["accompaniment"])
    assert list(only) == ["accompaniment"]
    accompaniment = sf.read(only["accompaniment"], dtype="float32", always_2d=True)[0].T
    inner = slice(2000, -2000)  # resampler edges aside
    np.testing.assert_allclose(accompaniment[:, inner], in_memory["accompaniment"][:, inner], atol=1e-4)


def test_a_stream_at_another_rate_keeps_the_residual_exact() -> None:
    mixture = song(1.0)
    streamed, _ = stream_through(Streamer(ResidualSplit(), channels=2, sample_rate=RATE), mixture, [1, 500, 4096, 77])
    np.testing.assert_allclose(streamed["vocals"] + streamed["accompaniment"], mixture, atol=1e-6)
    assert band_energy(streamed["accompaniment"], 6000) == pytest.approx(band_energy(mixture, 6000), rel=1e-3)
