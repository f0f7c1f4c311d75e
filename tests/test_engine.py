"""The chunked engine: bounded segments joined so that chunked output equals whole output."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from sepframework.engine import crossfade_weights, plan_segments, separate_stream
from sepframework.interfaces import SeparationError, Separator

TAPS = 31


class FIRSeparator(Separator):
    """A local test model: vocals = a short FIR low-pass of the input, accompaniment = the rest."""

    sample_rate = 8000
    sources = ("vocals", "accompaniment")
    context_samples = TAPS
    segment_seconds = 2.0

    def __init__(self) -> None:
        super().__init__()
        self.kernel = np.hanning(TAPS).astype(np.float32)
        self.kernel /= self.kernel.sum()
        self.calls: list[int] = []

    @classmethod
    def load(cls, args: Mapping[str, Any], weights: Mapping[str, Any] | None, device: str = "cpu") -> FIRSeparator:
        return cls()

    def separate_block(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        self.calls.append(audio.shape[1])
        low = np.stack([np.convolve(channel, self.kernel)[TAPS // 2 : TAPS // 2 + audio.shape[1]] for channel in audio]).astype(np.float32)
        return {"vocals": low, "accompaniment": audio - low}


def blocks_of(audio: np.ndarray, sizes: list[int]):
    start, i = 0, 0
    while start < audio.shape[1]:
        size = sizes[i % len(sizes)]
        yield audio[:, start : start + size]
        start += size
        i += 1


def joined(model: Separator, audio: np.ndarray, segment: int, overlap: int, sizes: list[int]) -> dict[str, np.ndarray]:
    parts = list(separate_stream(model, blocks_of(audio, sizes), segment, overlap))
    return {name: np.concatenate([part[name] for part in parts], axis=1) for name in model.sources}


@pytest.mark.parametrize("length", [1, 500, 16000, 16001, 16000 * 7 + 123])
@pytest.mark.parametrize("sizes", [[4096], [1, 777, 10000, 3]])
def test_chunked_output_equals_whole_output_for_a_local_model(length: int, sizes: list[int]) -> None:
    rng = np.random.default_rng(length)
    audio = rng.standard_normal((2, length)).astype(np.float32)
    model = FIRSeparator()
    whole = model.separate_block(audio)
    segment, overlap = plan_segments(model, None)
    chunked = joined(model, audio, segment, overlap, sizes)
    for name in model.sources:
        assert chunked[name].shape == audio.shape
        np.testing.assert_allclose(chunked[name], whole[name], atol=1e-5)


def test_only_the_requested_sources_are_joined_and_they_equal_the_full_run() -> None:
    rng = np.random.default_rng(3)
    audio = rng.standard_normal((2, 16000 * 5)).astype(np.float32)
    model = FIRSeparator()
    segment, overlap = plan_segments(model, 1.0)
    everything = joined(model, audio, segment, overlap, [4096])

    parts = list(separate_stream(model, blocks_of(audio, [4096]), segment, overlap, sources=["vocals"]))

    assert all(set(part) == {"vocals"} for part in parts)
    np.testing.assert_array_equal(np.concatenate([part["vocals"] for part in parts], axis=1), everything["vocals"])


def test_segments_are_bounded_whatever_the_input_length() -> None:
    model = FIRSeparator()
    segment, overlap = plan_segments(model, 1.0)
    audio = np.zeros((1, 8000 * 60), dtype=np.float32)
    joined(model, audio, segment, overlap, [65536])
    assert max(model.calls) < segment + overlap
    assert len(model.calls) == pytest.approx(audio.shape[1] / (segment - overlap), abs=2)


def test_crossfade_weights_sum_to_one_and_leave_context_out() -> None:
    weights = crossfade_weights(100, 10)
    assert np.all(weights[:10] == 0) and np.all(weights[-10:] == 1)
    assert np.all(np.diff(weights) >= 0)
    np.testing.assert_allclose(weights + weights[::-1], 1.0, atol=1e-6)


@pytest.mark.parametrize(("context", "segment_seconds", "shortest_ramp"),
                         [(TAPS, 1.0, 2000), (TAPS, None, 8000), (8000, None, 8000), (8000, 4.1, 400)])
def test_no_click_at_segment_boundaries_for_a_model_that_differs_per_segment(
    context: int, segment_seconds: float | None, shortest_ramp: int
) -> None:
    class GainPerSegment(FIRSeparator):
        context_samples = context
        segment_seconds = 10.0

        def separate_block(self, audio):  # each segment gets a different gain
            gain = 1.0 + 0.1 * len(self.calls)
            self.calls.append(audio.shape[1])
            return {"vocals": audio * gain, "accompaniment": audio * (1 - gain)}

    model = GainPerSegment()
    segment, overlap = plan_segments(model, segment_seconds)
    audio = np.ones((1, 8000 * 25), dtype=np.float32)
    vocals = joined(model, audio, segment, overlap, [4096])["vocals"][0]
    assert len(model.calls) > 2
    # a step between segments would show as one large jump; the crossfade spreads it over its
    # ramp, a second at most, 50 ms at least, even when the model's context takes most of the overlap
    assert np.max(np.abs(np.diff(vocals))) == pytest.approx(0.1 / shortest_ramp, rel=0.05)  # float32 rounding


def test_a_model_reusing_its_output_buffers_is_joined_from_copies() -> None:
    class ReusedBuffers(FIRSeparator):
        context_samples = 0

        def separate_block(self, audio):
            self.buffers = getattr(self, "buffers", np.zeros((2, 2, 8000 * 4), dtype=np.float32))
            vocals, accompaniment = (buffer[:audio.shape[0], :audio.shape[1]] for buffer in self.buffers)
            np.multiply(audio, 0.5, out=vocals)
            np.subtract(audio, vocals, out=accompaniment)
            return {"vocals": vocals, "accompaniment": accompaniment}

    audio = np.random.default_rng(0).standard_normal((2, 8000 * 7)).astype(np.float32)
    model = ReusedBuffers()
    chunked = joined(model, audio, *plan_segments(model, 1.0), [4096])
    np.testing.assert_allclose(chunked["vocals"], 0.5 * audio, atol=1e-6)


def test_too_short_segment_is_a_clear_error() -> None:
    class LongContext(FIRSeparator):
        context_samples = 8000

    with pytest.raises(SeparationError, match="too short; use at least 1 s"):
        plan_segments(FIRSeparator(), 0.01)
    with pytest.raises(SeparationError, match=r"too short for the model's context \(1 s each side of a segment\) "
                                              r"and a crossfade; use at least 4.10 s"):
        plan_segments(LongContext(), 4.09)
    assert plan_segments(LongContext(), 4.1) == (32800, 16400)  # the least it advises is accepted
    class ShortSegments(FIRSeparator):
        context_samples = 0
        segment_seconds = 0.15  # a plugin's own choice may be under the 1 s a user may ask

    assert plan_segments(ShortSegments(), None) == (1200, 400)  # the 50 ms ramp, not a quarter of the segment

    class OddContext(FIRSeparator):
        context_samples = 3521  # needs 1.8605 s

    with pytest.raises(SeparationError, match="use at least 1.87 s"):  # rounded up, not to 1.86
        plan_segments(OddContext(), 1.86)
    plan_segments(OddContext(), 1.87)
    with pytest.raises(SeparationError, match="positive"):
        plan_segments(FIRSeparator(), -1)
    with pytest.raises(SeparationError, match="positive number of seconds, got nan"):
        plan_segments(FIRSeparator(), float("nan"))


class BrokenOutput(FIRSeparator):
    """FIRSeparator whose separate_block breaks the contract in one chosen way."""

    def __init__(self, flaw: str) -> None:
        super().__init__()
        self.flaw = flaw

    def separate_block(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        stems = super().separate_block(audio)
        if self.flaw == "renamed":
            return {"voice": stems["vocals"], "accompaniment": stems["accompaniment"]}
        if self.flaw == "half length":
            return {name: stem[:, : stem.shape[1] // 2] for name, stem in stems.items()}
        if self.flaw == "mono":
            return {name: stem[:1] for name, stem in stems.items()}
        if self.flaw == "nan":
            stems["vocals"][0, -1] = np.nan
        if self.flaw == "int16":
            stems["vocals"] = (stems["vocals"] * 32767).astype(np.int16)
        return stems


@pytest.mark.parametrize(
    ("flaw", "message"),
    [
        ("renamed", "returned the sources ['voice', 'accompaniment'], without 'vocals'"),
        ("half length", "returned 'vocals' shaped (2, 4000) for a block shaped (2, 8000)"),
        ("mono", "returned 'vocals' shaped (1, 8000) for a block shaped (2, 8000)"),
        ("nan", "returned NaN or infinite samples in 'vocals'"),
        ("int16", "returned 'vocals' as int16 values, not float"),
    ],
)
def test_output_that_breaks_the_contract_is_a_clear_error_naming_the_model(flaw: str, message: str) -> None:
    audio = np.random.default_rng(0).standard_normal((2, 8000)).astype(np.float32)
    with pytest.raises(SeparationError) as raised:
        joined(BrokenOutput(flaw), audio, 16000, 8000, [4096])
    assert str(raised.value) == f"the model is broken: tests.test_engine.BrokenOutput.separate_block {message}"


def test_input_with_nan_is_named_as_the_cause() -> None:
    audio = np.zeros((2, 8000), dtype=np.float32)
    audio[1, 100] = np.nan
    with pytest.raises(SeparationError, match=r"^the input contains NaN or infinite samples$"):
        joined(FIRSeparator(), audio, 16000, 8000, [4096])
    with pytest.raises(SeparationError, match=r"^the input contains NaN or infinite samples$"):
        FIRSeparator().separate(audio, 44100)


def test_separate_keeps_a_mono_vector_shape_and_refuses_integer_or_transposed_audio() -> None:
    model = FIRSeparator()
    mono = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    stems = model.separate(mono, 8000)
    assert stems["vocals"].shape == mono.shape
    np.testing.assert_allclose(stems["vocals"], model.separate(mono[None], 8000)["vocals"][0])
    with pytest.raises(SeparationError, match=r"audio must hold float samples \(full scale ±1.0\), got int16; "
                                              "divide 16-bit PCM by 32768"):
        model.separate((mono * 32767).astype(np.int16), 8000)
    stereo_as_read = np.stack([mono, mono], axis=1)  # (samples, channels), as soundfile.read gives it
    with pytest.raises(SeparationError, match=r"audio shaped \(8000, 2\) looks like \(samples, channels\); pass its transpose \(.T\)"):
        model.separate(stereo_as_read, 8000)
    for rate in (0, -8000, None, float("inf"), True, 999):
        with pytest.raises(SeparationError, match=f"sample_rate must be a number of Hz, at least 1000, got {rate}"):
            model.separate(mono, rate)


def test_a_bad_segment_length_of_the_model_names_the_model_not_the_option() -> None:
    class NoSegment(FIRSeparator):
        segment_seconds = float("nan")

    class ShortSegment(FIRSeparator):
        context_samples = 8000
        segment_seconds = 1.5

    with pytest.raises(SeparationError, match=r"^the model's .*NoSegment.segment_seconds must be a positive number "
                                              r"of seconds, got nan$"):
        plan_segments(NoSegment(), None)
    with pytest.raises(SeparationError, match=r"^the model's .*ShortSegment.segment_seconds 1.5 s is too short for "
                                              r"the model's context \(1 s each side of a segment\) and a crossfade; use at least 4.10 s$"):
        plan_segments(ShortSegment(), None)


def test_a_generator_reusing_its_buffer_gets_the_same_result() -> None:
    audio = np.random.default_rng(2).standard_normal((2, 8000 * 5)).astype(np.float32)
    model = FIRSeparator()
    segment, overlap = plan_segments(model, 1.0)

    def reused_buffer():
        buffer = np.empty((2, 1000), dtype=np.float32)
        for start in range(0, audio.shape[1], 1000):
            buffer[:] = audio[:, start : start + 1000]
            yield buffer

    parts = list(separate_stream(model, reused_buffer(), segment, overlap))
    vocals = np.concatenate([part["vocals"] for part in parts], axis=1)
    np.testing.assert_allclose(vocals, joined(model, audio, segment, overlap, [1000])["vocals"], atol=1e-6)


@pytest.mark.parametrize(("segment", "overlap", "sources", "message"), [
    (44100, 44100, None, "0 <= 2 \\* overlap <= segment"),
    (0, 0, None, "segment >= 1"),
    (1000, 2000, None, "got 1000 and 2000"),
    (16000, 1000, ["drums"], "unknown source\\(s\\) drums; the model gives vocals, accompaniment"),
])
def test_separate_stream_refuses_unusable_arguments(segment: int, overlap: int, sources, message: str) -> None:
    blocks = iter([np.zeros((1, 8000), dtype=np.float32)])
    with pytest.raises(SeparationError, match=message):
        next(separate_stream(FIRSeparator(), blocks, segment, overlap, sources))


def test_moving_a_model_to_a_device_that_is_not_there_is_a_clear_error() -> None:
    with pytest.raises(SeparationError, match="unknown device 'gpu' \\(use auto, cpu, cuda or cuda:N\\)"):
        FIRSeparator().to("gpu")
    assert FIRSeparator().to("cpu").device == "cpu"
    with pytest.raises(SeparationError, match="must be shaped \\(channels, samples\\), got an array of shape \\(0, 1000\\)"):
        FIRSeparator().separate(np.zeros((0, 1000), dtype=np.float32), 8000)


def test_a_gpu_index_beyond_the_machine_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from sepframework.loading import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == "cuda:0"
    with pytest.raises(SeparationError, match=r"device 'cuda:9' was requested but this machine has 1 CUDA GPU\(s\), "
                                              r"cuda:0 to cuda:0"):
        resolve_device("cuda:9")
    with pytest.raises(SeparationError, match="unknown device 'cudax'"):
        resolve_device("cudax")
