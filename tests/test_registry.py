"""The registry index without network: entries from model folders (`sep registry add`),
validation of pins and files, and what `sep models` shows about registry models."""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from sepframework.model_files import RegistryError, sha256_of
from sepframework import SeparationError, Separator, plugins, registry
from sepframework import hub as sephub
from sepframework.registry_cli import registry as registry_command
from sepframework.models_cli import models as models_command
from sepframework.registry import ModelEntry

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
    assert entry.files == {name: sha256_of(folder / name) for name in ("config.json", "model.safetensors")}
    assert (entry.plugin, entry.sample_rate, entry.sources) == ("repet-sim", 16000, ("vocals", "accompaniment"))
    assert entry.license == "mit"
    assert entry.description == "A REPET-SIM configuration used by the tests."
    assert entry.metrics == {"Toy songs": {"vocals SDR": 4.5}}
    assert registry.fetch(entry) == {name: folder / name for name in entry.files}


def test_registry_add_refuses_an_entry_that_could_find_no_files(empty_registry, make_model_folder, tmp_path) -> None:
    folder = make_model_folder(tmp_path / "my-run")
    result = CliRunner().invoke(registry_command, ["add", "toy", "--repo", "org/toy", "--folder", str(folder)])
    assert result.exit_code == 1 and isinstance(result.exception, RegistryError)  # refused in this state, not misused
    assert str(result.exception).startswith(f"the entry would find its files neither in {empty_registry / 'toy'} nor on "
                                            f"the Hub (no revision); copy {folder} to {empty_registry / 'toy'}")
    assert "toy" not in registry.index()


@pytest.mark.parametrize("spelling", ["dotdot", "link"])
def test_registry_add_knows_the_bundled_folder_however_it_is_spelled(
    empty_registry, make_model_folder, tmp_path, spelling
) -> None:
    make_model_folder(empty_registry / "toy")
    if spelling == "dotdot":
        folder = empty_registry / ".." / empty_registry.name / "toy"
    else:
        folder = tmp_path / "link"
        folder.symlink_to(empty_registry / "toy")
    assert "toy: 2 file(s) recorded" in invoke(registry_command, "add", "toy", "--repo", "org/toy", "--folder", str(folder))
    assert registry.index()["toy"].revision is None


@pytest.mark.parametrize("name", ["sub/m", "Bad Name", "../up", ".hidden", ""])
def test_registry_add_refuses_a_name_that_is_not_one_plain_word(empty_registry, make_model_folder, name) -> None:
    make_model_folder(empty_registry / "toy")
    result = CliRunner().invoke(registry_command, ["add", name, "--repo", "org/toy", "--folder", str(empty_registry / "toy")])
    assert result.exit_code == 1 and isinstance(result.exception, RegistryError)
    assert str(result.exception).startswith(f"'{name}' is not a usable model name: use letters, digits")
    assert registry.index() == {}


@pytest.mark.parametrize("command", [["add"], ["publish", "--write-index"]])
def test_writing_an_entry_without_weights_warns(hub, empty_registry, make_model_folder, command) -> None:
    (make_model_folder(empty_registry / "toy") / "model.safetensors").unlink()
    result = CliRunner().invoke(registry_command, [command[0], "toy", "--repo", "org/toy", *command[1:]])
    assert result.exit_code == 0, result.output
    assert "warning: toy has no weights (*.safetensors): only a plugin that needs none can load it" in result.output
    assert registry.index()["toy"].files.keys() == {"config.json"}


def test_registry_add_warns_when_a_new_entry_takes_a_plugins_name(empty_registry, make_model_folder) -> None:
    make_model_folder(empty_registry / "repet-sim")
    warning = ("warning: 'repet-sim' is also an installed plugin's name: `--model repet-sim` now loads this registry "
               "entry (plugin 'repet-sim' with the entry's files), no longer the plugin as it is")
    assert warning in invoke(registry_command, "add", "repet-sim", "--repo", "org/rs")
    assert "warning" not in invoke(registry_command, "add", "repet-sim")  # said when the entry was created
    assert "warning" not in invoke(registry_command, "add", "toy2", "--repo", "org/toy2", "--folder",
                                   str(make_model_folder(empty_registry / "toy2")))


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


@pytest.mark.parametrize(("declared", "message"), [
    ({"sample_rate": 22050}, None),  # stated per model: nothing to compare with
    ({"sample_rate": 22050, "sources": ["drums", "bass"]},
     "config.json declares sources ('drums', 'bass'), but plugin 'rate-from-args''s class states "
     "('vocals', 'accompaniment')"),
])
def test_rate_and_sources_declared_in_the_config_are_compared_with_the_plugins_class(
    empty_registry, monkeypatch, make_model_folder, declared: dict, message: str | None
) -> None:
    folder = make_model_folder(empty_registry / "toy")
    config = {"plugin": "rate-from-args", "args": {"sample_rate": 22050}, "sources": ["vocals", "accompaniment"]}
    (folder / "config.json").write_text(json.dumps({**config, **declared}))
    monkeypatch.setattr(plugins, "get_plugin", lambda name: SimpleNamespace(load=lambda: RateFromArgs))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entry = registry.entry_from_folder("toy", folder, "org/toy")
    assert [str(warning.message) for warning in caught] == ([] if message is None else [
        f"model 'toy': {message}; unless the plugin sets it per model, correct config.json or leave sources out"])
    assert (entry.sample_rate, entry.sources) == (22050, tuple(declared.get("sources", config["sources"])))


