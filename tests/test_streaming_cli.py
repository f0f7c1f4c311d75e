"""``sep stream``: raw PCM piped through a subprocess end to end; options and errors in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from sepframework.cli import cli
from sepframework.interfaces import SeparationError
from sepframework.streaming import Streamer
from sepframework.streaming_cli import decode_pcm, encode_pcm
from sep_gru.model import GRUSeparator
from tests.test_gru_model import install_test_registry, noise


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, GRUSeparator]:
    return install_test_registry(tmp_path / "registry", monkeypatch)


def tones(channels: int, length: int, rate: int, seed: int = 0) -> np.ndarray:
    """Eight random tones below 6 kHz per channel: content a 16 kHz model keeps whole."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / rate
    return np.stack([
        sum(0.05 * np.sin(2 * np.pi * f * t + p) for f, p in zip(rng.uniform(100, 6000, 8), rng.uniform(0, 6, 8)))
        for _ in range(channels)
    ]).astype(np.float32)


def test_pcm_round_trip_clips_integers_only() -> None:
    audio = np.array([[0.5, -1.5, 2.0], [0.25, 0.0, -0.999]], dtype=np.float32)
    np.testing.assert_allclose(decode_pcm(encode_pcm(audio, "f32le"), "f32le", 2), audio)
    back = decode_pcm(encode_pcm(audio, "s16le"), "s16le", 2)
    np.testing.assert_allclose(back, np.clip(audio, -1, 32767 / 32768), atol=1 / 32768)


def test_piped_s16le_stereo_is_separated_by_a_subprocess(models: dict[str, GRUSeparator], tmp_path: Path) -> None:
    mixture = decode_pcm(encode_pcm(tones(2, 44100 + 321, 44100), "s16le"), "s16le", 2)
    accompaniment_path = tmp_path / "accompaniment.raw"
    command = [sys.executable, "-c", "from sepframework.cli import main; main()", "stream", "--model", "test-stream",
               "--rate", "44100", "--channels", "2", "--format", "s16le",
               "--vocals", "-", "--accompaniment", str(accompaniment_path)]
    result = subprocess.run(command, input=encode_pcm(mixture, "s16le"), capture_output=True, timeout=300,
                            env=os.environ.copy())
    assert result.returncode == 0, result.stderr.decode()
    assert "63.9 ms algorithmic latency" in result.stderr.decode()
    vocals = decode_pcm(result.stdout, "s16le", 2)
    accompaniment = decode_pcm(accompaniment_path.read_bytes(), "s16le", 2)
    assert vocals.shape == accompaniment.shape == mixture.shape
    streamer = Streamer(models["test-stream"], channels=2, sample_rate=44100)
    parts = [streamer.process(mixture), streamer.flush()]
    expected = np.concatenate([part["vocals"] for part in parts], axis=1)
    assert np.abs(vocals - expected).max() < 4 / 32768  # float16 weights, 16-bit rounding
    # The masks sum to one: away from the resamplers' edge transients the stems add up.
    assert np.abs(vocals + accompaniment - mixture)[:, 100:-100].max() < 2e-3


def test_f32le_goes_live_through_a_named_pipe(models: dict[str, GRUSeparator], tmp_path: Path) -> None:
    audio = noise(1, 5000, seed=8)
    fifo = tmp_path / "vocals.fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    result = CliRunner().invoke(cli, ["stream", "--model", "test-stream", "--format", "f32le", "--vocals", str(fifo),
                                      "-q"], input=encode_pcm(audio, "f32le"))
    vocals = decode_pcm(reader.communicate(timeout=60)[0], "f32le", 1)
    assert result.exit_code == 0, result.output
    streamer = Streamer(models["test-stream"], channels=1)
    expected = np.concatenate([streamer.process(audio)["vocals"], streamer.flush()["vocals"]], axis=1)
    np.testing.assert_allclose(vocals, expected, atol=2e-3)


@pytest.mark.parametrize(
    ("args", "data", "message"),
    [
        ([], b"", "give at least one output"),
        (["--vocals", "-", "--accompaniment", "-"], b"", "only one stem"),
        (["--channels", "2", "--vocals", "-"], b"\x00" * 6, "inside a frame"),
        (["--model", "test-offline", "--vocals", "-"], b"", "cannot stream"),
    ],
)
def test_user_errors_are_separation_errors(models: dict, args: list[str], data: bytes, message: str) -> None:
    if "--model" not in args:
        args = ["--model", "test-stream", *args]
    result = CliRunner().invoke(cli, ["stream", *args], input=data)
    assert isinstance(result.exception, SeparationError)
    assert message in str(result.exception)


def test_sep_run_stream_separates_a_file_block_by_block(models: dict[str, GRUSeparator], tmp_path: Path) -> None:
    audio = tones(2, 22050 + 99, 22050, seed=3)
    source = tmp_path / "song.wav"
    sf.write(source, audio.T, 22050, subtype="FLOAT")
    result = CliRunner().invoke(cli, ["run", "--model", "test-stream", "--stream", "-o", str(tmp_path / "out"), "-q",
                                      str(source)])
    assert result.exit_code == 0, result.output
    vocals, rate = sf.read(tmp_path / "out" / "song" / "vocals.wav", dtype="float32", always_2d=True)
    assert rate == 22050
    np.testing.assert_allclose(vocals.T, models["test-stream"].separate(audio, 22050)["vocals"], atol=2e-3)
