"""The `sep` command end to end, in a subprocess, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SEP = [sys.executable, "-m", "sepframework.cli"]


def sep(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*SEP, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_version_and_help_teach_the_commands(tmp_path) -> None:
    version = sep("--version", cwd=tmp_path)
    assert version.returncode == 0 and "0.1.0" in version.stdout
    help_text = sep("--help", cwd=tmp_path).stdout
    for command in ("run", "models"):
        assert command in help_text
    assert "--overwrite" in sep("run", "--help", cwd=tmp_path).stdout


def help_without_torch(args: list[str], cwd: Path) -> str:
    """``sep ARGS`` run in-process in a fresh interpreter; fails if it imported PyTorch."""
    probe = (f"import sys; from sepframework.cli import main; sys.argv = ['sep', *{args!r}]\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\nprint('torch loaded' if 'torch' in sys.modules else 'no torch')")
    result = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("no torch"), f"sep {' '.join(args)} imported PyTorch"
    return result.stdout


def test_help_lists_every_command_without_importing_pytorch(tmp_path) -> None:
    from sepframework.cli import LAZY_COMMANDS

    text = help_without_torch(["--help"], tmp_path)
    for command, (_, _, summary) in LAZY_COMMANDS.items():
        assert f"{command}  " in text and summary in text
    for command in ["run", *LAZY_COMMANDS]:
        assert "Usage: sep " in help_without_torch([command, "--help"], tmp_path)


def test_missing_input_is_one_clear_line(tmp_path) -> None:
    result = sep("run", "--model", "repet-sim", "missing.wav", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: missing.wav: no such file or folder"


@pytest.mark.parametrize(("args", "line"), [
    (["run", "--format", "ogg", "x.wav"],
     "error: Invalid value for '--format': 'ogg' is not one of 'wav', 'flac', 'mp3'. (see `sep run --help`)"),
    (["run"], "error: Missing argument 'INPUTS...'. (see `sep run --help`)"),
    (["stream", "--rate", "5"], "error: Invalid value for '--rate': 5 is not in the range 1000<=x<=768000. "
                                "(see `sep stream --help`)"),
    (["nosuch"], "error: No such command 'nosuch'. (see `sep --help`)"),
])
def test_a_bad_option_or_argument_is_one_error_line_pointing_to_the_help(tmp_path, args: list[str], line: str) -> None:
    result = sep(*args, cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", line + "\n")


def test_an_empty_input_path_is_an_error_not_the_current_folder(tmp_path, write_wav) -> None:
    write_wav("song.wav", seconds=1.0)  # would be separated if "" meant the current folder
    result = sep("run", "--model", "repet-sim", "", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: an input is an empty path (an unset shell variable?)"
    assert not (tmp_path / "separated").exists()


def test_unknown_model_lists_the_models(tmp_path, write_wav) -> None:
    song = write_wav("song.wav", seconds=1.0)
    result = sep("run", "--model", "nope", str(song), cwd=tmp_path)
    assert result.returncode == 1
    assert "unknown model 'nope'; available models:" in result.stderr and "repet-sim" in result.stderr
    assert "Traceback" not in result.stderr


def test_batch_goes_on_after_a_bad_file_and_reports_it(tmp_path, write_wav) -> None:
    good = write_wav("music/a.wav", seconds=2.0, rate=16000)
    bad = tmp_path / "music/sub/b.wav"
    bad.parent.mkdir(parents=True)
    bad.write_text("this is not audio")
    result = sep("run", "--model", "repet-sim", "-o", "out", "music", cwd=tmp_path)
    assert result.returncode == 1
    assert "b.wav" in result.stderr and "Traceback" not in result.stderr
    assert "1 input(s) failed" in result.stderr
    vocals, rate = sf.read(tmp_path / "out/a/vocals.wav", always_2d=True)
    assert rate == 16000 and vocals.shape == (32000, 2)
    mixture, _ = sf.read(good, always_2d=True)
    accompaniment, _ = sf.read(tmp_path / "out/a/accompaniment.wav", always_2d=True)
    # REPET-SIM's two masks are complementary: the stems add back to the mixture
    assert np.max(np.abs(vocals + accompaniment - mixture)) < 1e-3


def test_existing_stems_are_kept_without_overwrite(tmp_path, write_wav) -> None:
    write_wav("song.wav", seconds=1.0, rate=16000)
    assert sep("run", "--model", "repet-sim", "-q", "song.wav", cwd=tmp_path).returncode == 0
    again = sep("run", "--model", "repet-sim", "-q", "song.wav", cwd=tmp_path)
    assert again.returncode == 1
    assert "error: song.wav: output already exists: separated/song/vocals.wav, separated/song/accompaniment.wav (use --overwrite, or overwrite=True in Python, to replace)" in again.stderr
    forced = sep("run", "--model", "repet-sim", "-q", "--overwrite", "song.wav", cwd=tmp_path)
    assert forced.returncode == 0 and forced.stdout == ""
