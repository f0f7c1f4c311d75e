"""Model files on the Hugging Face Hub: pinned and verified downloads, offline use, publishing.

Everything goes through ``huggingface_hub`` and its cache. The settings are read from the
environment when used, so they may change at run time: ``HF_ENDPOINT`` (the Hub, default
https://huggingface.co), ``HF_HUB_CACHE`` or ``HF_HOME`` (the cache), ``HF_HUB_OFFLINE``
(use the cache only), ``HF_TOKEN`` (private repos, publishing).

Nothing from the Hub is executed: configs are JSON data and weights are safetensors;
pickle-based files are refused. A file whose content does not match its expected hash is
deleted from the cache and never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from sepframework.registry import (
    CARD_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    RegistryError,
    card_metadata,
    check_loadable,
    model_file_names,
    model_folder_files,
    read_config,
    sha256_of,
)

#: Prefix of model names that designate a Hub repository: ``hf://ORG/REPO[@REVISION]``.
HUB_SCHEME = "hf://"
DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_REVISION = "main"


class HubError(RegistryError):
    """The Hub or the cache cannot provide a model's verified files."""


def endpoint() -> str:
    """The Hub's base URL (``HF_ENDPOINT``)."""
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def cache_dir() -> Path:
    """The Hugging Face cache (``HF_HUB_CACHE``, else ``HF_HOME/hub``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "huggingface"
    return Path(home).expanduser() / "hub"


def offline() -> bool:
    """Whether offline mode is on (``HF_HUB_OFFLINE``, as ``sep ... --offline`` sets it)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def go_offline() -> None:
    """Turn offline mode on for this process (and ``huggingface_hub`` if imported later)."""
    os.environ["HF_HUB_OFFLINE"] = "1"


def is_hub_uri(name: str) -> bool:
    """Whether a model name designates a Hub repository (``hf://...``)."""
    return name.startswith(HUB_SCHEME)


def parse_hub_uri(uri: str) -> tuple[str, str]:
    """``hf://ORG/REPO[@REVISION]`` -> (``ORG/REPO``, revision, default ``main``)."""
    repo_id, _, revision = uri[len(HUB_SCHEME):].partition("@")
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts) or (revision == "" and uri.endswith("@")):
        raise HubError(f"'{uri}' is not a Hub model: use hf://ORG/REPO or hf://ORG/REPO@REVISION")
    return checked_repo_id(repo_id), revision or DEFAULT_REVISION


def checked_repo_id(repo_id: str) -> str:
    """``repo_id`` if it is a valid Hub repository id ``ORG/REPO``, else a one-line :class:`HubError`."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if repo_id.count("/") != 1:
        raise HubError(f"'{repo_id}' is not a Hub repository id: use ORG/REPO")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise HubError(f"'{repo_id}' is not a Hub repository id: {error}") from None
    return repo_id


@dataclass(frozen=True)
class RemoteFile:
    """The digest the Hub declares for a file of a commit."""

    lfs_sha256: str | None
    blob_id: str | None

    def matches(self, local: Path) -> bool:
        """Whether ``local`` has this content: LFS sha256, else git blob id."""
        if self.lfs_sha256 is not None:
            return sha256_of(local) == self.lfs_sha256
        content = local.read_bytes()
        return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest() == self.blob_id


def cached_path(repo_id: str, revision: str, filename: str) -> Path | None:
    """The cached copy of a file at ``revision`` (a commit, or a branch as last seen)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir(), revision=revision)
    return Path(found) if isinstance(found, str) else None


def _short(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextlib.contextmanager
def _hub_errors(label: str, repo_id: str, revision: str, filename: str | None = None) -> Iterator[None]:
    """Turn ``huggingface_hub`` and network errors into one-line :class:`HubError`."""
    import httpx2
    from huggingface_hub import errors

    where = endpoint()
    try:
        yield
    except errors.RepositoryNotFoundError as error:
        raise HubError(
            f"{label}: repository '{repo_id}' not found on {where} (if it is private, set HF_TOKEN)"
        ) from error
    except errors.RevisionNotFoundError as error:
        raise HubError(f"{label}: revision '{revision}' not found in repository '{repo_id}'") from error
    except errors.RemoteEntryNotFoundError as error:
        raise HubError(f"{label}: file '{filename}' not found in '{repo_id}' at revision '{revision}'") from error
    except errors.HfHubHTTPError as error:
        status = error.response.status_code
        hint = "; check HF_TOKEN (it needs write access to publish)" if status in (401, 403) else ""
        message = error.server_message or _short(error)
        raise HubError(f"{label}: {where} answered HTTP {status} for '{repo_id}': {message}{hint}") from error
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled, httpx2.ConnectError,
            httpx2.TimeoutException) as error:
        raise HubError(
            f"{label}: cannot reach the Hub at {where} ({_short(error)}); check the network or HF_ENDPOINT"
        ) from error
    except (httpx2.TransportError, OSError) as error:
        what = f"'{filename}'" if filename else "the request"
        raise HubError(
            f"{label}: transfer of {what} from '{repo_id}' failed ({_short(error)}); run the command "
            "again to retry"
        ) from error


