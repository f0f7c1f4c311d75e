"""Separating files: read, resample, separate in chunks, resample back and write the stems;
or feed a :class:`~sepframework.streaming.Streamer` block by block, as a live stream."""

from __future__ import annotations

import contextlib
import math
import os
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sepframework.audio import (
    AudioReader,
    AudioWriter,
    OutputExistsError,
    StreamResampler,
    checked_subtype,
    open_reader,
)
from sepframework.background import OrderedWorker, prefetched
from sepframework.datasets import track_name
from sepframework.engine import plan_segments, separate_stream
from sepframework.interfaces import MIN_SAMPLE_RATE, SeparationError, Separator
from sepframework.interrupts import raise_if_interrupted
from sepframework.residual import StemsBack
from sepframework.streaming import Streamer

#: Default output layout: ``OUTDIR/<track name>/<source>.<ext>``.
DEFAULT_TEMPLATE = "{track}/{source}.{ext}"
#: The fields an output template may use, as plain ``{name}`` (no ``!r``, ``:spec``,
#: ``.attribute`` or ``[index]``).
TEMPLATE_NAMES = ("track", "source", "ext", "model", "parent", "file")
TEMPLATE_FIELDS = ", ".join(f"{{{name}}}" for name in TEMPLATE_NAMES[:-1]) + f" and {{{TEMPLATE_NAMES[-1]}}}"
#: Samples read from the input per block.
READ_BLOCK = 1 << 16


@dataclass(frozen=True)
class OutputSpec:
    """Where and how stems are written."""

    outdir: Path = Path("separated")
    template: str = DEFAULT_TEMPLATE
    format: str = "wav"
    subtype: str | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "outdir", Path(self.outdir))  # accept str paths too
        if isinstance(self.format, str):
            object.__setattr__(self, "format", self.format.lower())  # "FLAC" as "flac", as subtypes ignore case
        checked_subtype(self.format, self.subtype)  # an unknown format or subtype fails here, once
        try:
            fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(self.template)
                      if name is not None]
        except ValueError as error:  # e.g. an unmatched brace
            raise SeparationError(f"bad output template '{self.template}': {error}") from None
        if any(name not in TEMPLATE_NAMES or spec or conversion for name, spec, conversion in fields):
            raise SeparationError(f"bad output template '{self.template}': use the fields {TEMPLATE_FIELDS}")
        example = self._filled(track="track", source="source", model="model", parent="parent", file="file.wav")
        problem = self._relative_path_problem(example)
        if problem is not None:
            raise SeparationError(problem)

    def _filled(self, **fields: str) -> str:
        """The template with ``fields`` (every one but ``ext``, the format) filled in."""
        return self.template.format(ext=self.format, **fields)

    def _relative_path_problem(self, relative: str) -> str | None:
        """Why the template's ``relative`` output path is unusable, or ``None``."""
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            return f"output template '{self.template}' leads outside the output folder"
        if not relative.lower().endswith(f".{self.format}"):
            return f"output template '{self.template}' does not name .{self.format} files; end it with .{{ext}}"
        return None

    def paths(self, input_path: Path, sources: Sequence[str], model: str) -> dict[str, Path]:
        """The output path of each source of ``input_path``.

        Template fields: ``{track}`` (the input's name without extension), ``{source}``,
        ``{ext}`` (the format), ``{model}``, ``{parent}`` (the input's folder name) and
        ``{file}`` (the input's name with its extension).
        """
        track = track_name(input_path)
        model = model.replace("://", "-").replace("/", "-").replace(":", "-").replace("@", "-")  # hf://org/repo@rev
        parent = input_path.absolute().parent.name or "root"
        paths = {}
        for source in sources:
            relative = self._filled(track=track, source=source, model=model, parent=parent, file=input_path.name)
            problem = self._relative_path_problem(relative)
            if problem is not None:  # the names filled in make it so (e.g. a track named '..')
                raise SeparationError(f"{input_path}: {problem}")
            paths[source] = self.outdir / relative
        if len(set(paths.values())) != len(paths):
            raise SeparationError(f"output template '{self.template}' gives every source the same file; use {{source}}")
        return paths


def stem_paths(
    input_path: Path, model: Separator, output: OutputSpec, stems: Sequence[str] | None, model_name: str
) -> dict[str, Path]:
    """The path of each requested stem (``None``: all of the model's); unknown stems, or none, are an error."""
    stems = list(model.sources if stems is None else stems)
    if not stems:
        raise SeparationError(f"no stem requested; this model gives {', '.join(model.sources)} (None: all of them)")
    unknown = [name for name in stems if name not in model.sources]
    if unknown:
        raise SeparationError(
            f"unknown stem(s) {', '.join(unknown)}; this model gives {', '.join(model.sources)}"
        )
    return output.paths(input_path, stems, model_name)


def check_batch(
    inputs: Sequence[Path], model: Separator, output: OutputSpec, stems: Sequence[str] | None, model_name: str
) -> None:
    """Check the stems and template for a batch of inputs, before any is separated.

    Raises a ``SeparationError`` when two inputs (e.g. ``a/song.wav`` and ``b/song.wav``)
    would write the same file, instead of the later one replacing the earlier's stems, or
    when an input's stem would replace another input.
    """
    writers: dict[Path, Path] = {}
    read = {input_path.resolve(): input_path for input_path in inputs}
    for input_path in inputs:
        for path in stem_paths(input_path, model, output, stems, model_name).values():
            other_input = read.get(path.resolve())
            if other_input is not None and other_input != input_path:
                raise SeparationError(f"{input_path}'s stem {path} would replace the input {other_input} of this "
                                      "batch; choose another -o or --template")
            earlier = writers.setdefault(path.absolute(), input_path)
            if earlier != input_path:
                remedy = ""
                if earlier.absolute().parent.name != input_path.absolute().parent.name:  # a/song.wav, b/song.wav
                    remedy = "give each its own folder with --template '{parent}/{track}/{source}.{ext}', or "
                elif earlier.name != input_path.name:  # song.mp3, song.wav
                    remedy = "give each its own folder with --template '{file}/{source}.{ext}', or "
                raise SeparationError(
                    f"{earlier} and {input_path} would both write {path}; {remedy}separate them in two runs "
                    "with different -o"
                )


def plan_outputs(
    input_path: Path, model: Separator, output: OutputSpec, stems: Sequence[str] | None, model_name: str
) -> dict[str, Path]:
    """The path of each requested stem, after checking the stems and existing files."""
    paths = stem_paths(input_path, model, output, stems, model_name)
    itself = [str(path) for path in paths.values()
              if path.exists() and input_path.exists() and os.path.samefile(path, input_path)]
    if itself:
        raise SeparationError(f"the output {itself[0]} is the input itself; choose another -o or --template")
    existing = [str(path) for path in paths.values() if path.exists()]
    if existing and not output.overwrite:
        raise OutputExistsError(f"output already exists: {', '.join(existing)} (use --overwrite, or overwrite=True in Python, to replace)")
    return paths


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
    block_samples: int = FILE_BLOCK,
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
        for block in reader.blocks(block_samples):
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
