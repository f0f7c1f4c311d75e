"""Separating files: read, resample, separate in chunks, resample back and write the stems;
or feed a :class:`~sepframework.streaming.Streamer` block by block, as a live stream."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sepframework.audio import AudioReader, AudioWriter, StreamResampler, open_reader
from sepframework.background import OrderedWorker, prefetched
from sepframework.engine import plan_segments, separate_stream
from sepframework.interfaces import MIN_SAMPLE_RATE, SeparationError, Separator
from sepframework.interrupts import raise_if_interrupted
from sepframework.outputs import OutputSpec, plan_outputs
from sepframework.residual import StemsBack
from sepframework.streaming import Streamer

#: Samples read from the input per block.
READ_BLOCK = 1 << 16


def _open_outputs(
    stack: contextlib.ExitStack, input_path: Path, reader: AudioReader, paths: dict[str, Path], output: OutputSpec,
    progress: bool,
) -> tuple[dict[str, AudioWriter], tqdm]:
    """An atomic writer for each stem path and a progress bar over the input's samples, both
    closed by ``stack``; a clear error first for a rate below :data:`MIN_SAMPLE_RATE`."""
    rate, channels = reader.sample_rate, reader.channels
    if rate < MIN_SAMPLE_RATE:
        raise SeparationError(f"{input_path}: its sample rate, {rate} Hz, is below the "
                              f"{MIN_SAMPLE_RATE} Hz the framework takes")
    writers = {
        name: stack.enter_context(
            AudioWriter(path, rate, channels, format=output.format, subtype=output.subtype, overwrite=output.overwrite)
        )
        for name, path in paths.items()
    }
    duration = reader.info.duration
    expected = reader.frames or (int(duration * rate) if duration else None)  # mp3/m4a: estimate
    bar = stack.enter_context(tqdm(total=expected, unit="sample", unit_scale=True, disable=not progress,
                                   desc=input_path.name, leave=False))
    return writers, bar


def _resampled(blocks: Iterator[np.ndarray], rate_in: int, rate_out: int, channels: int) -> Iterator[np.ndarray]:
    if rate_in == rate_out:
        yield from blocks
        return
    resampler = StreamResampler(rate_in, rate_out, channels)
    for block in blocks:
        out = resampler.process(block)
        if out.shape[1]:
            yield out
    yield resampler.flush()


class _StemOutput:
    """The stems of one file on their way out: back at the input's rate, the residual
    computed from the mixture, written never past the input's length.

    :meth:`counted` runs in the reading thread; :meth:`write_separated` and :meth:`finish`
    in the writing one, which trusts :attr:`read` (a block is kept for the residual before
    it is counted).
    """

    def __init__(self, reader: AudioReader, model: Separator, writers: dict[str, AudioWriter], bar: tqdm) -> None:
        self.reader, self.writers, self.bar = reader, writers, bar
        self.back = StemsBack(model, list(writers), reader.sample_rate, reader.channels)
        self.read = self.written = 0

    def counted(self) -> Iterator[np.ndarray]:
        """The input's blocks, each kept for the residual and counted as it is read."""
        mixture = self.back.mixture
        for block in self.reader.blocks(READ_BLOCK):
            if mixture is not None:
                mixture.push(block)
            self.read += block.shape[1]
            self.bar.update(block.shape[1])
            yield block

    def write_separated(self, out: dict[str, np.ndarray]) -> None:
        """Write the computed sources of one separated stretch at the model's rate."""
        # block by block: the writer's arrays stay small and are reused, not a segment's
        # worth of fresh memory at the input's rate per stem
        computed, resamplers = self.back.computed, self.back.resamplers
        for start in range(0, next(iter(out.values())).shape[1], READ_BLOCK):
            part = {name: out[name][:, start : start + READ_BLOCK] for name in computed}
            self._write({name: resamplers[name].process(part[name]) for name in computed} if resamplers else part)

    def finish(self) -> None:
        """Write what the resamplers still hold, then silence up to the input's length."""
        computed, resamplers = self.back.computed, self.back.resamplers
        if resamplers:
            self._write({name: resamplers[name].flush() for name in computed})
        if self.written < self.read:
            self._write({name: np.zeros((self.reader.channels, self.read - self.written), dtype=np.float32)
                         for name in computed})

    def _write(self, blocks: dict[str, np.ndarray]) -> None:
        """Write the next samples of every stem, never past the input's length."""
        blocks = {name: block[:, : max(self.read - self.written, 0)] for name, block in blocks.items()}
        if self.back.residual:
            blocks[self.back.residual] = self.back.mixture.residual(blocks)
        for name, writer in self.writers.items():
            writer.write(blocks[name])
        self.written += next(iter(blocks.values())).shape[1]


