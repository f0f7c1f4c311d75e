"""The registry index without network: entries from model folders (`sep registry add`),
validation of pins and files, and what `sep models` shows about registry models."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from sepframework import Separator, plugins, registry
from sepframework import hub as sephub
from sepframework.hub_cli import registry as registry_command
from sepframework.models_cli import models as models_command
from sepframework.registry import ModelEntry, RegistryError

pytest_plugins = ["tests.hub_fixtures"]  # hub, empty_registry, make_model_folder

COMMIT = "a" * 40


def invoke(command, *args: str):
    result = CliRunner().invoke(command, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_registry_add_records_the_folder_config_card_and_sha256s(empty_registry, make_model_folder) -> None:
    folder = make_model_folder(empty_registry / "toy")
    output = invoke(registry_command, "add", "toy", "--repo", "org/toy")
    assert "toy: 2 file(s) recorded" in output and "not published (revision null)" in output
    entry = registry.index()["toy"]
    assert entry.files == {name: registry.sha256_of(folder / name) for name in ("config.json", "model.safetensors")}
    assert (entry.plugin, entry.sample_rate, entry.sources) == ("repet-sim", 16000, ("vocals", "accompaniment"))
    assert entry.license == "mit"
    assert entry.description == "A REPET-SIM configuration used by the tests."
    assert entry.metrics == {"Toy songs": {"vocals SDR": 4.5}}
    assert registry.fetch(entry) == {name: folder / name for name in entry.files}


def test_registry_add_refuses_an_entry_that_could_find_no_files(empty_registry, make_model_folder, tmp_path) -> None:
    folder = make_model_folder(tmp_path / "my-run")
    result = CliRunner().invoke(registry_command, ["add", "toy", "--repo", "org/toy", "--folder", str(folder)])
    assert result.exit_code == 2
    assert (f"the entry would find its files neither in {empty_registry / 'toy'} nor on the Hub (no revision); "
            f"copy {folder} to {empty_registry / 'toy'}") in " ".join(result.output.split())
    assert "toy" not in registry.index()


@pytest.mark.parametrize("name", ["sub/m", "Bad Name", "../up", ".hidden", ""])
def test_registry_add_refuses_a_name_that_is_not_one_plain_word(empty_registry, make_model_folder, name) -> None:
    make_model_folder(empty_registry / "toy")
    result = CliRunner().invoke(registry_command, ["add", name, "--repo", "org/toy", "--folder", str(empty_registry / "toy")])
    assert result.exit_code == 1 and isinstance(result.exception, registry.RegistryError)
    assert str(result.exception).startswith(f"'{name}' is not a usable model name: use letters, digits")
    assert registry.index() == {}


def test_registry_add_warns_about_an_entry_without_weights(empty_registry, make_model_folder) -> None:
    (make_model_folder(empty_registry / "toy") / "model.safetensors").unlink()
    result = CliRunner().invoke(registry_command, ["add", "toy", "--repo", "org/toy"])
    assert result.exit_code == 0
    assert "warning: toy has no weights (*.safetensors): only a plugin that needs none can load it" in result.output


class RateFromArgs(Separator):
    """A plugin whose sample rate is a constructor argument (no class attribute)."""

    sources = ("vocals", "accompaniment")

    def __init__(self, sample_rate: int) -> None:
        super().__init__()
        self.sample_rate = sample_rate

    @classmethod
    def load(cls, args, weights, device="cpu") -> RateFromArgs:
        return cls(**args)

    def separate_block(self, audio):
        return {name: audio for name in self.sources}


def test_rate_and_sources_missing_from_the_config_come_from_the_built_model(
    empty_registry, monkeypatch, make_model_folder
) -> None:
    folder = make_model_folder(empty_registry / "toy")
    (folder / "config.json").write_text(json.dumps({"plugin": "rate-from-args", "args": {"sample_rate": 22050}}))
    monkeypatch.setattr(plugins, "get_plugin", lambda name: SimpleNamespace(load=lambda: RateFromArgs))
    entry = registry.entry_from_folder("toy", folder, "org/toy")
    assert (entry.plugin, entry.sample_rate, entry.sources) == ("rate-from-args", 22050, ("vocals", "accompaniment"))


def test_a_pin_is_kept_only_while_the_files_are_unchanged(empty_registry, make_model_folder) -> None:
    folder = make_model_folder(empty_registry / "toy")
    invoke(registry_command, "add", "toy", "--repo", "org/toy", "--revision", COMMIT)
    invoke(registry_command, "add", "toy")
    assert registry.index()["toy"].revision == COMMIT
    make_model_folder(folder, seed=1)  # new weights: the published revision no longer holds them
    invoke(registry_command, "add", "toy")
    assert registry.index()["toy"].revision is None
    assert registry.index()["toy"].repo_id == "org/toy"


def test_writing_an_entry_keeps_the_other_entries_and_the_default_flag(empty_registry, make_model_folder) -> None:
    other = {
        "plugin": "repet-sim",
        "repo_id": "org/other",
        "revision": None,
        "files": {},
        "sample_rate": 16000,
        "sources": ["vocals", "accompaniment"],
        "default": True,
    }
    index = {"models": {"other": other, "toy": {**other, "default": True}}}
    (empty_registry / "index.json").write_text(json.dumps(index))
    make_model_folder(empty_registry / "toy")
    registry.write_entry(registry.entry_from_folder("toy", empty_registry / "toy"))
    models = json.loads((empty_registry / "index.json").read_text())["models"]
    assert models["other"] == other
    assert models["toy"]["default"] is True and models["toy"]["repo_id"] == "org/other"


def test_metrics_come_from_metrics_json_when_the_card_has_no_model_index(empty_registry, make_model_folder) -> None:
    folder = make_model_folder(empty_registry / "toy")
    (folder / "README.md").write_text("---\nlicense: cc-by-nc-4.0\n---\n# toy\n\nTrained.\n")
    scores = {"vocals": {"GNSDR": 3.2}, "accompaniment": {"GNSDR": 2.1}}
    (folder / "metrics.json").write_text(json.dumps({"validation": scores, "best_epoch": 3}))
    entry = registry.entry_from_folder("toy", folder, "org/toy")
    assert (entry.license, entry.metrics) == ("cc-by-nc-4.0", scores)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"revision": "main"}, "pins revision 'main': use the full 40-hex commit sha"),
        ({"files": {"model.pt": "0" * 64}}, "refusing 'model.pt': pickle-based weights"),
        ({"sample_rate": "fast"}, "registry entry 'toy' is malformed"),
    ],
)
def test_unsafe_or_unpinned_index_entries_are_refused(empty_registry, change, message) -> None:
    entry = {
        "plugin": "repet-sim",
        "repo_id": "org/toy",
        "revision": COMMIT,
        "files": {},
        "sample_rate": 16000,
        "sources": ["vocals"],
        **change,
    }
    (empty_registry / "index.json").write_text(json.dumps({"models": {"toy": entry}}))
    with pytest.raises(RegistryError, match=message):
        registry.index()


def test_a_broken_index_file_is_named(empty_registry) -> None:
    (empty_registry / "index.json").write_text("{not json")
    with pytest.raises(RegistryError, match=f"{empty_registry / 'index.json'} is not a valid registry index"):
        registry.index()


def test_sep_models_shows_where_registry_files_come_from(empty_registry, make_model_folder) -> None:
    folder = make_model_folder(empty_registry / "toy")
    registry.write_entry(registry.entry_from_folder("toy", folder, "org/toy"))
    registry.write_entry(
        ModelEntry(
            "remote", "repet-sim", "org/remote", COMMIT, {"config.json": "0" * 64}, 16000, ("vocals", "accompaniment")
        )
    )
    table = invoke(models_command).splitlines()
    assert table[0].split() == ["NAME", "PLUGIN", "DISTRIBUTION", "SOURCES", "RATE", "FILES", "STATUS"]
    files_column = {line.split()[0]: line.split()[-2] for line in table[1:] if line.endswith(" ok")}
    assert (files_column["toy"], files_column["remote"], files_column["repet-sim"]) == ("bundled", "hub", "none")

    listed = {row["name"]: row for row in json.loads(invoke(models_command, "list", "--json"))}
    assert listed["toy"]["revision"] is None and listed["toy"]["status"] == "ok"
    assert listed["remote"]["revision"] == COMMIT and listed["remote"]["sources"] == ["vocals", "accompaniment"]

    info = invoke(models_command, "info", "toy")
    assert "not published yet (the bundled files are authoritative)" in info
    assert f"sha256 {registry.sha256_of(folder / 'model.safetensors')}" in info
    assert re.search(r"^metrics Toy songs +vocals SDR 4.5$", info, re.MULTILINE)


def test_info_on_an_unknown_model_lists_the_known_ones(empty_registry) -> None:
    with pytest.raises(RegistryError, match="unknown model 'nope'; available models: .*repet-sim"):
        CliRunner().invoke(models_command, ["info", "nope"], catch_exceptions=False)


def test_pulling_a_bundled_model_only_verifies_it(empty_registry: Path, monkeypatch, make_model_folder) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # restored after the test; --offline sets it
    folder = make_model_folder(empty_registry / "toy")
    registry.write_entry(registry.entry_from_folder("toy", folder, "org/toy"))
    assert f"toy: 2 file(s) bundled in {folder}, verified" in invoke(models_command, "pull", "toy", "--offline")
    assert sephub.offline()


def test_an_entry_that_would_disagree_with_the_bundled_copy_is_refused(empty_registry, make_model_folder, tmp_path) -> None:
    bundled = make_model_folder(empty_registry / "toy", n_fft=256)
    invoke(registry_command, "add", "toy", "--repo", "org/toy")
    other = make_model_folder(tmp_path / "other", n_fft=512, seed=1)
    result = CliRunner().invoke(registry_command, ["add", "toy", "--revision", COMMIT, "--folder", str(other)])
    assert result.exit_code == 1 and isinstance(result.exception, registry.RegistryError)
    assert str(result.exception) == (
        f"{bundled} holds another config.json, model.safetensors than {other}, and sep would refuse model 'toy' "
        f"as its bundled files would not match the entry; copy the files of {other} to {bundled}, or choose another name"
    )
    assert registry.index()["toy"].files["config.json"] == registry.sha256_of(bundled / "config.json")
    assert registry.fetch(registry.index()["toy"])["config.json"] == bundled / "config.json"  # still loads


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r"metrics\.json is not valid JSON"),
        ('["a list"]', r'metrics\.json should hold \{"validation"'),
        ('{"validation": {"vocals": 3.2}}', r'metrics\.json should hold \{"validation"'),
    ],
)
def test_a_malformed_metrics_json_is_named(empty_registry, make_model_folder, content, message) -> None:
    folder = make_model_folder(empty_registry / "toy")
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# toy\n\nTrained.\n")
    (folder / "metrics.json").write_text(content)
    with pytest.raises(registry.RegistryError, match=message):
        registry.entry_from_folder("toy", folder, "org/toy")
