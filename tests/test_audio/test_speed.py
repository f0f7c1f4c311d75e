"""Speed of decoding plus resampling a 3-minute song, the I/O share of `sep run`'s budget.

Run ``pytest tests/test_audio/test_speed.py --benchmark-enable`` for timings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sepframework.audio import StreamResampler, open_reader, read_audio

SECONDS, RATE, MODEL_RATE = 180, 44100, 16000


@pytest.fixture(scope="module", params=["wav", "flac"])
def song(request, tmp_path_factory) -> Path:
    """A 3-minute 44.1 kHz stereo 16-bit file."""
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (SECONDS * RATE, 2)).astype(np.float32)
    path = tmp_path_factory.mktemp("speed") / f"song.{request.param}"
    sf.write(path, noise, RATE, subtype="PCM_16")
    return path


def test_whole_file_read_and_resample(benchmark, song) -> None:
    audio, rate = benchmark(read_audio, song, MODEL_RATE)
    assert rate == MODEL_RATE and audio.shape == (2, SECONDS * MODEL_RATE)


def test_streamed_read_and_resample(benchmark, song) -> None:
    def stream() -> int:
        with open_reader(song) as reader:
            resampler = StreamResampler(reader.sample_rate, MODEL_RATE, reader.channels)
            frames = sum(resampler.process(block).shape[1] for block in reader.blocks(1 << 16))
            return frames + resampler.flush().shape[1]

    assert benchmark(stream) == SECONDS * MODEL_RATE
