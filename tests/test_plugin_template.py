"""Third-party plugins: the conformance suite, the plugin template installed like a user
would, and broken or conflicting distributions seen through `sep models`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from sepframework import Separator
from sepframework.baselines.repet_sim import RepetSim
from sepframework.conformance import ConformanceError, check_separator

TEMPLATE = Path(__file__).resolve().parents[1] / "examples" / "plugin-template"


class Flawed(Separator):
    """A simple local separator (vocals = half the mixture) with one chosen flaw."""

    sample_rate = 8000
    sources = ("vocals", "accompaniment")

    def __init__(self, flaw: str | None) -> None:
        super().__init__()
        self.flaw = flaw
        self.rng = np.random.default_rng()
        if flaw == "context longer than its segments":
            self.context_samples = 20 * self.sample_rate  # with the default 30 s segments
        if flaw == "false residual":
            self.residual_source = "accompaniment"

    @classmethod
    def load(cls, args: Mapping[str, Any], weights: Mapping[str, Any] | None, device: str = "cpu") -> Flawed:
        return cls(**args)

    def separate_block(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        vocals = 0.5 * audio
        if self.flaw == "nan on silence" and not audio.any():
            vocals = np.full_like(audio, np.nan)
        elif self.flaw == "float64 output":
            vocals = vocals.astype(np.float64)
        elif self.flaw == "random output":
            vocals = vocals + self.rng.normal(scale=1e-3, size=audio.shape).astype(np.float32)
        elif self.flaw == "fails on short input" and audio.shape[1] < 64:
            raise ValueError("input shorter than the FFT")
        elif self.flaw == "uses the whole signal":
            vocals = vocals * np.abs(audio).mean()
        elif self.flaw == "drops a source":
            return {"vocals": vocals}
        elif self.flaw == "false residual":
            return {"vocals": vocals, "accompaniment": np.zeros_like(audio)}
        return {"vocals": vocals, "accompaniment": audio - vocals}


@pytest.mark.parametrize(
    ("flaw", "failing_check"),
    [
        ("nan on silence", "check_extreme_inputs"),
        ("float64 output", "check_block_output"),
        ("random output", "check_determinism"),
        ("fails on short input", "check_short_inputs: raised ValueError: input shorter than the FFT"),
        ("uses the whole signal", "check_chunked_matches_whole: chunked output of 'vocals' differs"),
        ("drops a source", "check_block_output: separate_block on 1 s of stereo: returned the sources ['vocals'], "
                           "without 'accompaniment'"),
        ("false residual", "check_block_output: separate_block: residual_source 'accompaniment' differs from the "
                           "mixture minus the other sources by up to"),
        ("context longer than its segments", "check_attributes: the model's Flawed.segment_seconds 30.0 s is too "
                                             "short for the model's context (20 s each side of a segment) and a "
                                             "crossfade; use at least 80.10 s"),
    ],
)
def test_the_conformance_suite_reports_each_flaw(flaw: str, failing_check: str) -> None:
    with pytest.raises(ConformanceError) as raised:
        check_separator(Flawed(flaw))
    assert failing_check in str(raised.value)
    assert str(raised.value).startswith("Flawed fails ")


def test_a_sound_separator_and_repet_sim_pass_the_conformance_suite() -> None:
    check_separator(Flawed(None))
    check_separator(RepetSim.load({}, None), local=False)  # REPET-SIM compares frames of the whole signal


def sep(python: Path | str, *args: str | Path, env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "sepframework.cli", *map(str, args)], env=dict(env), cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def template_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away virtual environment seeing this one's packages, with the template
    installed by pip from a copy; returns its python. The main environment is untouched."""
    root = tmp_path_factory.mktemp("template")
    source = shutil.copytree(TEMPLATE, root / "plugin-template")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    site_dir = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   check=True, capture_output=True, text=True).stdout.strip())
    main_site = sysconfig.get_paths()["purelib"]
    (site_dir / "main-environment.pth").write_text(f"import site; site.addsitedir({main_site!r})\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", source], check=True, timeout=300)
    return python


@pytest.mark.slow
def test_the_installed_template_is_listed_and_separates(template_venv, tmp_path, write_wav) -> None:
    listing = sep(template_venv, "models", env=os.environ, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if line.startswith("example-bandpass "))
    assert re.search(r"sep[-_]example 0\.1\.0\s+vocals,accompaniment\s+22050\s+none\s+ok$", row), row

    song = write_wav("song.wav", seconds=1.0)
    ran = sep(template_venv, "run", "--model", "example-bandpass", "-o", tmp_path / "out", song,
              env=os.environ, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    mixture, rate = sf.read(song, always_2d=True)
    vocals, vocals_rate = sf.read(tmp_path / "out/song/vocals.wav", always_2d=True)
    accompaniment, _ = sf.read(tmp_path / "out/song/accompaniment.wav", always_2d=True)
    assert vocals.shape == accompaniment.shape == mixture.shape and vocals_rate == rate
    assert np.abs(vocals + accompaniment - mixture).max() < 0.05  # a filter and its complement


@pytest.mark.slow
def test_the_template_passes_its_own_conformance_tests(template_venv) -> None:
    installed_tests = template_venv.parents[2] / "plugin-template" / "tests"
    result = subprocess.run([template_venv, "-m", "pytest", "-q", "-p", "no:cacheprovider", installed_tests],
                            cwd=installed_tests.parent, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout
    assert "9 passed" in result.stdout


def fake_distribution(site: Path, name: str, entry_points: dict[str, str]) -> None:
    """Metadata of an installed distribution declaring ``sepframework.models`` entry points."""
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{key} = {target}\n" for key, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[sepframework.models]\n{lines}")


@pytest.mark.slow
def test_broken_and_conflicting_plugins_are_reported_and_others_still_work(tmp_path, write_wav) -> None:
    site = tmp_path / "site"
    fake_distribution(site, "sep-broken", {"broken-model": "sep_broken_module:Model"})
    (site / "sep_broken_module.py").write_text("raise RuntimeError('missing CUDA kernels')\n")
    fake_distribution(site, "sep-dup-a", {"duplicate": "sep_dup_a:Model"})
    fake_distribution(site, "sep-dup-b", {"duplicate": "sep_dup_b:Model"})
    env = {**os.environ, "PYTHONPATH": str(site)}

    listing = sep(sys.executable, "models", env=env, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()[1:]}
    assert re.search(r"broken: plugin 'broken-model' \(sep[-_]broken 1\.0\) failed to import: "
                     r"RuntimeError: missing CUDA kernels$", rows["broken-model"])
    assert re.search(r"sep[-_]dup[-_]a 1\.0 / sep[-_]dup[-_]b 1\.0 .* conflict: name claimed by several distributions$",
                     rows["duplicate"])
    assert rows["repet-sim"].endswith(" ok")

    ran = sep(sys.executable, "run", "--model", "repet-sim", "-o", tmp_path / "out", write_wav("song.wav", seconds=1.0),
              env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    other_song = write_wav("other.wav", seconds=1.0)
    failed = sep(sys.executable, "run", "--model", "broken-model", other_song, env=env, cwd=tmp_path)
    assert failed.returncode == 1
    assert re.match(r"error: plugin 'broken-model' \(sep[-_]broken 1\.0\) failed to import", failed.stderr)
    assert "Traceback" not in failed.stderr
