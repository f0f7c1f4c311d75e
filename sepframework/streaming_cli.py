"""``sep stream``: separate raw PCM arriving on stdin, writing raw PCM stems live.

Example real-time chain (44.1 kHz stereo in, vocals out to a player)::

    ffmpeg -i song.mp3 -f s16le -ar 44100 -ac 2 - \\
      | sep stream --rate 44100 --channels 2 --vocals - \\
      | ffplay -f s16le -ar 44100 -ac 2 -
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import BinaryIO

import click
import numpy as np

from sepframework.interfaces import SeparationError

#: Little-endian sample formats: numpy dtype and full scale (None: float, unscaled).
PCM_FORMATS = {"s16le": (np.dtype("<i2"), 32768.0), "f32le": (np.dtype("<f4"), None)}
#: Default streaming model.
DEFAULT_MODEL = "gru-stream"


def decode_pcm(data: bytes, fmt: str, channels: int) -> np.ndarray:
    """Interleaved PCM bytes (whole frames) as float32 (channels, samples)."""
    dtype, scale = PCM_FORMATS[fmt]
    samples = np.frombuffer(data, dtype=dtype).reshape(-1, channels).T.astype(np.float32)
    return samples / scale if scale else samples


def encode_pcm(audio: np.ndarray, fmt: str) -> bytes:
    """Float (channels, samples) as interleaved PCM bytes; integers are clipped to full scale."""
    dtype, scale = PCM_FORMATS[fmt]
    interleaved = audio.T
    if scale:
        interleaved = np.clip(np.rint(interleaved * scale), -scale, scale - 1)
    return np.ascontiguousarray(interleaved, dtype=dtype).tobytes()


def open_output(path: str, stack: contextlib.ExitStack) -> BinaryIO:
    """``-`` for stdout, else a file or named pipe opened for writing."""
    if path == "-":
        return sys.stdout.buffer
    try:
        return stack.enter_context(open(path, "wb"))
    except OSError as error:
        raise SeparationError(f"{path}: cannot open for writing ({error.strerror})") from None


@click.command()
@click.option("-m", "--model", "model_name", default=DEFAULT_MODEL, show_default=True,
              help="A streaming (causal) model, see `sep models`.")
@click.option("--rate", type=click.IntRange(min=1), default=16000, show_default=True, help="Sample rate of the input (Hz).")
@click.option("--channels", type=click.IntRange(min=1), default=1, show_default=True, help="Interleaved channels of the input.")
@click.option("--format", "fmt", type=click.Choice(sorted(PCM_FORMATS)), default="s16le", show_default=True,
              help="Sample format of input and outputs.")
@click.option("--vocals", metavar="PATH", help="Where to write the vocals: a file, a named pipe, or - for stdout.")
@click.option("--accompaniment", metavar="PATH", help="Where to write the accompaniment (file, pipe or -).")
@click.option("--block", type=click.IntRange(min=1), default=1024, show_default=True,
              help="Most input frames read and separated at once.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("-q", "--quiet", is_flag=True, help="No message on stderr.")
def stream(model_name, rate, channels, fmt, vocals, accompaniment, block, device, quiet) -> None:
    """Separate raw PCM from stdin into raw PCM stems, as it arrives.

    Outputs have the input's rate, channels and format, and exactly its length once
    stdin ends. Each stem is written as soon as it is ready (latency: the model's
    window, 64 ms for gru-stream, plus resampling when --rate is not the model's).

    \b
    Example:
      ffmpeg -i song.mp3 -f s16le -ar 44100 -ac 2 - \\
        | sep stream --rate 44100 --channels 2 --vocals - --accompaniment acc.raw > vocals.raw
    """
    import sepframework
    from sepframework.cpu_threads import limit_cpu_threads
    from sepframework.streaming import Streamer

    targets = {name: path for name, path in (("vocals", vocals), ("accompaniment", accompaniment)) if path}
    if not targets:
        raise SeparationError("give at least one output: --vocals PATH and/or --accompaniment PATH (- for stdout)")
    if list(targets.values()).count("-") > 1:
        raise SeparationError("only one stem can go to stdout (-); write the other to a file or named pipe")
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

        def emit(stems: dict[str, np.ndarray]) -> None:
            for name, handle in outputs.items():
                if stems[name].shape[1]:
                    handle.write(encode_pcm(stems[name], fmt))
                    handle.flush()

        pending = b""
        try:
            while chunk := sys.stdin.buffer.read1(block * frame_bytes - len(pending)):  # what has arrived
                pending += chunk
                whole = len(pending) - len(pending) % frame_bytes
                if whole:
                    emit(streamer.process(decode_pcm(pending[:whole], fmt, channels)))
                    pending = pending[whole:]
            if pending:
                raise SeparationError(f"stdin ended inside a frame ({len(pending)} stray bytes); "
                                      f"is --format/--channels right?")
            emit(streamer.flush())
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            raise SeparationError("an output pipe was closed by its reader") from None
