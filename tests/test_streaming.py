"""The streaming engine: blocks of any size in, output equal to offline processing out."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from sepframework.baselines.repet_sim import RepetSim
from sepframework.interfaces import SeparationError, Separator
from sepframework.pipeline import OutputSpec
from sepframework.stft import STFT
from sepframework.pipeline import separate_file_streaming
from sepframework.streaming import Streamer
from tests.test_gru_model import noise, small_separator

TOLERANCE = 1e-5


class FixedSplit(Separator):
    """A frame-causal test model: vocals get 30 % of every bin, accompaniment 70 %."""

    sample_rate = 8000
    sources = ("vocals", "accompaniment")

    def __init__(self) -> None:
        super().__init__()
        self.stft = STFT(256, 64)

    @classmethod
    def load(cls, args: Mapping[str, Any], weights: Mapping[str, Any] | None, device: str = "cpu") -> FixedSplit:
        return cls()

    def separate_block(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        return {"vocals": 0.3 * audio, "accompaniment": 0.7 * audio}

    def frame_processor(self):
        return lambda spec: {"vocals": 0.3 * spec, "accompaniment": 0.7 * spec}


def stream_through(streamer: Streamer, audio: np.ndarray, sizes: list[int]) -> tuple[dict[str, np.ndarray], list[int]]:
    """Feed ``audio`` in blocks cycling through ``sizes``; the joined output and the output lag after each block."""
    parts, lags, start, returned = [], [], 0, 0
    while start < audio.shape[1]:
        block = audio[:, start : start + sizes[len(parts) % len(sizes)]]
        start += block.shape[1]
        parts.append(streamer.process(block))
        returned += parts[-1]["vocals"].shape[1]
        lags.append(start - returned)
    parts.append(streamer.flush())
    return {name: np.concatenate([part[name] for part in parts], axis=1) for name in parts[0]}, lags


def random_sizes(seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return [1, 1, 2, 3, 7, 511, 512, 513, 1023, 1024, 1025, 4099] + [int(n) for n in rng.integers(1, 3000, 20)]


@pytest.mark.parametrize("length", [1, 100, 1023, 1024, 1025, 16000 + 123])
def test_streamed_output_equals_offline_causal_output(length: int) -> None:
    model = small_separator()
    audio = noise(2, length, seed=length)
    offline = model.separate_block(audio)
    streamed, _ = stream_through(Streamer(model, channels=2), audio, random_sizes(length))
    for name in model.sources:
        assert streamed[name].shape == audio.shape
        assert np.abs(streamed[name] - offline[name]).max() < TOLERANCE


def test_streaming_at_another_rate_equals_offline_with_resampling() -> None:
    model = small_separator(seed=3)
    audio = noise(1, 44100 + 77, seed=9)
    offline = model.separate(audio, 44100)
    streamed, _ = stream_through(Streamer(model, channels=1, sample_rate=44100), audio, random_sizes(1))
    for name in model.sources:
        assert streamed[name].shape == audio.shape
        assert np.abs(streamed[name] - offline[name]).max() < TOLERANCE


def test_every_sample_comes_out_within_the_latency() -> None:
    model = small_separator()
    streamer = Streamer(model, channels=1)
    assert streamer.latency_samples == 1023  # 63.9 ms at 16 kHz
    _, lags = stream_through(streamer, noise(1, 20000), [1, 37, 700, 1024])
    assert max(lags) <= streamer.latency_samples
    assert max(lags) > streamer.latency_samples - 1024 // 2  # output does wait for whole frames


@pytest.mark.parametrize("length", [0, 1, 255, 4000])
def test_a_perfect_split_reconstructs_exactly_with_any_blocks(length: int) -> None:
    audio = noise(2, length, seed=5)
    streamed, _ = stream_through(Streamer(FixedSplit(), channels=2), audio, [1, 63, 64, 65, 300])
    np.testing.assert_allclose(streamed["vocals"], 0.3 * audio, atol=1e-6)
    np.testing.assert_allclose(streamed["accompaniment"], 0.7 * audio, atol=1e-6)


class NaNFrames(FixedSplit):
    """A streaming model with a bug: its frame processor gives NaN vocals."""

    def frame_processor(self):
        return lambda spec: {"vocals": spec * np.nan, "accompaniment": spec}


def test_a_frame_processor_giving_nan_is_a_clear_error_not_audio() -> None:
    streamer = Streamer(NaNFrames(), channels=1)
    with pytest.raises(SeparationError, match=r"^the model is broken: the frame processor of tests.test_streaming.NaNFrames "
                                              r"returned NaN or infinite samples in 'vocals'$"):
        streamer.process(np.ones((1, 4096), dtype=np.float32) * 0.1)


class FailingFrames(FixedSplit):
    """A streaming model with bugs: its frame processor cannot be made, or fails on its first frames."""

    def __init__(self, fails_at: str) -> None:
        super().__init__()
        self.fails_at = fails_at

    def frame_processor(self):
        if self.fails_at == "making":
            raise TypeError("missing state")

        def process(spec):
            raise ValueError("bins do not match")
        return process


@pytest.mark.parametrize(("fails_at", "message"), [
    ("making", r"frame_processor\(\) raised TypeError: missing state"),
    ("processing", r"frame_processor\(\)\(frames\) raised ValueError: bins do not match"),
])
def test_a_frame_processor_raising_is_a_clear_error_naming_the_model(fails_at: str, message: str) -> None:
    with pytest.raises(SeparationError, match=rf"^the model is broken: tests.test_streaming.FailingFrames.{message}$"):
        Streamer(FailingFrames(fails_at), channels=1).process(np.ones((1, 4096), dtype=np.float32) * 0.1)


def test_misuse_raises_clear_errors() -> None:
    streamer = Streamer(FixedSplit(), channels=2)
    with pytest.raises(SeparationError, match="shaped"):
        streamer.process(np.zeros((1, 10), dtype=np.float32))
    streamer.flush()
    with pytest.raises(SeparationError, match="already flushed"):
        streamer.process(np.zeros((2, 10), dtype=np.float32))
    with pytest.raises(SeparationError, match="cannot stream"):
        Streamer(RepetSim(), channels=1)
    with pytest.raises(SeparationError, match="cannot stream"):
        Streamer(small_separator(bidirectional=True), channels=1)
    for rate in (0, float("nan")):
        with pytest.raises(SeparationError, match=f"sample_rate must be a number of Hz, at least 1000, got {rate}"):
            Streamer(FixedSplit(), channels=1, sample_rate=rate)
    with pytest.raises(SeparationError, match="channels must be a whole number, at least 1, got 2.0"):
        Streamer(FixedSplit(), channels=2.0)
    with pytest.raises(SeparationError, match="audio must hold float samples .* got int16; divide 16-bit PCM by 32768"):
        Streamer(FixedSplit(), channels=1).process(np.ones((1, 100), dtype=np.int16))


def test_file_streaming_writes_the_offline_result(tmp_path: Path) -> None:
    model = small_separator()
    audio = noise(2, 22050 * 2 + 5, seed=11)
    source = tmp_path / "song.wav"
    sf.write(source, audio.T, 22050, subtype="FLOAT")
    spec = OutputSpec(outdir=tmp_path / "out")
    paths = separate_file_streaming(source, model, spec, stems=["vocals"])
    written, rate = sf.read(paths["vocals"], dtype="float32", always_2d=True)
    assert rate == 22050 and list(paths) == ["vocals"]
    np.testing.assert_allclose(written.T, model.separate(audio, 22050)["vocals"], atol=TOLERANCE)
    with pytest.raises(SeparationError, match="already exists"):
        separate_file_streaming(source, model, spec, stems=["vocals"])
    with pytest.raises(SeparationError, match="unknown stem"):
        separate_file_streaming(source, model, spec, stems=["drums"])


class ResidualSplit(FixedSplit):
    residual_source = "accompaniment"


def test_a_reused_input_buffer_does_not_change_what_was_already_given() -> None:
    audio = np.random.default_rng(5).standard_normal((2, 35280)).astype(np.float32) * 0.1  # 0.8 s at 44.1 kHz
    streamer = Streamer(ResidualSplit(), channels=2, sample_rate=44100)  # resampled: the residual uses the mixture
    buffer, parts = np.empty((2, 512), dtype=np.float32), []
    for start in range(0, audio.shape[1], 512):
        n = audio[:, start : start + 512].shape[1]
        buffer[:, :n] = audio[:, start : start + 512]
        parts.append(streamer.process(buffer[:, :n]))
    parts.append(streamer.flush())
    stems = {name: np.concatenate([part[name] for part in parts], axis=1) for name in ("vocals", "accompaniment")}
    np.testing.assert_allclose(stems["vocals"] + stems["accompaniment"], audio, atol=1e-6)
