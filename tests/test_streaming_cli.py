"""``sep stream``: raw PCM piped through a subprocess end to end; options and errors in-process."""

from __future__ import annotations

import os
import re
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
from sepframework.streaming_cli import clipped_samples, decode_pcm, encode_pcm
from sep_gru.model import GRUSeparator
from tests.test_gru_model import install_test_registry, noise

#: ``sep stream`` in a fresh interpreter, as the console script runs it.
SEP_STREAM = [sys.executable, "-c", "from sepframework.cli import main; main()", "stream"]


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
    assert (clipped_samples(audio, "s16le"), clipped_samples(audio, "f32le")) == (2, 0)


def test_stems_clipped_to_fit_s16le_are_one_warning_per_output(models: dict[str, GRUSeparator], tmp_path: Path) -> None:
    loud = np.sign(noise(2, 44100, seed=3)).astype(np.float32) * 0.999  # full-scale noise: stems overshoot
    command = [*SEP_STREAM, "--model", "test-stream", "--rate", "44100", "--channels", "2", "-q",
               "--accompaniment", str(tmp_path / "acc.raw")]
    result = subprocess.run(command, input=encode_pcm(loud, "s16le"), capture_output=True, timeout=300,
                            env=os.environ.copy(), text=False)
    assert result.returncode == 0, result.stderr.decode()
    accompaniment = np.frombuffer((tmp_path / "acc.raw").read_bytes(), dtype="<i2")
    at_full_scale = int(np.count_nonzero((accompaniment == 32767) | (accompaniment == -32768)))
    warned = re.fullmatch(rf"warning: {re.escape(str(tmp_path / 'acc.raw'))}: (\d+) accompaniment samples beyond full "
                          r"scale were clipped to fit s16le, so the stems no longer add up to the input there; "
                          r"--format f32le keeps them\n", result.stderr.decode())
    assert warned is not None, result.stderr.decode()
    assert 0.99 * at_full_scale <= int(warned.group(1)) <= at_full_scale  # those clipped, not those landing there


def test_piped_s16le_stereo_is_separated_by_a_subprocess(models: dict[str, GRUSeparator], tmp_path: Path) -> None:
    mixture = decode_pcm(encode_pcm(tones(2, 44100 + 321, 44100), "s16le"), "s16le", 2)
    accompaniment_path = tmp_path / "accompaniment.raw"
    command = [*SEP_STREAM, "--model", "test-stream", "--rate", "44100", "--channels", "2", "--format", "s16le",
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
        (["--channels", "2", "--vocals", "out.raw"], b"\x00" * 3, "inside a frame"),
        (["--format", "f32le", "--vocals", "out.raw"], encode_pcm(np.array([[0.1, np.nan, 0.2]]), "f32le"),
         "standard input has NaN or infinite samples, so it is not f32le audio: is --format right? "
         "(s16le for 16-bit PCM)"),
        (["--model", "test-offline", "--vocals", "-"], b"", "cannot stream"),
    ],
)
def test_user_errors_are_separation_errors(models: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           args: list[str], data: bytes, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    if "--model" not in args:
        args = ["--model", "test-stream", *args]
    result = CliRunner().invoke(cli, ["stream", *args], input=data)
    assert isinstance(result.exception, SeparationError)
    assert message in str(result.exception)
    assert not (tmp_path / "out.raw").exists()  # a file the failed stream created and left empty is removed


@pytest.mark.parametrize(("args", "message"), [
    ([], "give at least one output: --vocals PATH and/or --accompaniment PATH (- for stdout)"),
    (["--vocals", "-", "--accompaniment", "-"], "only one stem can go to stdout (-); write the other to a file or named pipe"),
    (["--vocals", "out.raw", "--accompaniment", "./out.raw"],
     "--vocals and --accompaniment both write to ./out.raw: give each stem its own path"),
])
def test_outputs_given_wrongly_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run([*SEP_STREAM, "-q", *args], input=b"", capture_output=True, timeout=300, cwd=tmp_path)
    assert (result.returncode, result.stderr.decode()) == (2, f"error: {message} (see `sep stream --help`)\n")
    assert not (tmp_path / "out.raw").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--rate", "999"], "Invalid value for '--rate': 999 is not in the range 1000<=x<=768000."),
    (["--channels", "65"], "Invalid value for '--channels': 65 is not in the range 1<=x<=64."),
    (["--block", str(2**20 + 1)], "Invalid value for '--block': 1048577 is not in the range 1<=x<=1048576."),
])
def test_out_of_range_options_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["stream", "--vocals", "-", *args])
    assert result.exit_code == 2 and message in result.stderr


def test_existing_files_are_replaced_only_with_overwrite(models: dict, tmp_path: Path) -> None:
    vocals = tmp_path / "vocals.raw"
    vocals.write_bytes(b"earlier take")
    audio = encode_pcm(noise(1, 3000), "s16le")
    result = CliRunner().invoke(cli, ["stream", "--model", "test-stream", "--vocals", str(vocals)], input=audio)
    assert isinstance(result.exception, SeparationError)
    assert str(result.exception) == f"{vocals} already exists (use --overwrite to replace it)"
    assert vocals.read_bytes() == b"earlier take"
    result = CliRunner().invoke(cli, ["stream", "--model", "test-stream", "--vocals", str(vocals), "--overwrite"],
                                input=audio)
    assert result.exit_code == 0, result.output
    assert len(vocals.read_bytes()) == len(audio)


