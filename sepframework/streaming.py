"""Real-time separation: blocks of any size in, separated blocks out, for frame-causal models.

A model streams when each output STFT frame depends only on the mixture frames up to
it. It exposes an ``stft`` (:class:`~sepframework.stft.STFT`, ``center=True``) and a
``frame_processor()`` returning a fresh stateful callable that maps consecutive mixture
frames ``(channels, bins, k)`` to ``{source: (channels, bins, k)}``.

:class:`Streamer` carries the analysis buffer, the model state and the overlap-add tail
across calls, so the concatenation of everything :meth:`Streamer.process` and
:meth:`Streamer.flush` return equals the model's offline output on the whole signal:
the same zero padding at both ends, the same frames, the same window-sum normalisation.
The end of the signal is extended by ``hop_length`` zeros (cropped from the output) so
that its last samples lie under two frames, where the window sum is not tiny; a
streaming model's ``separate_block`` pads the same way (see :func:`end_padded`).
A sample is returned as soon as every frame that overlaps it has been synthesised, at
most ``n_fft - 1`` samples after it arrived (:attr:`Streamer.latency_samples`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
import scipy.fft

from sepframework.audio import StreamResampler
from sepframework.interfaces import (
    SeparationError,
    Separator,
    check_float_samples,
    check_sample_rate,
    fit_length,
    model_code,
    stems_problem,
)
from sepframework.residual import StemsBack
from sepframework.stft import STFT

FrameProcessor = Callable[[np.ndarray], dict[str, np.ndarray]]


@runtime_checkable
class StreamingModel(Protocol):
    """What :class:`Streamer` needs from a separator."""

    sample_rate: int
    sources: tuple[str, ...]
    stft: STFT

    def frame_processor(self) -> FrameProcessor:
        """A fresh processor of consecutive mixture frames, with its own state."""


def streaming_model(model: Separator) -> StreamingModel:
    """``model`` if it can stream, else a :class:`SeparationError` naming it."""
    if not isinstance(model, StreamingModel):
        raise SeparationError(
            f"this model ({type(model).__name__}) cannot stream: it is not frame-causal; "
            "use a causal model such as 'gru-stream'"
        )
    if not model.stft.center:
        raise SeparationError("streaming needs a centred STFT (center=True)")
    return model


def end_padded(audio: np.ndarray, stft: STFT) -> np.ndarray:
    """``audio`` (channels, n) followed by ``stft.hop_length`` zeros, as :class:`Streamer` ends a stream."""
    return np.pad(audio, ((0, 0), (0, stft.hop_length)))


class FrameAnalyzer:
    """Cuts a sample stream into the frames ``STFT.forward`` gives for the whole signal."""

    def __init__(self, stft: STFT, channels: int) -> None:
        self.stft = stft
        self._frames_of = STFT(stft.n_fft, stft.hop_length, stft.window, center=False)
        # Centring prepends n_fft // 2 zeros to the signal.
        self.buffer = np.zeros((channels, stft.n_fft // 2), dtype=np.float32)
        self.received = 0
        self.emitted = 0

    def push(self, block: np.ndarray) -> np.ndarray:
        """Complete frames (channels, bins, k) after adding ``block`` (channels, n)."""
        self.buffer = np.concatenate([self.buffer, block], axis=1)
        self.received += block.shape[1]
        return self._take(self._frames_of.n_frames(self.buffer.shape[1]))

    def finish(self) -> np.ndarray:
        """The remaining frames, reading the end as zero-padded like the offline STFT."""
        remaining = self.stft.n_frames(self.received) - self.emitted
        needed = (remaining - 1) * self.stft.hop_length + self.stft.n_fft
        if remaining > 0 and needed > self.buffer.shape[1]:
            padding = np.zeros((self.buffer.shape[0], needed - self.buffer.shape[1]), dtype=np.float32)
            self.buffer = np.concatenate([self.buffer, padding], axis=1)
        return self._take(max(remaining, 0))

    def _take(self, count: int) -> np.ndarray:
        hop, n_fft = self.stft.hop_length, self.stft.n_fft
        if count == 0:
            return np.zeros((self.buffer.shape[0], self.stft.n_bins, 0), dtype=np.complex64)
        frames = self._frames_of.forward(self.buffer[:, : (count - 1) * hop + n_fft])
        self.buffer = self.buffer[:, count * hop :]
        self.emitted += count
        return frames


class OverlapAdder:
    """Inverse FFT and overlap-add of consecutive frames, releasing finished samples.

    Divides by the sum of squared windows of the frames that overlap each sample, as
    :meth:`STFT.inverse` does, and drops the centring padding.
    """

    def __init__(self, stft: STFT, channels: int) -> None:
        self.stft = stft
        self.tail = np.zeros((channels, stft.n_fft), dtype=np.float32)
        self.window_sum = np.zeros(stft.n_fft, dtype=np.float32)
        self.to_skip = stft.n_fft // 2  # centring padding, not part of the signal
        self.released = 0

    def push(self, spec: np.ndarray) -> np.ndarray:
        """Samples (channels, m) that no later frame can change, after adding ``spec`` (channels, bins, k)."""
        count = spec.shape[2]
        hop, n_fft, window = self.stft.hop_length, self.stft.n_fft, self.stft.window
        if count == 0:
            return np.zeros((self.tail.shape[0], 0), dtype=np.float32)
        frames = scipy.fft.irfft(spec.transpose(0, 2, 1), n=n_fft, axis=-1).astype(np.float32, copy=False)
        span = (count - 1) * hop + n_fft
        total = np.zeros((self.tail.shape[0], span), dtype=np.float32)
        weights = np.zeros(span, dtype=np.float32)
        total[:, :n_fft] = self.tail
        weights[:n_fft] = self.window_sum
        squared = window * window
        # a stream brings a frame or two per call, and its window sums are partial at either
        # end: a plain loop, not the batch kernel (kernels.overlap_add), which divides by the
        # steady-state sums of a whole signal
        for index in range(count):
            start = index * hop
            total[:, start : start + n_fft] += frames[:, index] * window
            weights[start : start + n_fft] += squared
        done = count * hop
        self.tail = np.zeros_like(self.tail)
        self.tail[:, : span - done] = total[:, done:]
        self.window_sum = np.zeros_like(self.window_sum)
        self.window_sum[: span - done] = weights[done:]
        return self._release(total[:, :done], weights[:done])

    def finish(self, length: int) -> np.ndarray:
        """The rest of the signal up to ``length`` samples in all (zeros past the last frame)."""
        rest = max(length - self.released, 0)
        samples = np.zeros((self.tail.shape[0], self.to_skip + rest), dtype=np.float32)
        weights = np.zeros(samples.shape[1], dtype=np.float32)
        usable = min(samples.shape[1], self.tail.shape[1])
        samples[:, :usable] = self.tail[:, :usable]
        weights[:usable] = self.window_sum[:usable]
        return self._release(samples, weights)[:, :rest]

    def _release(self, samples: np.ndarray, weights: np.ndarray) -> np.ndarray:
        floor = self.stft.window_sum_floor
        normalised = np.where(weights > floor, samples / np.maximum(weights, floor), samples)
        skip = min(self.to_skip, normalised.shape[1])
        self.to_skip -= skip
        out = normalised[:, skip:].astype(np.float32, copy=False)
        self.released += out.shape[1]
        return out


class Streamer:
    """Separates a stream of (channels, n) blocks, block by block.

    Blocks are at the model's rate unless ``sample_rate`` says otherwise; then they are
    resampled on the way in and every source on the way out (soxr streams, adding their
    own small delay). Everything returned, :meth:`flush` included, has exactly the
    input's length.

    >>> streamer = Streamer(model, channels=2, sample_rate=44100)  # doctest: +SKIP
    >>> for block in blocks:                                       # doctest: +SKIP
    ...     play(streamer.process(block)["vocals"])
    >>> play(streamer.flush()["vocals"])                           # doctest: +SKIP
    """

    def __init__(self, model: Separator, channels: int, sample_rate: int | None = None) -> None:
        self.model = streaming_model(model)
        if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
            raise SeparationError(f"channels must be a whole number, at least 1, got {channels!r}")
        self.channels = int(channels)
        if sample_rate is not None:
            check_sample_rate(sample_rate)
        self.sample_rate = self.model.sample_rate if sample_rate is None else sample_rate
        self.analyzer = FrameAnalyzer(self.model.stft, channels)
        with model_code(self.model, "frame_processor()"):
            self.processor = self.model.frame_processor()
        self.adders = {name: OverlapAdder(self.model.stft, channels) for name in self.model.sources}
        self.back = StemsBack(self.model, self.model.sources, self.sample_rate, channels)
        self.into = (StreamResampler(self.sample_rate, self.model.sample_rate, channels)
                     if self.sample_rate != self.model.sample_rate else None)
        self.received = 0
        self.returned = dict.fromkeys(self.model.sources, 0)
        self.finished = False

    @property
    def latency_samples(self) -> int:
        """Most model-rate samples between a sample's arrival and its output (``n_fft - 1``), resampling aside."""
        return self.model.stft.n_fft - 1

    def process(self, block: np.ndarray) -> dict[str, np.ndarray]:
        """Add ``block`` (channels, n) and return the newly finished output of every source."""
        self._check_open()
        block = np.asarray(block)
        check_float_samples(block)
        block = block.astype(np.float32, copy=False)
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise SeparationError(f"blocks must be shaped ({self.channels}, samples), got {block.shape}")
        if not np.isfinite(block).all():
            raise SeparationError("the input contains NaN or infinite samples")
        self.received += block.shape[1]
        if self.back.mixture is not None:
            self.back.mixture.push(block)
        if self.into is not None:
            block = self.into.process(block)
        return self._with_residual(self._output(self._synthesise(self.analyzer.push(block))))

    def flush(self) -> dict[str, np.ndarray]:
        """End the stream: the remaining output, so the total equals the input's length."""
        self._check_open()
        self.finished = True
        needed = {name: self.received - returned for name, returned in self.returned.items()}
        released = {name: adder.released for name, adder in self.adders.items()}
        parts = []
        if self.into is not None:
            parts.append(self._synthesise(self.analyzer.push(self.into.flush())))
        length = self.analyzer.received  # at the model's rate
        end = np.zeros((self.channels, self.model.stft.hop_length), dtype=np.float32)
        parts += [self._synthesise(self.analyzer.push(end)), self._synthesise(self.analyzer.finish())]
        parts.append({name: adder.finish(length) for name, adder in self.adders.items()})
        rest = {name: np.concatenate([part[name] for part in parts], axis=1)[:, : length - released[name]]
                for name in self.adders}
        stems = {name: fit_length(stem, needed[name]) for name, stem in self._output(rest, last=True).items()}
        return self._with_residual(stems)

    def _check_open(self) -> None:
        if self.finished:
            raise SeparationError("the stream was already flushed; create a new Streamer")

    def _synthesise(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        if frames.shape[2] == 0:
            return {name: np.zeros((self.channels, 0), dtype=np.float32) for name in self.adders}
        with model_code(self.model, "frame_processor()(frames)"):
            stems = self.processor(frames)
        problem = stems_problem(stems, self.adders, frames.shape, spectra=True)
        if problem is not None:  # a plugin bug: never written as audio
            model_class = type(self.model)
            raise SeparationError(f"the model is broken: the frame processor of "
                                  f"{model_class.__module__}.{model_class.__qualname__} {problem}")
        return {name: adder.push(stems[name]) for name, adder in self.adders.items()}

    def _output(self, stems: dict[str, np.ndarray], last: bool = False) -> dict[str, np.ndarray]:
        """The computed stems at the caller's rate, never ahead of the input."""
        out = {}
        resamplers = self.back.resamplers
        for name in self.back.computed:
            stem = stems[name]
            if resamplers is not None:
                stem = resamplers[name].process(stem)
                if last:
                    stem = np.concatenate([stem, resamplers[name].flush()], axis=1)
            stem = stem[:, : self.received - self.returned[name]]
            self.returned[name] += stem.shape[1]
            out[name] = stem
        return out

    def _with_residual(self, stems: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """All sources: ``stems`` plus the residual source, when it is computed from the mixture."""
        residual = self.back.residual
        if residual is None:
            return stems
        self.returned[residual] += next(iter(stems.values())).shape[1]
        return {name: stems[name] if name != residual else self.back.mixture.residual(stems)
                for name in self.model.sources}
