"""``sep bench`` end to end in a subprocess, as a user runs it; its test song and memory probe."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sepframework.model_files import sha256_of
from sepframework.baselines.repet_sim import RepetSim
from sepframework.bench.report import report_paths, text_table
from sepframework.bench.results import ModelResult
from sepframework.bench.song import SONG_RATE, write_song
from sepframework.evaluation.scoring import score_dataset
from sepframework.interfaces import SeparationError
from tests.test_gru_model import install_test_registry

SEP = [sys.executable, "-m", "sepframework.cli"]


def sep(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*SEP, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def reports(folder: Path, name: str) -> tuple[dict, str]:
    """The JSON document and the Markdown table of run ``name``; the PNG must be a PNG."""
    assert (folder / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return json.loads((folder / f"{name}.json").read_text()), (folder / f"{name}.md").read_text()


def write_mir1k(folder: Path, clips: int = 2, seconds: float = 3.0, rate: int = 16000) -> Path:
    """MIR-1K layout: stereo FLACs, left = noisy accompaniment with a bass note, right = sung tones."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    for index in range(clips):
        accompaniment = 0.1 * rng.standard_normal(t.size) + 0.2 * np.sin(2 * np.pi * 110 * (index + 1) * t)
        pitch = 300 + 40 * index + 20 * np.floor(4 * t)  # a new note every quarter second
        vocals = 0.3 * np.sin(2 * np.pi * np.cumsum(pitch) / rate) * (np.sin(2 * np.pi * t) > -0.5)
        sf.write(folder / f"singer_{index}.flac", np.stack([accompaniment, vocals], axis=1), rate)
    return folder


