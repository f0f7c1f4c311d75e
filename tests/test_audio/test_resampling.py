"""Resampling: lengths, fidelity, and streaming equal to one-shot."""

from __future__ import annotations

import numpy as np
import pytest

from sepframework.audio import StreamResampler, resample, resampled_length

RATE_PAIRS = [(44100, 16000), (16000, 44100), (48000, 44100), (8000, 22050), (22050, 48000)]


def test_resampled_length_rounds_halves_up() -> None:
    assert resampled_length(1000, 44100, 16000) == 363  # 362.81
    assert resampled_length(1, 2, 1) == 1  # 0.5
    assert resampled_length(3, 2, 1) == 2  # 1.5
    assert resampled_length(10, 4, 1) == 3  # 2.5
    assert resampled_length(1, 44100, 16000) == 0  # 0.36
    assert resampled_length(0, 44100, 16000) == 0


@pytest.mark.parametrize(("rate_in", "rate_out"), RATE_PAIRS)
@pytest.mark.parametrize("frames", [0, 1, 2, 5, 1000, 44101])
def test_output_length_is_the_rounded_ratio(rate_in, rate_out, frames) -> None:
    audio = np.random.default_rng(frames).standard_normal((2, frames)).astype(np.float32)
    out = resample(audio, rate_in, rate_out)
    assert out.shape == (2, resampled_length(frames, rate_in, rate_out))
    assert out.dtype == np.float32 and out.flags.c_contiguous


def test_equal_rates_return_the_input_itself() -> None:
    audio = np.ones((2, 10), dtype=np.float32)
    assert resample(audio, 44100, 44100) is audio


def test_channels_are_resampled_independently() -> None:
    audio = np.random.default_rng(0).standard_normal((6, 5000)).astype(np.float32)
    together = resample(audio, 44100, 16000)
    np.testing.assert_allclose(together, np.stack([resample(channel, 44100, 16000) for channel in audio]), atol=1e-6)


def test_a_1khz_sine_survives_a_round_trip_through_16khz() -> None:
    t = np.arange(44100 * 2) / 44100
    sine = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)[None, :]

    back = resample(resample(sine, 44100, 16000), 16000, 44100)

    assert back.shape == sine.shape
    middle = slice(4410, -4410)  # 0.1 s from the edges
    error = back[:, middle] - sine[:, middle]
    snr = 10 * np.log10(np.sum(sine[:, middle] ** 2) / np.sum(error**2))
    assert snr > 100  # measured: 131 dB


@pytest.mark.parametrize(("rate_in", "rate_out"), RATE_PAIRS)
def test_streaming_output_equals_one_shot(rate_in, rate_out) -> None:
    rng = np.random.default_rng(1)
    audio = rng.standard_normal((2, 30011)).astype(np.float32)
    resampler = StreamResampler(rate_in, rate_out, channels=2)
    outputs, start = [], 0
    for size in [0, 1, 7, 4096, 1, 513, *rng.integers(1, 6000, size=12)]:
        outputs.append(resampler.process(audio[:, start : start + size]))
        start += size
    outputs.append(resampler.process(audio[:, start:]))
    outputs.append(resampler.flush())

    streamed = np.concatenate(outputs, axis=1)

    expected = resample(audio, rate_in, rate_out)
    assert streamed.shape == expected.shape == (2, resampled_length(30011, rate_in, rate_out))
    # measured with soxr 1.1: bit-exact (max difference 0.0)
    assert np.abs(streamed - expected).max() <= 1e-6


@pytest.mark.parametrize("frames", [0, 1, 2, 3, 99, 1000])
def test_streaming_length_is_exact_for_short_inputs(frames) -> None:
    resampler = StreamResampler(44100, 16000, channels=1)
    out = np.concatenate([resampler.process(np.zeros((1, frames), dtype=np.float32)), resampler.flush()], axis=1)
    assert out.shape == (1, resampled_length(frames, 44100, 16000))


def test_stream_refuses_blocks_with_other_channel_counts() -> None:
    with pytest.raises(ValueError, match=r"expected a block shaped \(2, samples\), got \(1, 4\)"):
        StreamResampler(44100, 16000, channels=2).process(np.zeros((1, 4), dtype=np.float32))
