"""Downloading registry models from a (local) Hub with the real huggingface_hub client:
caching, pinning, offline use, network failures, bad checksums, unsafe files."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sepframework.model_files import RegistryError, sha256_of
from sepframework import hub as sephub
from sepframework import registry
from sepframework.models_cli import models as models_command
from sepframework.registry import ModelEntry

pytest_plugins = ["tests.hub_fixtures"]  # hub, empty_registry, make_model_folder

REPO = "org/toy"


def publish_toy(server, folder: Path) -> tuple[str, ModelEntry]:
    """Commit a toy model folder on the server; return the commit and an entry pinning it."""
    commit = server.add_folder(REPO, folder)
    files = {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in ("config.json", "model.safetensors")
    }
    entry = ModelEntry(
        name="toy",
        plugin="repet-sim",
        repo_id=REPO,
        revision=commit,
        files=files,
        sample_rate=16000,
        sources=("vocals", "accompaniment"),
    )
    return commit, entry


def test_first_download_then_the_cache_is_used_without_any_request(
    hub, tmp_path, empty_registry, make_model_folder
) -> None:
    folder = make_model_folder(tmp_path / "toy")
    commit, entry = publish_toy(hub, folder)
    paths = registry.fetch(entry)
    assert paths["model.safetensors"].read_bytes() == (folder / "model.safetensors").read_bytes()
    assert f"snapshots/{commit}" in str(paths["config.json"])
    assert hub.count("GET", "/lfs/") == 1  # the weights came through the LFS redirect
    hub.requests.clear()
    assert registry.fetch(entry) == paths
    assert hub.requests == []


def test_a_pinned_revision_keeps_its_files_when_the_branch_moves(hub, tmp_path, monkeypatch, make_model_folder) -> None:
    old_commit, old_entry = publish_toy(hub, make_model_folder(tmp_path / "v1", n_fft=512))
    new_commit = hub.add_folder(REPO, make_model_folder(tmp_path / "v2", n_fft=1024))
    assert new_commit != old_commit
    monkeypatch.setenv("HF_HOME", str(tmp_path / "fresh-cache"))
    pinned = sephub.download(REPO, old_commit, old_entry.files, "test")
    assert pinned["config.json"].read_text() == (tmp_path / "v1/config.json").read_text()
    assert registry.find(f"hf://{REPO}@{old_commit}").revision == old_commit
    moving = registry.find(f"hf://{REPO}")
    assert moving.revision == new_commit
    assert moving.files["config.json"] == sha256_of(tmp_path / "v2/config.json")


def test_offline_works_from_the_cache_and_fails_clearly_when_not_cached(
    hub, tmp_path, monkeypatch, make_model_folder
) -> None:
    _, entry = publish_toy(hub, make_model_folder(tmp_path / "toy"))
    online = registry.fetch(entry)
    branch = registry.find(f"hf://{REPO}")
    hub.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert registry.fetch(entry) == online
    assert registry.find(f"hf://{REPO}").files == branch.files  # the branch resolves from the cache
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    with pytest.raises(sephub.HubError, match=r"offline mode is on and the cache \(.*\) lacks config.json, model.safetensors of 'org/toy'") as raised:
        registry.fetch(entry)
    assert str(raised.value).endswith("run `sep models pull toy` once while online")  # the name the user knows
    with pytest.raises(sephub.HubError, match="offline mode is on"):
        registry.find(f"hf://{REPO}")


def test_a_server_that_is_down_is_one_clear_error(hub, tmp_path, make_model_folder) -> None:
    _, entry = publish_toy(hub, make_model_folder(tmp_path / "toy"))
    endpoint = hub.endpoint
    hub.stop()
    started = time.monotonic()
    with pytest.raises(sephub.HubError, match=f"model 'toy': cannot reach the Hub at {endpoint}"):
        registry.fetch(entry)
    assert time.monotonic() - started < 5


def test_a_hub_that_never_answers_is_a_clear_error_after_a_bounded_wait(tmp_path, monkeypatch) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setenv("HF_HOME", str(tmp_path / "cache"))
        monkeypatch.setattr(sephub, "ANSWER_TIMEOUT_S", 1)
        outcome: list[BaseException] = []

        def resolve() -> None:
            try:
                registry.find(f"hf://{REPO}")
            except BaseException as error:  # noqa: BLE001 - handed to the test thread
                outcome.append(error)

        worker = threading.Thread(target=resolve, daemon=True)
        worker.start()
        worker.join(timeout=60)
    assert not worker.is_alive(), "the Hub request is still waiting"
    assert isinstance(outcome[0], sephub.HubError) and "accepted the connection but did not answer in time" in str(outcome[0])


@pytest.mark.parametrize("value", ["127.0.0.1:9", "ftp://hub.example", "http://[::1"])
def test_an_endpoint_that_is_not_a_url_is_named(monkeypatch, value) -> None:
    monkeypatch.setenv("HF_ENDPOINT", value)
    with pytest.raises(sephub.HubError, match=f"HF_ENDPOINT '{re.escape(value)}' is not a Hub URL"):
        registry.find(f"hf://{REPO}")


def test_a_cached_commit_needs_no_network(hub, tmp_path, make_model_folder) -> None:
    folder = make_model_folder(tmp_path / "toy")
    (folder / "a.safetensors").write_bytes((folder / "model.safetensors").read_bytes())  # named before config.json
    commit = hub.add_folder(REPO, folder)
    online = registry.find(f"hf://{REPO}@{commit}")
    hub.requests.clear()
    cached = registry.find(f"hf://{REPO}@{commit}")
    assert cached == online
    assert hub.requests == []
    assert list(online.files) == list(cached.files) == ["a.safetensors", "config.json", "model.safetensors"]


def test_offline_hub_files_are_checked_against_the_sha256s_recorded_when_downloaded(
    hub, tmp_path, monkeypatch, make_model_folder
) -> None:
    hub.add_folder(REPO, make_model_folder(tmp_path / "toy"))
    weights = registry.fetch(registry.find(f"hf://{REPO}"))["model.safetensors"]
    other = make_model_folder(tmp_path / "other", seed=1) / "model.safetensors"  # valid weights, not these
    weights.resolve().write_bytes(other.read_bytes())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        sephub.HubError, match=r"cached 'model.safetensors' of 'org/toy' at \w+ does not match the sha256 recorded when it "
        r"was downloaded; the file was removed"
    ):
        registry.find(f"hf://{REPO}")
    with pytest.raises(sephub.HubError, match="offline mode is on and the cache .* lacks the model files of 'org/toy' at revision 'main'"):
        registry.find(f"hf://{REPO}")  # not a model without weights
    monkeypatch.delenv("HF_HUB_OFFLINE")
    entry = registry.find(f"hf://{REPO}")
    assert registry.fetch(entry)["model.safetensors"].read_bytes() == (tmp_path / "toy/model.safetensors").read_bytes()


def test_a_cached_file_deleted_behind_its_link_is_missing_offline(hub, tmp_path, monkeypatch, make_model_folder) -> None:
    hub.add_folder(REPO, make_model_folder(tmp_path / "toy"))
    registry.fetch(registry.find(f"hf://{REPO}"))["model.safetensors"].resolve().unlink()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(sephub.HubError, match=f"lacks the model files .*; run `sep models pull hf://{REPO}@main`"):
        registry.find(f"hf://{REPO}")


def test_an_interrupted_update_keeps_the_cached_branch_usable_offline(
    hub, tmp_path, monkeypatch, make_model_folder
) -> None:
    old_commit = hub.add_folder(REPO, make_model_folder(tmp_path / "v1"))
    assert registry.find(f"hf://{REPO}").revision == old_commit
    hub.add_folder(REPO, make_model_folder(tmp_path / "v2", seed=1))
    hub.break_file(REPO, "model.safetensors", "drop")
    with pytest.raises(sephub.HubError, match="transfer of 'model.safetensors' from 'org/toy' failed"):
        registry.find(f"hf://{REPO}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert registry.find(f"hf://{REPO}").revision == old_commit


def test_a_bad_file_that_cannot_be_removed_is_still_refused(hub, tmp_path, monkeypatch, make_model_folder) -> None:
    _, entry = publish_toy(hub, make_model_folder(tmp_path / "toy"))
    weights = registry.fetch(entry)["model.safetensors"].resolve()
    weights.write_bytes(b"x" + weights.read_bytes()[1:])

    def read_only(path: Path, missing_ok: bool = False) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(Path, "unlink", read_only)
    with pytest.raises(
        sephub.HubError, match=r"does not match its sha256 .*; it was not used, and could not be removed from the cache"
    ):
        registry.fetch(entry)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"repo_id": "org/nope"}, "repository 'org/nope' not found on http://127.0.0.1"),
        ({"revision": "0" * 40}, f"revision '{'0' * 40}' not found in repository 'org/toy'"),
        ({"files": {"other.safetensors": "0" * 64}}, "file 'other.safetensors' not found in 'org/toy'"),
    ],
)
def test_missing_repository_revision_or_file_is_named(hub, tmp_path, change, message, make_model_folder) -> None:
    _, entry = publish_toy(hub, make_model_folder(tmp_path / "toy"))
    fields = {**entry.__dict__, **change}
    with pytest.raises(sephub.HubError, match=message):
        registry.fetch(ModelEntry(**fields))


def test_a_file_failing_its_checksum_is_removed_and_never_used(hub, tmp_path, make_model_folder) -> None:
    _, entry = publish_toy(hub, make_model_folder(tmp_path / "toy"))
    hub.break_file(REPO, "model.safetensors", "corrupt")
    with pytest.raises(sephub.HubError, match=r"'model.safetensors' from 'org/toy' .* does not match its sha256"):
        registry.fetch(entry)
    assert sephub.cached_path(REPO, entry.revision, "model.safetensors") is None
    hub.break_file(REPO, "model.safetensors", None)
    assert sha256_of(registry.fetch(entry)["model.safetensors"]) == entry.files["model.safetensors"]


@pytest.mark.parametrize("filename", ["config.json", "model.safetensors"])  # git blob id, LFS sha256
def test_an_entry_with_a_wrong_sha256_is_blamed_and_the_hubs_file_kept(hub, tmp_path, make_model_folder, filename) -> None:
    _, entry = publish_toy(hub, make_model_folder(tmp_path / "toy"))
    entry = dataclasses.replace(entry, files={**entry.files, filename: "f" * 64})
    for attempt in ("downloaded", "cached"):
        with pytest.raises(sephub.HubError) as raised:
            registry.fetch(entry)
        assert (f"model 'toy': the registry entry disagrees with the file the Hub serves at that commit: '{filename}' of "
                f"'org/toy' at {entry.revision[:12]} has sha256 ") in str(raised.value), attempt
        assert str(raised.value).endswith("the entry is wrong or the repository was rewritten (the file is kept in the cache)")
        assert sephub.cached_path(REPO, entry.revision, filename) is not None, attempt
    content = "/lfs/" if filename.endswith(".safetensors") else f"/{filename}"  # LFS content comes from the CDN
    assert hub.count("GET", content) == 1  # downloaded once, then found cached


def test_a_damaged_cached_file_is_downloaded_again_online(hub, tmp_path, make_model_folder) -> None:
    folder = make_model_folder(tmp_path / "toy")
    _, entry = publish_toy(hub, folder)
    registry.fetch(entry)["model.safetensors"].resolve().write_bytes(b"damaged")
    assert registry.fetch(entry)["model.safetensors"].read_bytes() == (folder / "model.safetensors").read_bytes()


def test_offline_a_damaged_cached_file_is_removed_with_what_to_do(hub, tmp_path, monkeypatch, make_model_folder) -> None:
    _, entry = publish_toy(hub, make_model_folder(tmp_path / "toy"))
    registry.fetch(entry)["model.safetensors"].resolve().write_bytes(b"damaged")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(sephub.HubError, match=r"'model.safetensors' from 'org/toy' at \w+ does not match its sha256 .*; "
                                              r"the file was removed from the cache and not used; "
                                              r"run `sep models pull toy` once while online$"):
        registry.fetch(entry)
    assert sephub.cached_path(REPO, entry.revision, "model.safetensors") is None


CACHED_MISMATCH = ("broken: model 'toy': cached file model.safetensors of org/toy@{short} does not match its sha256 "
                   "in the registry index; `sep models pull toy` tells why and downloads it again")


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("damaged", CACHED_MISMATCH),
        ("wrong entry", CACHED_MISMATCH),
        ("offline, not cached", "missing: not in the cache (offline); run `sep models pull toy` once while online"),
        ("cached", "ok"),
    ],
)
def test_sep_models_checks_cached_files_and_offline_use(
    hub, tmp_path, monkeypatch, empty_registry, make_model_folder, case, status
) -> None:
    _, entry = publish_toy(hub, make_model_folder(tmp_path / "toy"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # restored after the test; --offline sets it
    if case != "offline, not cached":
        weights = registry.fetch(entry)["model.safetensors"]
    if case == "damaged":
        weights.resolve().write_bytes(b"damaged")
    if case == "wrong entry":
        entry = dataclasses.replace(entry, files={**entry.files, "model.safetensors": "f" * 64})
    registry.write_entry(entry)
    hub.stop()
    shown = CliRunner().invoke(models_command, ["info", "toy", "--json", "--offline"], catch_exceptions=False).output
    assert json.loads(shown)["status"] == status.format(short=entry.revision[:12])


def test_a_hub_repository_is_checked_against_the_hashes_the_hub_declares(hub, tmp_path, make_model_folder) -> None:
    publish_toy(hub, make_model_folder(tmp_path / "toy"))
    hub.break_file(REPO, "config.json", "corrupt")
    with pytest.raises(sephub.HubError, match="'config.json' from 'org/toy' .* does not match the Hub's hash"):
        registry.find(f"hf://{REPO}")


def test_an_interrupted_download_is_a_clear_error_and_a_retry_succeeds(hub, tmp_path, make_model_folder) -> None:
    _, entry = publish_toy(hub, make_model_folder(tmp_path / "toy"))
    hub.break_file(REPO, "model.safetensors", "drop")  # the client retries, then gives up
    with pytest.raises(sephub.HubError, match="transfer of 'model.safetensors' from 'org/toy' failed"):
        registry.fetch(entry)
    blobs = Path(sephub.cache_dir()) / "models--org--toy" / "blobs"
    assert not [path.name for path in blobs.iterdir() if "incomplete" in path.name]
    hub.break_file(REPO, "model.safetensors", None)
    paths = registry.fetch(entry)
    assert sha256_of(paths["model.safetensors"]) == entry.files["model.safetensors"]


def test_pickle_weights_are_refused_before_any_download(hub, tmp_path) -> None:
    hub.add_commit("org/pickled", {"config.json": b'{"plugin": "repet-sim"}', "pytorch_model.bin": b"\x80\x04"})
    with pytest.raises(RegistryError, match="refusing 'pytorch_model.bin': pickle-based weights"):
        registry.find("hf://org/pickled")
    assert hub.count("GET", "pytorch_model.bin") == 0
    with pytest.raises(RegistryError, match="refusing 'model.ckpt'"):
        ModelEntry.from_json(
            "bad",
            {
                "plugin": "p",
                "repo_id": "o/r",
                "revision": None,
                "files": {"model.ckpt": "0"},
                "sample_rate": 1,
                "sources": ["a"],
            },
        )


def test_bundled_files_come_first_and_need_no_network(hub, tmp_path, empty_registry, make_model_folder) -> None:
    folder = make_model_folder(empty_registry / "toy")
    _, entry = publish_toy(hub, folder)
    hub.stop()
    assert registry.fetch(entry) == {name: folder / name for name in entry.files}
    (folder / "model.safetensors").write_bytes(b"tampered")
    with pytest.raises(RegistryError, match="bundled file .* does not match its sha256"):
        registry.fetch(entry)


def test_an_unpublished_model_without_its_bundled_files_is_a_clear_error(empty_registry) -> None:
    entry = ModelEntry(
        name="toy",
        plugin="repet-sim",
        repo_id=REPO,
        revision=None,
        files={"config.json": "0" * 64},
        sample_rate=16000,
        sources=("vocals",),
    )
    with pytest.raises(RegistryError, match="not published on the Hub yet .* missing from"):
        registry.fetch(entry)


def test_a_blob_in_a_shared_store_is_verified_and_never_deleted(hub, tmp_path, monkeypatch, make_model_folder) -> None:
    """huggingface_hub with hf_xet links ``blobs/<sha256>`` to a store shared by all repositories."""
    hub.add_folder(REPO, make_model_folder(tmp_path / "toy"))
    weights = registry.fetch(registry.find(f"hf://{REPO}"))["model.safetensors"]
    blob = weights.resolve()
    shared = tmp_path / "hf-home" / "hub" / "blobs" / "ab" / ("ab" + "0" * 62)  # named by its Xet hash
    shared.parent.mkdir(parents=True)
    blob.rename(shared)
    blob.symlink_to(shared)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert registry.fetch(registry.find(f"hf://{REPO}"))["model.safetensors"] == weights  # valid: used

    shared.write_bytes((make_model_folder(tmp_path / "other", seed=1) / "model.safetensors").read_bytes())
    with pytest.raises(sephub.HubError, match=r"cached 'model.safetensors' of 'org/toy' at \w+ does not match the sha256"):
        registry.find(f"hf://{REPO}")
    assert shared.is_file() and not blob.is_symlink()  # the repository's links removed, the shared file kept


def test_a_cache_without_links_is_used_and_checked_offline(hub, tmp_path, monkeypatch, make_model_folder) -> None:
    hub.add_folder(REPO, make_model_folder(tmp_path / "toy"))
    paths = registry.fetch(registry.find(f"hf://{REPO}"))
    for path in paths.values():  # as huggingface_hub lays out a cache where links are unavailable
        content = path.read_bytes()
        path.unlink()
        path.write_bytes(content)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert registry.fetch(registry.find(f"hf://{REPO}")) == paths
    paths["model.safetensors"].write_bytes((make_model_folder(tmp_path / "other", seed=1) / "model.safetensors").read_bytes())
    with pytest.raises(sephub.HubError, match="does not match the sha256 recorded when it was downloaded"):
        registry.find(f"hf://{REPO}")


def test_a_snapshot_not_recorded_complete_is_not_used(hub, tmp_path, monkeypatch, make_model_folder) -> None:
    """Files another tool, or a download the branch moved under, left in the cache."""
    commit = hub.add_folder(REPO, make_model_folder(tmp_path / "toy"))
    config = registry.fetch(registry.find(f"hf://{REPO}@{commit}"))["config.json"]
    record = config.parents[2] / "sepframework" / f"{commit}.json"
    assert record.is_file()
    config.with_name("model.safetensors").unlink()  # a config alone, as a download cut short leaves it
    record.unlink()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(sephub.HubError, match="lacks the model files of 'org/toy'"):
        registry.find(f"hf://{REPO}@{commit}")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    hub.requests.clear()
    entry = registry.find(f"hf://{REPO}@{commit}")  # online: completed from the Hub
    assert registry.fetch(entry)["model.safetensors"].read_bytes() == (tmp_path / "toy/model.safetensors").read_bytes()
    assert hub.requests and record.is_file()


def test_a_damaged_cached_commit_is_downloaded_again_online(hub, tmp_path, make_model_folder) -> None:
    commit = hub.add_folder(REPO, make_model_folder(tmp_path / "toy"))
    weights = registry.fetch(registry.find(f"hf://{REPO}@{commit}"))["model.safetensors"]
    weights.resolve().write_bytes(b"damaged")
    entry = registry.find(f"hf://{REPO}@{commit}")
    assert registry.fetch(entry)["model.safetensors"].read_bytes() == (tmp_path / "toy/model.safetensors").read_bytes()


def test_a_damaged_cached_file_is_downloaded_again_by_branch_too(hub, tmp_path, make_model_folder) -> None:
    hub.add_folder(REPO, make_model_folder(tmp_path / "toy"))
    registry.fetch(registry.find(f"hf://{REPO}"))["model.safetensors"].resolve().write_bytes(b"damaged")
    entry = registry.find(f"hf://{REPO}")
    assert registry.fetch(entry)["model.safetensors"].read_bytes() == (tmp_path / "toy/model.safetensors").read_bytes()


@pytest.mark.parametrize("record", ["[]", "{}", '"config.json"', '{"config.json": 3}', "not json"])
def test_a_record_sepframework_did_not_write_is_no_record(hub, tmp_path, monkeypatch, make_model_folder, record) -> None:
    commit = hub.add_folder(REPO, make_model_folder(tmp_path / "toy"))
    config = registry.fetch(registry.find(f"hf://{REPO}@{commit}"))["config.json"]
    (config.parents[2] / "sepframework" / f"{commit}.json").write_text(record)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(sephub.HubError, match="lacks the model files of 'org/toy'"):
        registry.find(f"hf://{REPO}@{commit}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write any folder")
def test_a_read_only_cache_still_loads_what_it_holds(hub, tmp_path, make_model_folder) -> None:
    hub.add_folder(REPO, make_model_folder(tmp_path / "toy"))
    paths = registry.fetch(registry.find(f"hf://{REPO}"))
    folders = [path for path in (tmp_path / "hf-home").rglob("*") if path.is_dir() and not path.is_symlink()]
    for folder in folders:
        folder.chmod(0o555)
    try:
        assert registry.fetch(registry.find(f"hf://{REPO}")) == paths
    finally:
        for folder in folders:
            folder.chmod(0o755)


def test_a_record_that_cannot_be_written_only_leaves_the_snapshot_unrecorded(
    hub, tmp_path, monkeypatch, make_model_folder
) -> None:
    hub.add_folder(REPO, make_model_folder(tmp_path / "toy"))

    def read_only(path, text):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(sephub, "write_text_atomically", read_only)
    entry = registry.find(f"hf://{REPO}")  # downloaded and verified, but not recorded complete
    assert registry.fetch(entry)["model.safetensors"].read_bytes() == (tmp_path / "toy/model.safetensors").read_bytes()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(sephub.HubError, match="lacks the model files of 'org/toy'"):
        registry.find(f"hf://{REPO}")


def test_a_hub_model_shows_its_cards_licence_and_metrics_online_and_offline(hub, tmp_path, make_model_folder) -> None:
    folder = make_model_folder(tmp_path / "toy")
    commit = hub.add_folder(REPO, folder)
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        (bare / name).write_bytes((folder / name).read_bytes())
    hub.add_folder("org/bare", bare)
    assert registry.find("hf://org/bare").license == "unknown"  # no card: nothing to tell
    for offline in ([], ["--offline"]):
        shown = CliRunner().invoke(models_command, ["info", f"hf://{REPO}", *offline], catch_exceptions=False).output
        assert re.search(r"^licence +mit$", shown, re.MULTILINE), shown
        assert re.search(r"^metrics Toy songs +vocals SDR 4.5$", shown, re.MULTILINE), shown
        assert re.search(rf"^revision +{commit}$", shown, re.MULTILINE), shown
