"""`sep registry publish` to a (local) Hub, then `sep models pull`, `sep run` and `load("hf://...")`."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sepframework
from sepframework.model_files import RegistryError, sha256_of
from sepframework import hub as sephub
from sepframework import registry

pytest_plugins = ["tests.hub_fixtures"]  # hub, empty_registry, make_model_folder

SEP = [sys.executable, "-m", "sepframework.cli"]


def sep(*args: str | Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*SEP, *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture
def sep_env(hub, tmp_path, empty_registry) -> dict[str, str]:
    """Environment of `sep` subprocesses: the local Hub, a fresh cache, an empty registry."""
    env = {**os.environ, **hub.client_env(tmp_path / "hf-home"), "SEP_REGISTRY": str(empty_registry)}
    env.pop("HF_HUB_OFFLINE", None)
    return env


def test_publish_pull_then_run_offline_round_trip(
    hub, sep_env, tmp_path, empty_registry, write_wav, make_model_folder
) -> None:
    folder = make_model_folder(tmp_path / "toy")
    published = sep(
        "registry",
        "publish",
        "toy",
        "--repo",
        "org/toy",
        "--folder",
        folder,
        "--write-index",
        env=sep_env,
        cwd=tmp_path,
    )
    assert published.returncode == 0, published.stderr
    revision = re.search(r"at revision ([0-9a-f]{40})", published.stdout).group(1)
    assert hub.repos["org/toy"].branches["main"] == revision
    stored = hub.repos["org/toy"].commits[revision]
    assert {path: file.content for path, file in stored.items()} == {
        path.name: path.read_bytes() for path in folder.iterdir()
    }
    assert stored["model.safetensors"].lfs and hub.count("PUT", "/upload/") == 1  # weights went through LFS

    entry = json.loads((empty_registry / "index.json").read_text())["models"]["toy"]
    assert entry["revision"] == revision and entry["repo_id"] == "org/toy"
    assert entry["files"] == {name: sha256_of(folder / name) for name in ("config.json", "model.safetensors")}
    assert f'"revision": "{revision}"' in published.stdout  # what to pin, printed
    assert (entry["license"], entry["metrics"]) == ("mit", {"Toy songs": {"vocals SDR": 4.5}})

    pulled = sep("models", "pull", "toy", env=sep_env, cwd=tmp_path)
    assert pulled.returncode == 0, pulled.stderr
    assert f"2 file(s) of org/toy@{revision} verified in the cache" in pulled.stdout

    model = sepframework.load(f"hf://org/toy@{revision}", device="cpu")
    assert type(model).__name__ == "RepetSim" and model.stft.n_fft == 512  # args from config.json

    hub.stop()
    song = write_wav("song.wav", seconds=1.5)
    offline = {**sep_env, "HF_HUB_OFFLINE": "1"}
    ran = sep("run", "--model", "toy", "-o", tmp_path / "out", song, env=offline, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert sorted(path.name for path in (tmp_path / "out/song").iterdir()) == ["accompaniment.wav", "vocals.wav"]


def test_republishing_unchanged_files_makes_no_new_commit(hub, tmp_path, make_model_folder) -> None:
    folder = make_model_folder(tmp_path / "toy")
    first = sephub.publish(folder, "org/toy")
    second = sephub.publish(folder, "org/toy")
    assert second.revision == first.revision
    assert (first.unchanged, second.unchanged) == (False, True)
    assert len(hub.repos["org/toy"].commits) == 1
    assert first.uploaded == ("config.json", "model.safetensors", "README.md")


def test_publishing_without_a_valid_token_is_one_clear_line(hub, sep_env, tmp_path, make_model_folder) -> None:
    folder = make_model_folder(tmp_path / "toy")
    result = sep(
        "registry",
        "publish",
        "toy",
        "--repo",
        "org/toy",
        "--folder",
        folder,
        env={**sep_env, "HF_TOKEN": "hf_wrong"},
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert re.fullmatch(
        r"error: publishing .*toy: http://127\.0\.0\.1:\d+ answered HTTP 401 for 'org/toy': "
        r".*check HF_TOKEN \(it needs write access to publish\)\n",
        result.stderr,
    )
    assert "org/toy" not in hub.repos


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda folder: (folder / "model.safetensors").rename(folder / "model.bin"), "refusing 'model.bin'"),
        (lambda folder: (folder / "README.md").write_text("# no metadata\n"), "needs YAML metadata with a license"),
        (lambda folder: (folder / "config.json").write_text('{"args": {}}'), 'a JSON object naming its "plugin"'),
    ],
)
def test_an_unfit_model_folder_is_refused_before_any_upload(hub, tmp_path, damage, message, make_model_folder) -> None:
    folder = make_model_folder(tmp_path / "toy")
    damage(folder)
    with pytest.raises(RegistryError, match=message):
        sephub.publish(folder, "org/toy")
    assert hub.requests == []


def test_hub_model_names_are_checked(hub) -> None:
    for bad in ("hf://only-one-part", "hf://a/b/c", "hf://org/repo@"):
        with pytest.raises(sephub.HubError, match=f"'{re.escape(bad)}' is not a Hub model"):
            sepframework.load(bad, device="cpu")
    for bad, why in (("hf://bad name/x", "alphanumeric"), ("hf://org/re..po", "Cannot have -- or .."),
                     ("hf://org/-x", "cannot start or end with '-'")):
        with pytest.raises(sephub.HubError, match=f"'{re.escape(bad[5:])}' is not a Hub repository id: .*{re.escape(why)}"):
            sepframework.load(bad, device="cpu")
    assert sephub.parse_hub_uri("hf://org/repo@v1") == ("org/repo", "v1")
    assert sephub.parse_hub_uri("hf://org/repo") == ("org/repo", "main")
    assert hub.requests == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "gru", "--repo", "bad name/x"], "Invalid value for '--repo': 'bad name/x' is not a Hub repository id"),
        (["publish", "gru", "--repo", "bad name/x"], "Invalid value for '--repo': 'bad name/x' is not a Hub repository id"),
        (["add", "gru", "--revision", "abc"], "Invalid value for '--revision': 'abc' is not a full 40-hex commit sha"),
    ],
)
def test_a_malformed_option_is_a_usage_error(empty_registry, args, message) -> None:
    from click.testing import CliRunner
    from sepframework.registry_cli import registry as registry_command

    result = CliRunner().invoke(registry_command, args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_a_hub_repository_without_config_is_not_a_model(hub) -> None:
    hub.add_commit("org/weights-only", {"model.safetensors": b"x" * 10})
    with pytest.raises(RegistryError, match="has no config.json, so it is not a sepframework model"):
        registry.find("hf://org/weights-only")


def test_pull_reports_each_failure_and_continues(hub, sep_env, tmp_path, make_model_folder) -> None:
    hub.add_folder("org/toy", make_model_folder(tmp_path / "toy"))
    result = sep("models", "pull", "hf://org/missing", "hf://org/toy", env=sep_env, cwd=tmp_path)
    assert result.returncode == 1
    assert "error: model 'hf://org/missing': repository 'org/missing' not found" in result.stderr
    assert "hf://org/toy: 2 file(s) of org/toy@" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_hub_that_is_down_is_one_line_on_the_command_line(hub, sep_env, tmp_path) -> None:
    endpoint = hub.endpoint
    hub.stop()
    result = sep("models", "pull", "hf://org/toy", env=sep_env, cwd=tmp_path)
    assert result.returncode == 1
    assert re.fullmatch(
        f"error: model 'hf://org/toy': cannot reach the Hub at {re.escape(endpoint)} "
        r"\(.*\); check the network or HF_ENDPOINT \(or use --offline for models already in the cache\)\n",
        result.stderr,
    ), result.stderr


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Bad Name", "'Bad Name' is not a usable model name"),
        ("toy", "holds another config.json, model.safetensors than"),  # registry/toy is another model
    ],
)
def test_publish_write_index_refuses_an_unusable_entry_before_uploading(
    hub, sep_env, tmp_path, empty_registry, make_model_folder, name, message
) -> None:
    make_model_folder(empty_registry / "toy", n_fft=256)
    folder = make_model_folder(tmp_path / "run", n_fft=512, seed=1)
    before = (empty_registry / "index.json").read_text() if (empty_registry / "index.json").exists() else None
    result = sep("registry", "publish", name, "--repo", "org/toy", "--folder", folder, "--write-index",
                 env=sep_env, cwd=tmp_path)
    assert result.returncode == 1 and message in " ".join(result.stderr.split()), result.stderr
    assert "Traceback" not in result.stderr
    assert hub.requests == [] and "org/toy" not in hub.repos
    after = (empty_registry / "index.json").read_text() if (empty_registry / "index.json").exists() else None
    assert after == before


def test_republishing_on_the_command_line_says_nothing_changed(hub, sep_env, tmp_path, make_model_folder) -> None:
    folder = make_model_folder(tmp_path / "toy")
    runs = [sep("registry", "publish", "toy", "--repo", "org/toy", "--folder", folder, env=sep_env, cwd=tmp_path)
            for _ in range(2)]
    revision = hub.repos["org/toy"].branches["main"]
    assert runs[0].stdout.startswith(f"published config.json, model.safetensors, README.md to org/toy at revision {revision}\n")
    assert runs[1].stdout.startswith(f"org/toy already holds these files: nothing published, revision {revision}\n")
    assert runs[0].stderr == runs[1].stderr == ""  # no progress bars off a terminal, no huggingface_hub log lines


@pytest.mark.parametrize("terminal", [True, False])
def test_upload_progress_bars_show_on_a_terminal_only(hub, tmp_path, monkeypatch, make_model_folder, terminal) -> None:
    from huggingface_hub import HfApi
    from huggingface_hub.utils import are_progress_bars_disabled

    class Stderr(io.StringIO):
        def isatty(self) -> bool:
            return terminal

    disabled_while_committing = []
    create_commit = HfApi.create_commit

    def recording(api, *args, **kwargs):
        disabled_while_committing.append(are_progress_bars_disabled())
        return create_commit(api, *args, **kwargs)

    monkeypatch.setattr(HfApi, "create_commit", recording)
    monkeypatch.setattr(sys, "stderr", Stderr())
    assert not are_progress_bars_disabled()
    sephub.publish(make_model_folder(tmp_path / "toy"), "org/toy")
    assert disabled_while_committing == [not terminal]
    assert not are_progress_bars_disabled()  # as before


def test_a_publication_racing_another_one_commits_nothing_over_it(hub, tmp_path, monkeypatch, make_model_folder) -> None:
    sephub.publish(make_model_folder(tmp_path / "v1"), "org/toy")
    head_commit = sephub._head_commit

    def someone_else_publishes_meanwhile(api, repo_id):
        head = head_commit(api, repo_id)
        hub.add_commit(repo_id, {"README.md": b"their card"})
        return head

    monkeypatch.setattr(sephub, "_head_commit", someone_else_publishes_meanwhile)
    with pytest.raises(sephub.HubError, match=r"answered HTTP 412 for 'org/toy': .*; the repository changed meanwhile: "
                                              r"run the command again$"):
        sephub.publish(make_model_folder(tmp_path / "v2", seed=1), "org/toy")
    assert len(hub.repos["org/toy"].commits) == 2  # theirs stays the head, nothing of ours on top
    head = hub.repos["org/toy"].branches["main"]
    assert hub.repos["org/toy"].commits[head]["README.md"].content == b"their card"