def separate_file(
    input_path: str | Path,
    model: Separator,
    output: OutputSpec = OutputSpec(),
    stems: Sequence[str] | None = None,
    segment_seconds: float | None = None,
    progress: bool = False,
    model_name: str = "model",
) -> dict[str, Path]:
    """Separate one audio file into stem files, in bounded memory.

    Returns the written path of each requested source. Raises a ``SeparationError`` for
    unreadable input or existing outputs (unless ``output.overwrite``); on any failure no
    partial stem file is left behind.
    """
    input_path = Path(input_path)
    paths = plan_outputs(input_path, model, output, stems, model_name)
    segment, overlap = plan_segments(model, segment_seconds)

    with open_reader(input_path) as reader, contextlib.ExitStack() as stack:
        writers, bar = _open_outputs(stack, input_path, reader, paths, output, progress)
        rate, channels = reader.sample_rate, reader.channels
        stem_output = _StemOutput(reader, model, writers, bar)
        # decoding and resampling run ahead (by up to a segment), resampling back and
        # encoding behind, each in its own thread, while the model separates; both stop
        # before the files close
        ahead = math.ceil(segment * rate / model.sample_rate / READ_BLOCK) + 1
        blocks = prefetched(_resampled(stem_output.counted(), rate, model.sample_rate, channels), depth=ahead)
        with contextlib.closing(blocks), OrderedWorker() as writing:
            for out in separate_stream(model, blocks, segment, overlap, stem_output.back.computed):
                raise_if_interrupted()
                writing.submit(stem_output.write_separated, out)
            writing.submit(stem_output.finish)
            writing.finish()
        if stem_output.read == 0:
            raise SeparationError(f"{input_path}: the file contains no audio samples")
    return paths


#: Samples read from a file per streaming step, at the file's rate (23 ms at 44.1 kHz).
FILE_BLOCK = 1024


def separate_file_streaming(
    input_path: str | Path,
    model: Separator,
    output: OutputSpec = OutputSpec(),
    stems: Sequence[str] | None = None,
    progress: bool = False,
    model_name: str = "model",
) -> dict[str, Path]:
    """Separate one file block by block with a :class:`~sepframework.streaming.Streamer`,
    in constant memory.

    Same outputs and guarantees as :func:`separate_file` (no
    partial files on failure, no overwriting without ``output.overwrite``), but the
    model sees the audio exactly as a live stream would. Returns the written paths.
    """
    input_path = Path(input_path)
    paths = plan_outputs(input_path, model, output, stems, model_name)
    stems = list(paths)
    with open_reader(input_path) as reader, contextlib.ExitStack() as stack:
        writers, bar = _open_outputs(stack, input_path, reader, paths, output, progress)
        streamer = Streamer(model, reader.channels, reader.sample_rate)
        for block in reader.blocks(FILE_BLOCK):
            raise_if_interrupted()
            bar.update(block.shape[1])
            separated = streamer.process(block)
            for name in stems:
                writers[name].write(separated[name])
        if streamer.received == 0:
            raise SeparationError(f"{input_path}: the file contains no audio samples")
        rest = streamer.flush()
        for name in stems:
            writers[name].write(rest[name])
    return paths