def test_speed_run_writes_json_markdown_and_plot(tmp_path: Path) -> None:
    result = sep("bench", "--models", "repet-sim", "--duration", "5", "--repeat", "2", "--out", "out",
                 "--name", "run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    document, table = reports(tmp_path / "out", "run")
    [model] = document["results"]
    assert (model["model"], model["device"], model["error"]) == ("repet-sim", "cpu", None)
    assert model["audio_s"] == pytest.approx(5.0)
    for key in ("rtf_end_to_end", "rtf_next_song", "rtf_network", "load_s", "peak_rss_mb"):
        spread = model[key]
        assert len(spread["values"]) == 2 and all(value > 0 for value in spread["values"])
        assert spread["min"] <= spread["median"] <= spread["max"]
        assert (spread["min"], spread["max"]) == (min(spread["values"]), max(spread["values"]))
    assert model["peak_gpu_mb"] is None and model["streaming"] is None and model["quality"] is None
    assert "--duration 5 --repeat 2" in document["command"] and document["settings"]["repeat"] == 2
    assert table.startswith("| Model | Device | End to end (×RT) | Next songs (×RT) |") and "| repet-sim | cpu |" in table
    assert "Stream latency" not in table and "GNSDR" not in table  # nothing measured, no column
    assert "repet-sim" in result.stdout and "out/run.json" in result.stdout



def test_reports_are_never_overwritten_silently(tmp_path: Path) -> None:
    (tmp_path / "run.md").write_text("earlier results")
    with pytest.raises(SeparationError, match=r"run\.md already exists \(use --overwrite or another --name\)"):
        report_paths(tmp_path, "run", overwrite=False)
    assert report_paths(tmp_path, "run", overwrite=True)["md"] == tmp_path / "run.md"
    assert (tmp_path / "run.md").read_text() == "earlier results"


@pytest.mark.parametrize(("args", "message"), [
    (["--models", "repet-sim,nope"], "error: unknown model 'nope'; available models: "),
    (["--models", "repet-sim", "--device", "cuda"], "error: device 'cuda' was requested but no CUDA GPU is available"),
    (["--models", "repet-sim", "--input", "notaudio.wav"], "error: notaudio.wav: not a readable audio file"),
    (["--models", "repet-sim", "--input", "missing.wav"], "error: missing.wav: no such file\n"),  # 1, as sep run
    (["--models", "repet-sim", "--dataset", "missing"], "error: dataset folder missing does not exist\n"),
    (["--models", "repet-sim", "--input", "short.wav"],
     "error: short.wav lasts 0.5 s, too short to time; give at least 1 s\n"),
    (["--models", "repet-sim", "--device", ","], "error: --device needs at least one name, e.g. --device cpu\n"),
    (["--models", "repet-sim", "--dataset", "clash"],
     "error: clash/st.flac and clash/st.wav are both track st: keep one of them\n"),  # found before any timing
])
def test_user_mistakes_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    check_one_line_error(tmp_path, args, message, 1)


@pytest.mark.parametrize(("args", "message"), [
    (["--models", "repet-sim", "--limit", "3"], "--metric and --limit score quality and need --dataset"),
    (["--models", "repet-sim", "--name", "../escape"],
     "--name must be a plain file name, without '/' or '..' (the reports go into --out): '../escape'"),
    (["--models", "repet-sim", "--duration", "nan"], "--duration must be a number of seconds from 1 to 7200"),
])
def test_malformed_command_lines_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    check_one_line_error(tmp_path, args, f"error: {message} (see `sep bench --help`)\n", 2)


def check_one_line_error(tmp_path: Path, args: list[str], message: str, code: int) -> None:
    """``sep bench ARGS`` fails with exit status ``code`` and one line starting with ``message``, writing nothing."""
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    (tmp_path / "notaudio.wav").write_text("not audio")
    sf.write(tmp_path / "short.wav", np.zeros((SONG_RATE // 2, 2)), SONG_RATE)
    (tmp_path / "clash").mkdir()
    for name in ("st.flac", "st.wav"):
        sf.write(tmp_path / "clash" / name, np.zeros((SONG_RATE, 2)), SONG_RATE)
    before = set(tmp_path.rglob("*"))
    generated = [] if "--input" in args or "--duration" in args else ["--duration", "1"]
    result = sep("bench", *args, *generated, "--out", "out", cwd=tmp_path)
    assert result.returncode == code
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(message), result.stderr
    assert set(tmp_path.rglob("*")) == before  # nothing written, in --out or outside it


def test_no_report_when_no_model_could_be_measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_test_registry(tmp_path / "registry", monkeypatch)  # SEP_REGISTRY reaches the workers
    config = tmp_path / "registry" / "test-stream" / "config.json"
    config.write_text(json.dumps({"plugin": "gru", "args": {}}))  # default sizes: the small weights do not fit
    index = json.loads((tmp_path / "registry" / "index.json").read_text())
    index["models"]["test-stream"]["files"]["config.json"] = sha256_of(config)
    (tmp_path / "registry" / "index.json").write_text(json.dumps(index))
    result = sep("bench", "--models", "test-stream", "--duration", "1", "--repeat", "1", "--out", "out", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, "")
    first, last = result.stderr.splitlines()
    assert first.startswith("error: test-stream on cpu: ") and "does not match the GRU config" in first
    assert last == "error: no model could be measured; no report written"
    assert not (tmp_path / "out").exists()


def test_quality_and_streaming_latency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = install_test_registry(tmp_path / "registry", monkeypatch)  # SEP_REGISTRY reaches the workers
    data = write_mir1k(tmp_path / "data", clips=3)  # the third clip is left out by --limit 2
    result = sep("bench", "--models", "repet-sim,test-stream", "--duration", "2", "--repeat", "1",
                 "--dataset", "data", "--limit", "2", "--out", "out", "--name", "q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document, table = reports(tmp_path / "out", "q")
    repet, stream = document["results"]
    for quality in (repet["quality"], stream["quality"]):
        assert (quality["metric"], quality["tracks"]) == ("gnsdr", 2)
        for source in ("vocals", "accompaniment"):
            assert set(quality["scores"][source]) == {"GNSDR", "GSIR", "GSAR", "GSDR"}
            assert all(math.isfinite(value) for value in quality["scores"][source].values())
    assert repet["quality"] == score_dataset(RepetSim(), data, "gnsdr", limit=2)  # the worker scored as we do
    assert "Vocals GNSDR (dB)" in table and f"{repet['quality']['scores']['vocals']['GNSDR']:.2f}" in table

    model = models["test-stream"]
    assert stream["streaming"]["algorithmic_ms"] == pytest.approx(1000 * (model.stft.n_fft - 1) / model.sample_rate)
    assert stream["streaming"]["block_ms"] == pytest.approx(64, abs=0.1)
    timing = stream["streaming"]
    assert timing["compute_p95_ms"]["median"] >= timing["compute_ms"]["median"] > 0
    assert repet["streaming"] is None  # REPET-SIM is not frame-causal
    assert "Stream latency (ms)" in table and "| repet-sim | cpu |" in table


def test_test_song_is_deterministic_stereo_and_unclipped(tmp_path: Path) -> None:
    first, second = write_song(tmp_path / "a.wav", 3.0), write_song(tmp_path / "b.wav", 3.0)
    other = write_song(tmp_path / "c.wav", 3.0, seed=1)
    audio, rate = sf.read(first, always_2d=True)
    assert (rate, audio.shape) == (SONG_RATE, (3 * SONG_RATE, 2))
    assert first.read_bytes() == second.read_bytes() != other.read_bytes()
    assert 0.05 < np.abs(audio).max() < 0.99 and not np.allclose(audio[:, 0], audio[:, 1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux /proc needed")
def test_a_worker_peak_does_not_include_its_parents_memory() -> None:
    ballast = np.ones(400 * 2**20 // 8)  # 400 MiB resident in this (parent) process
    probe = "from sepframework.bench.measure import peak_rss_mb; print(peak_rss_mb())"
    child = float(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    assert 0 < child < 300
    assert ballast.sum() == ballast.size


def test_the_worker_module_does_not_import_torch_so_the_load_column_times_it() -> None:
    script = "import sys, sepframework.bench.worker; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_a_model_folder_can_be_benchmarked(tmp_path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    result = sep("bench", "--models", "./my-model", "--duration", "1", "--out", "out", cwd=tmp_path)
    assert result.returncode == 1
    assert "my-model has no config.json, so it is not a sepframework model" in result.stderr
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((Path(__file__).resolve().parents[1] / "registry/gru-stream" / name).read_bytes())
    result = sep("bench", "--models", "./my-model", "--duration", "2", "--repeat", "1", "--out", "out", "--name", "t",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [model] = json.loads((tmp_path / "out/t.json").read_text())["results"]
    assert model["model"] == "./my-model" and model["streaming"]["algorithmic_ms"] == pytest.approx(63.9375)


def test_a_track_that_cannot_be_scored_is_listed_and_the_others_still_count(tmp_path: Path) -> None:
    data = write_mir1k(tmp_path / "data", clips=2)
    good = score_dataset(RepetSim(), data, "gnsdr")
    (data / "singer_9.flac").write_bytes(b"not audio")
    quality = score_dataset(RepetSim(), data, "gnsdr")
    assert (quality["tracks"], quality["scores"]) == (2, good["scores"])
    assert len(quality["failed"]) == 1 and "singer_9" in quality["failed"][0]
    result = ModelResult("repet-sim", "cpu", quality=quality)
    assert text_table([result]).splitlines()[-1] == f"warning: repet-sim on cpu: not scored: {quality['failed'][0]}"


def test_an_out_folder_that_cannot_be_made_fails_before_any_measuring(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    result = sep("bench", "--models", "repet-sim", "--duration", "1", "--out", "file/sub", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "error: output folder file/sub cannot be created (Not a directory)\n"


def test_speed_is_kept_when_the_quality_cannot_be_scored(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "singer_1.flac").write_bytes(b"not audio")
    result = sep("bench", "--models", "repet-sim", "--duration", "1", "--repeat", "1", "--dataset", "data",
                 "--out", "out", "--name", "run", cwd=tmp_path)
    assert result.returncode == 1
    document, table = reports(tmp_path / "out", "run")
    [model] = document["results"]
    assert model["rtf_end_to_end"]["median"] > 0 and model["quality"] is None
    assert model["error"].startswith("quality not scored: track singer_1: ")
    assert "| repet-sim | cpu |" in table and "- **failed**: repet-sim on cpu: quality not scored" in table
