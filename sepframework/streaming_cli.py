"""``sep stream``: separate raw PCM arriving on stdin, writing raw PCM stems live.

Example real-time chain (44.1 kHz stereo in, vocals out to a player)::

    ffmpeg -i song.mp3 -f s16le -ar 44100 -ac 2 - \\
      | sep stream --rate 44100 --channels 2 --vocals - \\
      | ffplay -f s16le -ar 44100 -ac 2 -
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import warnings
from typing import BinaryIO

import click
import numpy as np

from sepframework.cli_options import offline_option
from sepframework.interfaces import MAX_CHANNELS, MIN_SAMPLE_RATE, SeparationError

#: Little-endian sample formats: numpy dtype and full scale (None: float, unscaled).
PCM_FORMATS = {"s16le": (np.dtype("<i2"), 32768.0), "f32le": (np.dtype("<f4"), None)}
#: Default streaming model.
DEFAULT_MODEL = "gru-stream"
#: Accepted --rate (Hz): from 1 kHz, below which there is no music to separate and
#: resampling to the model's rate multiplies the work (16x at 1 kHz for a 16 kHz model;
#: 16000x, minutes per second of input, at 1 Hz), to 768 kHz, the highest PCM rate in use.
RATE_RANGE = (MIN_SAMPLE_RATE, 768_000)
#: Most --block frames (about 22 s at 48 kHz): larger blocks only add latency and memory.
MAX_BLOCK = 2**20


def decode_pcm(data: bytes, fmt: str, channels: int) -> np.ndarray:
    """Interleaved PCM bytes (whole frames) as float32 (channels, samples).

    Float samples that are NaN or infinite are a :class:`SeparationError`: such input is
    almost always integer PCM read with the wrong ``--format``.
    """
    dtype, scale = PCM_FORMATS[fmt]
    samples = np.frombuffer(data, dtype=dtype).reshape(-1, channels).T.astype(np.float32)
    if scale:
        return samples / scale
    if not np.isfinite(samples).all():
        raise SeparationError(f"standard input has NaN or infinite samples, so it is not {fmt} audio: "
                              "is --format right? (s16le for 16-bit PCM)")
    return samples


def encode_pcm(audio: np.ndarray, fmt: str) -> bytes:
    """Float (channels, samples) as interleaved PCM bytes; integers are clipped to full scale."""
    dtype, scale = PCM_FORMATS[fmt]
    interleaved = audio.T
    if scale:
        interleaved = np.clip(np.rint(interleaved * scale), -scale, scale - 1)
    return np.ascontiguousarray(interleaved, dtype=dtype).tobytes()


def clipped_samples(audio: np.ndarray, fmt: str) -> int:
    """How many samples of ``audio`` :func:`encode_pcm` clips to full scale in ``fmt``."""
    scale = PCM_FORMATS[fmt][1]
    if not scale:
        return 0
    # rounded beyond the largest or below the smallest integer (without rounding every sample again)
    return int(np.count_nonzero((audio >= (scale - 0.5) / scale) | (audio < -(scale + 0.5) / scale)))


def _shown(path: str) -> str:
    """An output path as messages name it (``-`` is stdout)."""
    return "stdout" if path == "-" else path


def _written_file(path: str) -> tuple[int, int] | str:
    """What writing to ``path`` (``-``: stdout) reaches: an existing file's (device, inode),
    so that ``/dev/stdout`` and ``-`` or two links to one file compare equal; else the real path."""
    try:
        info = os.fstat(sys.stdout.fileno()) if path == "-" else os.stat(path)
    except (OSError, AttributeError, ValueError):  # no such file yet, or no stdout
        return path if path == "-" else os.path.realpath(path)
    return info.st_dev, info.st_ino


def _stdin_file() -> tuple[int, int] | None:
    """The (device, inode) of the regular file standard input reads, if it is one."""
    try:
        info = os.fstat(sys.stdin.fileno())
    except (OSError, AttributeError, ValueError):  # no stdin, or not a file descriptor
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISREG(info.st_mode) else None


def check_targets(targets: dict[str, str], overwrite: bool) -> None:
    """A usage error when stems share an output; a :class:`SeparationError` when one would
    replace the file on standard input, or a file without ``overwrite``."""
    seen: dict[tuple[int, int] | str, str] = {}
    stdout, stdin = _written_file("-"), _stdin_file()
    for name, path in targets.items():
        where = _written_file(path)
        if where == stdin:
            raise SeparationError(f"--{name} {path} is the file on standard input: write the stems elsewhere")
        if where in seen:
            if where == stdout:
                raise click.UsageError("only one stem can go to stdout (-); write the other to a file or named pipe")
            raise click.UsageError(f"--{seen[where]} and --{name} both write to {path}: give each stem its own path")
        seen[where] = name
        # stdout, under any name, is written as the shell redirected it
        if where != stdout and os.path.isfile(path) and not overwrite:
            raise SeparationError(f"{path} already exists (use --overwrite to replace it)")


def open_output(path: str, stack: contextlib.ExitStack) -> BinaryIO:
    """``-`` for stdout, else a file or named pipe opened for writing until ``stack`` closes.

    A file created here is removed again when the stream fails before writing to it, so
    a rerun with corrected options does not find it in the way.
    """
    if path == "-":
        if sys.stdout is None:
            raise SeparationError("no standard output to write to (-): it is closed")
        return sys.stdout.buffer
    created = not os.path.exists(path)
    try:
        handle = stack.enter_context(open(path, "wb"))
    except OSError as error:
        raise SeparationError(f"{path}: cannot open for writing ({error.strerror})") from None

    def remove_if_failed_empty(failure: type[BaseException] | None, *_: object) -> None:
        if failure is not None and os.path.getsize(path) == 0:
            os.remove(path)

    if created:
        stack.push(remove_if_failed_empty)
    return handle


def write_block(handle: BinaryIO, path: str, data: bytes) -> None:
    """Write and flush ``data`` to the output ``path`` (``-``: stdout) opened as ``handle``.

    A failure is a :class:`SeparationError` naming the output; the unwritten rest is
    dropped, so closing the output at exit raises no second error.
    """
    try:
        handle.write(data)
        handle.flush()
    except OSError as error:
        if path == "-":
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's last flush goes nowhere
        else:
            with contextlib.suppress(OSError):
                handle.close()  # tries the same flush again, fails the same way, then closes the file
        reason = "its reader closed the pipe" if isinstance(error, BrokenPipeError) else error.strerror
        raise SeparationError(f"cannot write {_shown(path)}: {reason}") from None


@click.command()
@click.option("-m", "--model", "model_name", default=DEFAULT_MODEL, show_default=True,
              help="A streaming (causal) model, see `sep models`.")
@click.option("--rate", type=click.IntRange(*RATE_RANGE), default=16000, show_default=True,
              help="Sample rate of the input (Hz).")
@click.option("--channels", type=click.IntRange(1, MAX_CHANNELS), default=1, show_default=True,
              help="Interleaved channels of the input.")
@click.option("--format", "fmt", type=click.Choice(sorted(PCM_FORMATS)), default="s16le", show_default=True,
              help="Sample format of input and outputs.")
@click.option("--vocals", metavar="PATH", help="Where to write the vocals: a file, a named pipe, or - for stdout.")
@click.option("--accompaniment", metavar="PATH", help="Where to write the accompaniment (file, pipe or -).")
@click.option("--block", type=click.IntRange(1, MAX_BLOCK), default=1024, show_default=True,
              help="Most input frames read and separated at once.")
@click.option("--overwrite", is_flag=True, help="Replace existing files (named pipes and devices are always written).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("-q", "--quiet", is_flag=True, help="No message on stderr but errors and warnings.")
@offline_option
def stream(
    model_name: str, rate: int, channels: int, fmt: str, vocals: str | None, accompaniment: str | None, block: int,
    overwrite: bool, device: str, quiet: bool,
) -> None:
    """Separate raw PCM from stdin into raw PCM stems, as it arrives.

    Outputs have the input's rate, channels and format, and exactly its length once
    stdin ends (empty, with a notice, when stdin brings no audio). Each stem is written
    as soon as it is ready (latency: the model's window, 64 ms for gru-stream, plus
    resampling when --rate is not the model's). Existing files are never replaced
    without --overwrite.

    \b
    Example:
      ffmpeg -i song.mp3 -f s16le -ar 44100 -ac 2 - \\
        | sep stream --rate 44100 --channels 2 --vocals - --accompaniment acc.raw > vocals.raw
    """
    import sepframework
    from sepframework.audio.errors import ClippingWarning
    from sepframework.cpu_threads import limit_cpu_threads
    from sepframework.streaming import Streamer

    targets = {name: path for name, path in (("vocals", vocals), ("accompaniment", accompaniment)) if path}
    if not targets:
        raise click.UsageError("give at least one output: --vocals PATH and/or --accompaniment PATH (- for stdout)")
    check_targets(targets, overwrite)
    if sys.stdin is None:
        raise SeparationError("no standard input to read: pipe raw PCM into sep stream (see sep stream -h)")
    source = sys.stdin.buffer
    model = sepframework.load(model_name, device=device)
    # One CPU thread: per-block work is tiny, and a second thread only adds waiting, up to a
    # scheduler slice on busy cores (median 0.4 ms instead of 9 ms per 64 ms block, 2 shared cores).
    limit_cpu_threads(1)
    missing = [name for name in targets if name not in model.sources]
    if missing:
        raise SeparationError(f"model '{model_name}' gives no {', '.join(missing)}")
    streamer = Streamer(model, channels, rate)
    if not quiet:
        latency = 1000 * streamer.latency_samples / model.sample_rate
        click.echo(f"streaming with {model_name}: {latency:.1f} ms algorithmic latency", err=True)
    frame_bytes = PCM_FORMATS[fmt][0].itemsize * channels
    with contextlib.ExitStack() as stack:
        outputs = {name: open_output(path, stack) for name, path in targets.items()}
        clipped = dict.fromkeys(targets, 0)

        def emit(stems: dict[str, np.ndarray]) -> None:
            for name, handle in outputs.items():
                if stems[name].shape[1]:
                    clipped[name] += clipped_samples(stems[name], fmt)
                    write_block(handle, targets[name], encode_pcm(stems[name], fmt))

        pending, received = b"", False
        while chunk := source.read1(block * frame_bytes - len(pending)):  # what has arrived
            pending += chunk
            received = True
            whole = len(pending) - len(pending) % frame_bytes
            if whole:
                emit(streamer.process(decode_pcm(pending[:whole], fmt, channels)))
                pending = pending[whole:]
        emit(streamer.flush())  # every whole frame that arrived, even before a stray partial one
        for name, count in clipped.items():
            if count:  # as sep run says it, even with -q
                warnings.warn(ClippingWarning(
                    f"{_shown(targets[name])}: {count} {name} samples beyond full scale were clipped to fit {fmt}, "
                    "so the stems no longer add up to the input there; --format f32le keeps them"), stacklevel=1)
        if pending:
            raise SeparationError(f"stdin ended inside a frame ({len(pending)} stray bytes, after the whole "
                                  f"frames, which were written); is --format/--channels right?")
    if not received and not quiet:
        click.echo("no audio on standard input: the outputs are empty", err=True)
