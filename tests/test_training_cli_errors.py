"""``sep train`` user mistakes: one clear line and a non-zero exit before anything is read or written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sepframework.interfaces import SeparationError
from sepframework.training.cli import train
from sep_gru.network import GRUConfig
from sep_unet.model import check_args

SEP_TRAIN = [sys.executable, "-m", "sepframework.cli", "train"]


@pytest.mark.parametrize("option, value, message", [
    ("--epochs", "0", "0 is not in the range x>=1."),
    ("--steps-per-epoch", "0", "0 is not in the range x>=1."),
    ("--batch-size", "0", "0 is not in the range x>=1."),
    ("--learning-rate", "-1", "-1.0 is not in the range x>0."),
    ("--learning-rate", "nan", "'nan' is not a finite number."),
    ("--patience", "-1", "-1 is not in the range x>=0."),
    ("--lr-patience", "-1", "-1 is not in the range x>=0."),
    ("--seed", "-1", "-1 is not in the range 0<=x<=4294967295."),
    ("--valid-fraction", "0", "0.0 is not in the range 0<x<1."),
    ("--valid-fraction", "1.5", "1.5 is not in the range 0<x<1."),
    ("--remix-probability", "1.1", "1.1 is not in the range 0<=x<=1."),
    ("--gain-db", "-6", "-6.0 is not in the range 0<=x<=40."),
    ("--gain-db", "inf", "inf is not in the range 0<=x<=40."),
    ("--crop-seconds", "0", "0.0 is not in the range 0<x<=600."),
    ("--pitch-semitones", "-1", "-1.0 is not in the range 0<=x<=12."),
    ("--pitch-semitones", "nan", "'nan' is not a finite number."),
    ("--num-threads", "0", "0 is not in the range x>=1."),
    ("--gain-db", "1e9", "1000000000.0 is not in the range 0<=x<=40."),
    ("--crop-seconds", "1e6", "1000000.0 is not in the range 0<x<=600."),
    ("--license", "", "'' is not a licence identifier such as mit, apache-2.0 or cc-by-nc-4.0"),
    ("--arg", "hidden_size", "expects KEY=VALUE, got 'hidden_size'"),
    ("--arg", "=3", "expects KEY=VALUE, got '=3'"),
    ("--license", "mit\ntags: [x]", "'mit\\ntags: [x]' is not a licence identifier such as mit, apache-2.0 or "
                                     "cc-by-nc-4.0"),
])
def test_out_of_range_settings_are_usage_errors(tmp_path: Path, option: str, value: str, message: str) -> None:
    result = CliRunner().invoke(train, ["gru", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "out"),
                                        option, value])
    assert result.exit_code == 2
    assert result.output.endswith(f"Error: Invalid value for '{option}': {message}\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    ({"hidden_size": "abc"}, "hidden_size must be a positive integer, got 'abc'"),
    ({"hidden_size": -5}, "hidden_size must be a positive integer, got -5"),
    ({"hidden_size": 1.5}, "hidden_size must be a positive integer, got 1.5"),
    ({"num_layers": 0}, "num_layers must be a positive integer, got 0"),
    ({"num_layers": True}, "num_layers must be a positive integer, got True"),
    ({"n_fft": 1}, "n_fft must be an integer >= 2, got 1"),
    ({"hop_length": 768}, "hop_length=768 must be at most n_fft // 2 + 1 = 513 for n_fft=1024: a longer hop "
                          "leaves the last samples of some signals in no frame"),
    ({"bidirectional": "yes"}, "bidirectional must be true or false, got 'yes'"),
])
def test_unusable_gru_arguments_are_named_with_their_value(args: dict[str, Any], message: str) -> None:
    with pytest.raises(SeparationError) as error:
        GRUConfig.from_args(args)
    assert str(error.value) == message


def test_usable_gru_arguments_make_their_config() -> None:
    assert GRUConfig.from_args({"bidirectional": True, "hidden_size": 192}) == GRUConfig(bidirectional=True,
                                                                                         hidden_size=192)


@pytest.mark.parametrize("args, message", [
    ({"n_fft": "abc"}, "unet n_fft must be a positive integer, got 'abc'"),
    ({"sample_rate": 0}, "unet sample_rate must be a positive integer, got 0"),
    ({"hop_length": 0}, "unet hop_length must be a positive integer, got 0"),
    ({"patch_frames": 64.0}, "unet patch_frames must be a positive integer, got 64.0"),
    ({"hop_length": 768}, "unet hop_length=768 must be at most n_fft // 2 + 1 = 513 for n_fft=1024: a longer "
                          "hop leaves the last samples of some signals in no frame"),
])
def test_unusable_unet_arguments_are_named_with_their_value(args: dict[str, Any], message: str) -> None:
    with pytest.raises(SeparationError) as error:
        check_args(args)
    assert str(error.value) == message


def sep_train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*SEP_TRAIN, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("plugin, arg, message", [
    ("gru", "hidden_size=abc", "hidden_size must be a positive integer, got 'abc'"),
    ("gru", "n_sources=3", "a GRU separator needs n_sources=2, got 3"),  # the separator's own check, before training
    ("gru", "hop_length=600", "hop_length=600 must be at most n_fft // 2 + 1 = 513 for n_fft=1024: a longer hop "
                              "leaves the last samples of some signals in no frame"),
    ("unet", "hop_length=1024", "unet hop_length=1024 must be at most n_fft // 2 + 1 = 513 for n_fft=1024: a longer "
                                "hop leaves the last samples of some signals in no frame"),
])
def test_a_bad_model_argument_fails_before_the_data_is_read(tmp_path: Path, plugin: str, arg: str,
                                                            message: str) -> None:
    result = sep_train(plugin, "--data", "nothing", "--out", "out", "--arg", arg, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (1, f"error: {message}\n")
    assert not (tmp_path / "out").exists()


def test_an_earlier_model_is_not_replaced_without_resume_or_overwrite(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.safetensors").write_bytes(b"earlier")
    result = sep_train("gru", "--data", "nothing", "--out", "out", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == ("error: out already holds a model or training run (model.safetensors); pass --resume to "
                             "continue its training, --overwrite to start over, or choose another --out\n")
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == b"earlier"
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["model.safetensors"]


def test_a_model_argument_given_twice_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(train, ["gru", "--data", str(tmp_path), "--arg", "hidden_size=64",
                                        "--arg", "hidden_size=32"])
    assert result.exit_code == 2
    assert result.output.endswith("Error: Invalid value for '--arg': hidden_size is given twice\n")


def test_an_out_folder_that_cannot_be_made_fails_before_training(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    result = sep_train("gru", "--data", "nothing", "--out", "file/sub", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (1, "error: output folder file/sub cannot be created (Not a directory)\n")

