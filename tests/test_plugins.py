"""Plugin discovery: listing without importing, broken plugins, name conflicts, loading by name."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import entrypoints
import numpy as np
import pytest

import sepframework
from sepframework.model_files import sha256_of
from sepframework import plugins, registry
from sepframework.interfaces import SeparationError, SeparationWarning, Separator
from sepframework.models_cli import model_statuses


pytest_plugins = ["tests.hub_fixtures"]  # empty_registry


def fake_entry_point(name: str, target: str, dist: str) -> entrypoints.EntryPoint:
    module, _, attr = target.partition(":")
    return entrypoints.EntryPoint(name, module, attr, distro=entrypoints.Distribution(dist, "1.0"))


@pytest.fixture
def installed(monkeypatch):
    """Replace the installed entry points with the given ones for one test."""

    def install(*entry_points: entrypoints.EntryPoint) -> None:
        monkeypatch.setattr(entrypoints, "get_group_all", lambda group, path=None: list(entry_points))
        plugins.refresh()

    yield install
    plugins.refresh()


def test_listing_does_not_import_plugins(installed) -> None:
    installed(fake_entry_point("never", "module_that_does_not_exist_xyz:Model", "sep-never"))
    assert plugins.plugin_names() == ["never"]
    assert "module_that_does_not_exist_xyz" not in sys.modules


def test_a_malformed_entry_point_is_one_warning_and_the_others_are_listed(tmp_path, monkeypatch) -> None:
    info = tmp_path / "sep_odd-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sep-odd\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[sepframework.models]\ngarbage = this is not: valid [entry\n"
                                           "odd = sep_odd:Model\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.refresh()
    try:
        with pytest.warns(SeparationWarning, match=r"^an installed distribution has a malformed sepframework.models "
                                                   r"entry point, left out \(Couldn't parse entry point spec"):
            names = plugins.plugin_names()
    finally:
        plugins.refresh()
    assert "odd" in names and "repet-sim" in names and "garbage" not in names


def test_broken_plugin_reports_its_error_and_others_still_load(installed, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sep_broken_plugin", None)  # import raises ImportError
    installed(
        fake_entry_point("broken", "sep_broken_plugin:Model", "sep-broken"),
        fake_entry_point("repet-sim", "sepframework.baselines.repet_sim:RepetSim", "sepframework"),
    )
    with pytest.raises(plugins.PluginError, match=r"plugin 'broken' \(sep-broken 1.0\) failed to import"):
        plugins.get_plugin("broken").load()
    assert plugins.get_plugin("repet-sim").load().__name__ == "RepetSim"


def test_entry_point_that_is_not_a_separator_is_rejected(installed) -> None:
    installed(fake_entry_point("odd", "json:dumps", "sep-odd"))
    with pytest.raises(plugins.PluginError, match="does not point to a sepframework.Separator subclass"):
        plugins.get_plugin("odd").load()


def test_two_distributions_claiming_one_name_are_reported(installed) -> None:
    installed(
        fake_entry_point("foo", "a:Model", "sep-foo"),
        fake_entry_point("foo", "b:Model", "sep-foo-fork"),
    )
    assert plugins.conflicts() == {"foo": ["sep-foo 1.0", "sep-foo-fork 1.0"]}
    with pytest.raises(plugins.PluginError, match="claimed by several distributions: sep-foo 1.0 and sep-foo-fork 1.0; uninstall all but one"):
        plugins.get_plugin("foo")


@pytest.mark.parametrize(("name", "hint"), [
    ("nope", ""),
    ("Repet_Sim", " (did you mean 'repet-sim'?)"),
    ("hf:/org/repo", " (a Hub model is written hf://ORG/REPO[@REVISION])"),
])
def test_unknown_model_error_lists_the_models_and_the_likeliest_meant(installed, name: str, hint: str) -> None:
    installed(fake_entry_point("repet-sim", "sepframework.baselines.repet_sim:RepetSim", "sepframework"))
    with pytest.raises(SeparationError) as raised:
        sepframework.load(name, device="cpu")
    assert str(raised.value).startswith(f"unknown model '{name}'{hint}; available models: ")
    assert "repet-sim" in str(raised.value)


@pytest.mark.parametrize(("name", "message"), [
    ("", "a model is a name, a folder path or None (the default model), not ''"),
    (7, "a model is a name, a folder path or None (the default model), not 7"),
])
def test_a_model_that_is_no_name_is_a_clear_error(name: object, message: str) -> None:
    with pytest.raises(SeparationError, match=re.escape(message)):
        sepframework.load(name, device="cpu")  # type: ignore[arg-type]


def test_a_model_folder_may_be_given_as_a_path(tmp_path: Path) -> None:
    folder = tmp_path / "half"
    folder.mkdir()
    (folder / "config.json").write_text('{"plugin": "repet-sim", "args": {"n_fft": 512, "hop_length": 128}}')
    assert sepframework.load(folder, device="cpu").stft.n_fft == 512


def test_a_registry_model_whose_plugin_is_missing_names_the_model(empty_registry) -> None:
    config = empty_registry / "foo-m" / "config.json"
    config.parent.mkdir()
    config.write_text('{"plugin": "foo", "args": {}}')
    registry.write_entry(registry.ModelEntry(
        name="foo-m", plugin="foo", repo_id="me/foo-m", revision=None, files={"config.json": sha256_of(config)},
        sample_rate=8000, sources=("vocals", "accompaniment")))
    with pytest.raises(plugins.PluginError, match=r"^model 'foo-m' needs the plugin 'foo': unknown plugin 'foo'"):
        sepframework.load("foo-m", device="cpu")


def test_real_installation_registers_the_project_plugins() -> None:
    names = plugins.plugin_names()
    assert {"repet-sim", "unet", "gru"} <= set(names)


def test_load_by_plugin_name_gives_a_working_separator() -> None:
    model = sepframework.load("repet-sim", device="cpu")
    assert model.sources == ("vocals", "accompaniment")
    assert model.sample_rate == 16000


class _Working(Separator):
    """A trivial separator: vocals = half the mixture."""

    sample_rate = 8000
    sources = ("vocals", "accompaniment")

    @classmethod
    def load(cls, args: Mapping[str, Any], weights: Mapping[str, Any] | None, device: str = "cpu") -> Separator:
        return cls()

    def separate_block(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        return {"vocals": 0.5 * audio, "accompaniment": 0.5 * audio}


class NoSources(_Working):
    sources = None  # type: ignore[assignment]


class ForeignResidual(_Working):
    residual_source = "drums"


class NoSegment(_Working):
    segment_seconds = 0


class PropertySources(_Working):
    """Sources computed per instance: a property on the class is not a value to check."""

    @property
    def sources(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("vocals", "accompaniment")


class Abstract(Separator):
    sample_rate = 8000
    sources = ("vocals",)

    @classmethod
    def load(cls, args: Mapping[str, Any], weights: Mapping[str, Any] | None, device: str = "cpu") -> Separator:
        return cls()


class LoadFails(_Working):
    @classmethod
    def load(cls, args: Mapping[str, Any], weights: Mapping[str, Any] | None, device: str = "cpu") -> Separator:
        raise RuntimeError("cannot open my weights")


class LoadReturnsNone(_Working):
    @classmethod
    def load(cls, args: Mapping[str, Any], weights: Mapping[str, Any] | None, device: str = "cpu") -> Separator:
        return None  # type: ignore[return-value]


class KiloHertz(_Working):
    sample_rate = 16  # meant 16 kHz


class LoadReturnsTheClass(_Working):
    @classmethod
    def load(cls, args: Mapping[str, Any], weights: Mapping[str, Any] | None, device: str = "cpu") -> Separator:
        return cls  # type: ignore[return-value]


class LoadWithoutClassmethod(_Working):
    def load(self, args, weights, device="cpu"):  # type: ignore[override]  # called on the class: self is args
        return self


class NegativeContextInstance(_Working):
    @classmethod
    def load(cls, args: Mapping[str, Any], weights: Mapping[str, Any] | None, device: str = "cpu") -> Separator:
        model = cls()
        model.context_samples = -5
        return model


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("NoSources", "tests.test_plugins:NoSources.sources must be a non-empty tuple of distinct names, got None"),
        ("ForeignResidual", "residual_source must be None or one of the sources ['vocals', 'accompaniment'], got 'drums'"),
        ("Abstract", "tests.test_plugins:Abstract does not implement separate_block"),
        ("NoSegment", "tests.test_plugins:NoSegment.segment_seconds must be a positive number, got 0"),
        ("KiloHertz", "tests.test_plugins:KiloHertz.sample_rate must be an int number of Hz, at least 1000, got 16"),
    ],
)
def test_a_plugin_class_that_breaks_the_contract_is_broken_by_name(installed, target: str, message: str) -> None:
    installed(fake_entry_point("bad", f"tests.test_plugins:{target}", "sep-bad"))
    with pytest.raises(plugins.PluginError) as raised:
        plugins.get_plugin("bad").load()
    assert str(raised.value).startswith("plugin 'bad' (sep-bad 1.0): ")
    assert message in str(raised.value)


def test_attributes_that_are_properties_are_checked_on_the_model_not_the_class(installed) -> None:
    installed(fake_entry_point("prop", "tests.test_plugins:PropertySources", "sep-prop"))
    assert plugins.get_plugin("prop").load() is PropertySources
    assert sepframework.load("prop", device="cpu").sources == ("vocals", "accompaniment")
    (listed,) = [status for status in model_statuses() if status.name == "prop"]  # `sep models` lists it
    assert (listed.status, listed.sources, listed.sample_rate) == ("ok", (), 8000)


def test_what_a_plugin_prints_goes_to_stderr_not_into_the_output(installed, tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "sep_noisy.py").write_text(
        "print('noisy 1.0 imported')\nfrom tests.test_plugins import _Working\n\n"
        "class Noisy(_Working):\n    @classmethod\n    def load(cls, args, weights, device='cpu'):\n"
        "        print('loading noisy')\n        return cls()\n\n"
        "    def separate_block(self, audio):\n        print('separating')\n        return super().separate_block(audio)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    installed(fake_entry_point("noisy", "sep_noisy:Noisy", "sep-noisy"))
    sepframework.load("noisy", device="cpu").separate(np.zeros((1, 800), dtype=np.float32), 8000)
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "noisy 1.0 imported\nloading noisy\nseparating\n")


def test_a_plugin_exiting_at_import_is_broken_not_the_end_of_the_program(installed, tmp_path, monkeypatch) -> None:
    (tmp_path / "sep_exits_at_import.py").write_text("import sys\nsys.exit('missing CUDA toolkit')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    installed(fake_entry_point("exits", "sep_exits_at_import:Model", "sep-exits"))
    with pytest.raises(plugins.PluginError, match=r"plugin 'exits' \(sep-exits 1.0\) failed to import: SystemExit: missing CUDA"):
        plugins.get_plugin("exits").load()


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("LoadFails", "plugin 'bad' (sep-bad 1.0) failed to load model 'bad': RuntimeError: cannot open my weights"),
        ("LoadReturnsNone", "plugin 'bad' (sep-bad 1.0) gave an unusable model 'bad': load returned NoneType"),
        ("LoadReturnsTheClass", "plugin 'bad' (sep-bad 1.0) gave an unusable model 'bad': load returned the class "
                                "LoadReturnsTheClass, not an instance (return cls(...))"),
        ("LoadWithoutClassmethod", "plugin 'bad' (sep-bad 1.0) gave an unusable model 'bad': load returned dict; it "
                                   "must be a classmethod (@classmethod)"),
        ("NegativeContextInstance",
         "plugin 'bad' (sep-bad 1.0) gave an unusable model 'bad': context_samples must be a non-negative int, got -5"),
    ],
)
def test_a_plugin_failing_to_build_its_model_is_one_clear_error(installed, target: str, message: str) -> None:
    installed(fake_entry_point("bad", f"tests.test_plugins:{target}", "sep-bad"))
    with pytest.raises(SeparationError) as raised:
        sepframework.load("bad", device="cpu")
    assert str(raised.value) == message


def test_sep_models_lists_the_others_beside_a_broken_plugin_and_names_a_hidden_one(installed) -> None:
    installed(
        fake_entry_point("bad", "tests.test_plugins:NoSources", "sep-bad"),
        fake_entry_point("fine", "tests.test_plugins:_Working", "sep-fine"),
        fake_entry_point("gru", "sep_gru.model:GRUSeparator", "sep-gru"),
        fake_entry_point("gru-stream", "tests.test_plugins:_Working", "sep-fork"),  # a registry model's name
    )
    statuses = {status.name: status for status in model_statuses()}
    assert statuses["bad"].status.startswith("broken: plugin 'bad' (sep-bad 1.0): ")
    assert (statuses["fine"].status, statuses["fine"].sources) == ("ok", ("vocals", "accompaniment"))
    assert statuses["gru-stream"].status == "ok; hides the plugin 'gru-stream' of sep-fork 1.0"
    assert statuses["gru"].status == "ok"


def test_sep_models_says_when_a_registry_model_cannot_load_its_files(tmp_path, monkeypatch) -> None:
    from tests.test_gru_model import install_test_registry

    install_test_registry(tmp_path / "registry", monkeypatch)
    weights = tmp_path / "registry/test-stream/model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"x")  # one byte changed
    (tmp_path / "registry/test-offline/model.safetensors").unlink()
    index = json.loads((tmp_path / "registry/index.json").read_text())
    index["models"]["test-offline"]["revision"] = None  # not published either
    (tmp_path / "registry/index.json").write_text(json.dumps(index))
    statuses = {status.name: status for status in model_statuses()}
    assert statuses["test-stream"].status.startswith(
        f"broken: model 'test-stream': bundled file {weights} does not match its sha256")
    assert (statuses["test-offline"].availability, statuses["test-offline"].status) == (
        "missing", "missing: its files are neither bundled nor published on the Hub")


def test_the_auto_device_does_not_import_torch_on_a_machine_without_cuda() -> None:
    import subprocess

    probe = ("import sys; from sepframework.loading import _may_have_cuda, resolve_device; "
             "cuda = _may_have_cuda(); print(resolve_device('auto'), 'torch' in sys.modules, cuda)")
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    if shown[2] == "True":
        pytest.skip("this machine has an NVIDIA driver: 'auto' must ask torch")
    assert shown[:2] == ["cpu", "False"]  # torch takes seconds to import, which a NumPy model never needs