def remote_files(repo_id: str, revision: str, label: str) -> tuple[str, dict[str, RemoteFile]]:
    """The commit ``revision`` designates now, and its files with their Hub digests."""
    from huggingface_hub import HfApi

    with _hub_errors(label, repo_id, revision):
        info = HfApi(endpoint=endpoint()).model_info(repo_id, revision=revision, files_metadata=True)
    files = {
        sibling.rfilename: RemoteFile(sibling.lfs.sha256 if sibling.lfs else None, sibling.blob_id)
        for sibling in info.siblings or []
    }
    return str(info.sha), files


def _download(repo_id: str, revision: str, filename: str, label: str) -> Path:
    """The cached copy of a file (``snapshots/<commit>/<filename>``), downloaded if needed."""
    from huggingface_hub import hf_hub_download

    with _hub_errors(label, repo_id, revision, filename):
        return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir(), endpoint=endpoint()))


def _reject(path: Path, message: str) -> HubError:
    """Remove a cached file that failed verification (link and blob) and describe why."""
    blob = path.resolve()
    path.unlink(missing_ok=True)
    blob.unlink(missing_ok=True)
    return HubError(f"{message}; the file was removed from the cache and not used")


def _offline_error(label: str, repo_id: str, revision: str, missing: list[str]) -> HubError:
    return HubError(
        f"{label}: offline mode is on and {', '.join(missing)} of '{repo_id}' at revision '{revision}' "
        f"is not in the cache ({cache_dir()}); run `sep models pull hf://{repo_id}@{revision}` once while online"
    )


def download(repo_id: str, revision: str, sha256s: Mapping[str, str], label: str) -> dict[str, Path]:
    """Verified local copies of the files ``sha256s`` names, at commit ``revision``.

    Cached files are used without any network access; missing ones are downloaded (not
    in offline mode). Each file must match its sha256.
    """
    for filename in sha256s:
        check_loadable(filename, label)
    paths: dict[str, Path] = {}
    missing = []
    for filename in sha256s:
        cached = cached_path(repo_id, revision, filename)
        if cached is None:
            missing.append(filename)
        else:
            paths[filename] = cached
    if missing:
        if offline():
            raise _offline_error(label, repo_id, revision, missing)
        commit, remote = remote_files(repo_id, revision, label)
        for filename in missing:
            if filename not in remote:
                raise HubError(f"{label}: file '{filename}' not found in '{repo_id}' at revision '{revision}'")
            paths[filename] = _download(repo_id, commit, filename, label)
    for filename, path in paths.items():
        actual = sha256_of(path)
        if actual != sha256s[filename]:
            raise _reject(
                path,
                f"{label}: '{filename}' from '{repo_id}' at {revision[:12]} does not match its sha256 "
                f"(expected {sha256s[filename][:12]}…, got {actual[:12]}…)",
            )
    return paths


def snapshot(repo_id: str, revision: str, label: str) -> tuple[str, dict[str, Path]]:
    """The commit ``revision`` designates and verified local copies of its model files.

    Online, the revision is resolved on the Hub and each file is checked against the
    digest the Hub declares. Offline, the copies cached by an earlier online run are used.
    """
    if offline():
        config = cached_path(repo_id, revision, CONFIG_FILE)
        if config is None:
            raise _offline_error(label, repo_id, revision, [CONFIG_FILE])
        folder = config.parent  # snapshots/<commit>/
        names = model_file_names(sorted(path.name for path in folder.iterdir()), label)
        return folder.name, {name: folder / name for name in names}
    commit, remote = remote_files(repo_id, revision, label)
    paths = {}
    for name in model_file_names(sorted(remote), label):
        # Through the revision as given, so the cache records where a branch points (offline use).
        path = _download(repo_id, revision, name, label)
        if path.parent.name != commit:
            raise HubError(f"{label}: '{revision}' of '{repo_id}' moved during the download; run the command again")
        if not remote[name].matches(path):
            raise _reject(path, f"{label}: '{name}' from '{repo_id}' at {commit[:12]} does not match the Hub's hash")
        paths[name] = path
    return commit, paths


@dataclass(frozen=True)
class Publication:
    """What ``sep registry publish`` uploaded: the new commit and the sha256s to pin."""

    repo_id: str
    revision: str
    files: dict[str, str]
    uploaded: tuple[str, ...]


def publish(
    folder: Path, repo_id: str, *, token: str | None = None, private: bool = False, message: str | None = None
) -> Publication:
    """Upload a model folder (config, safetensors weights, card, metrics) as one commit of ``repo_id``.

    The repository is created if needed. Returns the new commit sha and the sha256 of each
    file a registry entry pins (the card is uploaded, not pinned).
    """
    label = f"publishing {folder}"
    if offline():
        raise HubError(f"{label}: offline mode is on")
    files = model_folder_files(folder)
    read_config({CONFIG_FILE: files[0]})
    card_metadata(folder / CARD_FILE)
    uploads = [*files, folder / CARD_FILE]
    if (folder / METRICS_FILE).is_file():
        uploads.append(folder / METRICS_FILE)
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=endpoint(), token=token)
    with _hub_errors(label, repo_id, DEFAULT_REVISION):
        api.create_repo(repo_id, exist_ok=True, private=private)
        commit = api.create_commit(
            repo_id,
            operations=[CommitOperationAdd(path_in_repo=path.name, path_or_fileobj=str(path)) for path in uploads],
            commit_message=message or f"Publish {folder.name} with sepframework",
        )
    return Publication(
        repo_id=repo_id,
        revision=commit.oid,
        files={path.name: sha256_of(path) for path in files},
        uploaded=tuple(path.name for path in uploads),
    )