def test_a_pin_is_kept_only_while_the_files_are_unchanged(empty_registry, make_model_folder) -> None:
    folder = make_model_folder(empty_registry / "toy")
    invoke(registry_command, "add", "toy", "--repo", "org/toy", "--revision", COMMIT)
    invoke(registry_command, "add", "toy")
    assert registry.index()["toy"].revision == COMMIT
    make_model_folder(folder, seed=1)  # new weights: the published revision no longer holds them
    invoke(registry_command, "add", "toy")
    assert registry.index()["toy"].revision is None
    assert registry.index()["toy"].repo_id == "org/toy"


def test_a_pin_is_dropped_when_the_repository_changes(empty_registry, make_model_folder) -> None:
    make_model_folder(empty_registry / "toy")
    invoke(registry_command, "add", "toy", "--repo", "org/toy", "--revision", COMMIT)
    assert "not published (revision null)" in invoke(registry_command, "add", "toy", "--repo", "other/toy")
    assert (registry.index()["toy"].repo_id, registry.index()["toy"].revision) == ("other/toy", None)


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
    scores = {"vocals": {"GNSDR": -1.2114130918078827, "epochs": 3}, "accompaniment": {"GNSDR": 2.1}}
    (folder / "metrics.json").write_text(json.dumps({"validation": scores, "best_epoch": 3}))
    entry = registry.entry_from_folder("toy", folder, "org/toy")
    assert entry.license == "cc-by-nc-4.0"
    assert entry.metrics == {"validation": {"vocals GNSDR": -1.21, "vocals epochs": 3, "accompaniment GNSDR": 2.1}}
    registry.write_entry(entry)
    info = invoke(models_command, "info", "toy")  # shown as model-index metrics are
    assert re.search(r"^metrics validation +vocals GNSDR -1.21, vocals epochs 3, accompaniment GNSDR 2.1$", info, re.MULTILINE)


MISSING = object()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"revision": "main"}, "registry entry 'toy' pins revision 'main': use the full 40-hex commit sha"),
        ({"files": {"model.pt": "0" * 64}}, "registry entry 'toy': refusing 'model.pt': pickle-based weights"),
        ({"sample_rate": "fast"}, "registry entry 'toy' is malformed: invalid literal for int() with base 10: 'fast'"),
        ({"sources": MISSING}, "registry entry 'toy' is malformed: missing key 'sources'"),
    ],
)
def test_unsafe_unpinned_or_malformed_index_entries_are_refused_naming_the_index(empty_registry, change, message) -> None:
    entry = {
        "plugin": "repet-sim",
        "repo_id": "org/toy",
        "revision": COMMIT,
        "files": {},
        "sample_rate": 16000,
        "sources": ["vocals"],
        **change,
    }
    entry = {key: value for key, value in entry.items() if value is not MISSING}
    (empty_registry / "index.json").write_text(json.dumps({"models": {"toy": entry}}))
    with pytest.raises(RegistryError) as raised:
        registry.index()
    assert str(raised.value).startswith(f"{empty_registry / 'index.json'}: {message}")


@pytest.mark.parametrize("content", ["{not json", '{"models": ["toy"]}', '{"models": {"toy": ["a list"]}}'])
def test_a_broken_index_file_is_named(empty_registry, content) -> None:
    (empty_registry / "index.json").write_text(content)
    with pytest.raises(RegistryError, match=re.escape(str(empty_registry / "index.json"))):
        registry.index()


def test_a_sep_registry_that_does_not_exist_is_an_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SEP_REGISTRY", str(tmp_path / "nowhere"))
    with pytest.raises(RegistryError, match=f"SEP_REGISTRY={re.escape(str(tmp_path / 'nowhere'))} is not a folder"):
        registry.index()