def test_empty_stdin_gives_empty_outputs_and_a_notice(models: dict, tmp_path: Path) -> None:
    vocals = tmp_path / "vocals.raw"
    result = CliRunner().invoke(cli, ["stream", "--model", "test-stream", "--vocals", str(vocals)], input=b"")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1] == "no audio on standard input: the outputs are empty"
    assert vocals.read_bytes() == b""
    result = CliRunner().invoke(cli, ["stream", "--model", "test-stream", "--vocals", str(vocals), "--overwrite",
                                      "-q"], input=b"")
    assert (result.exit_code, result.stderr) == (0, "")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize(("output", "message"), [
    ("/dev/full", "cannot write /dev/full: No space left on device"),
    ("-", "cannot write stdout: its reader closed the pipe"),
])
def test_a_failing_output_is_one_error_line(models: dict, output: str, message: str) -> None:
    process = subprocess.Popen([*SEP_STREAM, "--model", "test-stream", "-q", "--vocals", output],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # stdout's reader is gone before the first block
    _, err = process.communicate(encode_pcm(noise(1, 8000), "s16le"), timeout=300)
    assert (process.returncode, err.decode()) == (1, f"error: {message}\n")


@pytest.mark.parametrize(("redirect", "output", "message"), [
    ("<&-", "vocals.raw", "no standard input to read: pipe raw PCM into sep stream (see sep stream -h)"),
    (">&-", "-", "no standard output to write to (-): it is closed"),
])
def test_a_closed_stdin_or_stdout_is_one_error_line(models: dict, tmp_path: Path, redirect: str, output: str,
                                                    message: str) -> None:
    command = ["sh", "-c", f'exec "$@" {redirect}', "sh", *SEP_STREAM, "--model", "test-stream", "-q",
               "--vocals", output]
    result = subprocess.run(command, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
    assert (result.returncode, result.stderr.decode()) == (1, f"error: {message}\n")
    assert not (tmp_path / "vocals.raw").exists()


def test_the_file_on_stdin_is_never_an_output(models: dict, tmp_path: Path) -> None:
    song = tmp_path / "song.raw"
    song.write_bytes(encode_pcm(noise(1, 8000), "s16le"))
    before = song.read_bytes()
    with song.open("rb") as stdin:
        result = subprocess.run([*SEP_STREAM, "--model", "test-stream", "-q", "--overwrite", "--vocals", "song.raw"],
                                cwd=tmp_path, stdin=stdin, capture_output=True, timeout=300)
    assert (result.returncode, result.stderr.decode()) == (
        1, "error: --vocals song.raw is the file on standard input: write the stems elsewhere\n")
    assert song.read_bytes() == before


def test_dev_stdout_and_dash_are_one_output(models: dict, tmp_path: Path) -> None:
    result = subprocess.run([*SEP_STREAM, "--model", "test-stream", "-q", "--vocals", "/dev/stdout",
                             "--accompaniment", "-"], input=encode_pcm(noise(1, 8000), "s16le"),
                            capture_output=True, timeout=300)
    assert (result.returncode, result.stdout) == (2, b"")
    assert result.stderr.decode() == ("error: only one stem can go to stdout (-); write the other to a file or named "
                                      "pipe (see `sep stream --help`)\n")


def test_dev_stdout_redirected_to_a_file_is_written_like_dash(models: dict, tmp_path: Path) -> None:
    data = encode_pcm(noise(1, 8000), "s16le")
    outputs = {}
    for name in ("-", "/dev/stdout"):
        with (tmp_path / "out.raw").open("wb") as stdout:  # the shell's `> out.raw`
            result = subprocess.run([*SEP_STREAM, "--model", "test-stream", "-q", "--vocals", name], input=data,
                                    stdout=stdout, stderr=subprocess.PIPE, timeout=300)
        assert (result.returncode, result.stderr) == (0, b"")
        outputs[name] = (tmp_path / "out.raw").read_bytes()
    assert outputs["/dev/stdout"] == outputs["-"] and len(outputs["-"]) == len(data)


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


def test_a_stray_partial_frame_at_the_end_is_an_error_after_every_whole_frame_is_written(
    models: dict[str, GRUSeparator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    whole = encode_pcm(tones(2, 4000, 16000), "s16le")
    result = CliRunner().invoke(cli, ["stream", "--model", "test-stream", "--channels", "2", "--vocals", "v.raw",
                                      "--accompaniment", "a.raw"], input=whole + b"abc")
    assert isinstance(result.exception, SeparationError)
    assert "stdin ended inside a frame (3 stray bytes, after the whole frames, which were written)" in str(result.exception)
    assert len((tmp_path / "v.raw").read_bytes()) == len((tmp_path / "a.raw").read_bytes()) == len(whole)