@pytest.mark.parametrize(
    ("shipped", "advice"),
    [(True, "reinstall sepframework to restore it"), (False, "restore it")],
)
def test_a_damaged_bundled_file_is_reported_with_advice_fitting_the_registry(
    empty_registry, monkeypatch, make_model_folder, shipped, advice
) -> None:
    if shipped:  # this registry stands for the shipped one
        monkeypatch.setattr(registry, "SHIPPED_REGISTRY", empty_registry.resolve())
        monkeypatch.delenv("SEP_REGISTRY")
    folder = make_model_folder(empty_registry / "toy")
    registry.write_entry(registry.entry_from_folder("toy", folder, "org/toy"))
    (folder / "model.safetensors").write_bytes(b"tampered")
    with pytest.raises(RegistryError) as raised:
        registry.fetch(registry.index()["toy"])
    assert str(raised.value).endswith(
        f"so it is not used; {advice}, or record the files it now holds with `sep registry add toy`")


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
    toy = registry.index()["toy"]
    for name, availability, files in (("toy", "bundled", toy.files), ("repet-sim", "none", {})):
        described = json.loads(invoke(models_command, "info", name, "--json"))
        assert (listed[name]["availability"], listed[name]["files"]) == (availability, files)  # the same in both
        assert (described["availability"], described["files"]) == (availability, files)

    info = invoke(models_command, "info", "toy")
    assert "not published yet (the bundled files are authoritative)" in info
    assert f"sha256 {sha256_of(folder / 'model.safetensors')}" in info
    assert re.search(r"^metrics Toy songs +vocals SDR 4.5$", info, re.MULTILINE)
    assert not re.search(r"^default ", info, re.MULTILINE)
    registry.write_entry(dataclasses.replace(toy, default=True))
    assert re.search(r"^default +yes", invoke(models_command, "info", "toy"), re.MULTILINE)


def test_info_on_a_plugin_without_an_entry_does_not_claim_it_needs_no_weights(empty_registry) -> None:
    info = invoke(models_command, "info", "repet-sim")
    assert re.search(r"^files +none registered \(the plugin is used without files; a model folder or registry entry "
                     r"provides weights\)$", info, re.MULTILINE), info


@pytest.mark.parametrize("card", [True, False])
def test_info_describes_a_model_folder(empty_registry, make_model_folder, tmp_path, monkeypatch, card) -> None:
    folder = make_model_folder(tmp_path / "runs" / "toy")
    if not card:
        (folder / "README.md").unlink()
    monkeypatch.chdir(tmp_path)
    info = invoke(models_command, "info", "runs/toy")
    expected = {
        "plugin": r"repet-sim \(.+\)",
        "status": "ok",
        "sample rate": "16000 Hz",
        "licence": "mit" if card else "unknown",
        "folder": re.escape(str(folder.resolve())),
        "files": "folder",
        "  model.safetensors": f"sha256 {sha256_of(folder / 'model.safetensors')}",
    }
    for label, value in expected.items():
        assert re.search(rf"^{label} +{value}$", info, re.MULTILINE), (label, info)
    assert bool(re.search(r"^metrics Toy songs +vocals SDR 4.5$", info, re.MULTILINE)) == card
    assert json.loads(invoke(models_command, "info", "runs/toy", "--json"))["repo_id"] is None


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("repet-sim", "repet-sim: no registry entry, nothing to download"),
        ("runs/toy", "runs/toy: a model folder, used in place: nothing to download"),
    ],
)
def test_pull_says_when_there_is_nothing_to_download(empty_registry, make_model_folder, tmp_path, monkeypatch,
                                                     name, said) -> None:
    make_model_folder(tmp_path / "runs" / "toy")
    monkeypatch.chdir(tmp_path)
    assert invoke(models_command, "pull", name) == said + "\n"


def test_info_on_an_unknown_model_lists_the_known_ones(empty_registry) -> None:
    with pytest.raises(SeparationError, match="unknown model 'nope'.*; available models: .*repet-sim.* model folder"):
        CliRunner().invoke(models_command, ["info", "nope"], catch_exceptions=False)


def test_pulling_a_bundled_model_only_verifies_it(empty_registry: Path, monkeypatch, make_model_folder) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # restored after the test; --offline sets it
    folder = make_model_folder(empty_registry / "toy")
    registry.write_entry(registry.entry_from_folder("toy", folder, "org/toy"))
    pulled = invoke(models_command, "pull", "toy", "--offline").splitlines()
    assert pulled[0] == f"toy: 2 file(s) bundled in {folder}, verified"
    assert [line.index("sha256") for line in pulled[1:]] == [len("  model.safetensors  ")] * 2  # aligned
    assert sephub.offline()


def test_an_entry_that_would_disagree_with_the_bundled_copy_is_refused(empty_registry, make_model_folder, tmp_path) -> None:
    bundled = make_model_folder(empty_registry / "toy", n_fft=256)
    invoke(registry_command, "add", "toy", "--repo", "org/toy")
    other = make_model_folder(tmp_path / "other", n_fft=512, seed=1)
    result = CliRunner().invoke(registry_command, ["add", "toy", "--revision", COMMIT, "--folder", str(other)])
    assert result.exit_code == 1 and isinstance(result.exception, RegistryError)
    assert str(result.exception) == (
        f"{bundled} holds another config.json, model.safetensors than {other}, and sep would refuse model 'toy' "
        f"as its bundled files would not match the entry; copy the files of {other} to {bundled}, or choose another name"
    )
    assert registry.index()["toy"].files["config.json"] == sha256_of(bundled / "config.json")
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
    with pytest.raises(RegistryError, match=message):
        registry.entry_from_folder("toy", folder, "org/toy")
