"""Model files on the Hugging Face Hub: pinned and verified downloads, offline use, publishing.

Everything goes through ``huggingface_hub`` and its cache. The settings are read from the
environment when used, so they may change at run time: ``HF_ENDPOINT`` (the Hub, default
https://huggingface.co), ``HF_HUB_CACHE`` or ``HF_HOME`` (the cache), ``HF_HUB_OFFLINE``
(use the cache only), ``HF_TOKEN`` (private repos, publishing).

Nothing from the Hub is executed: configs are JSON data and weights are safetensors;
pickle-based files are refused. A file whose content does not match its expected hash is
never used: it is deleted from the cache, unless it is the file the Hub declares for that
commit (then the expected hash, the registry entry's, is wrong, and the error says so).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sepframework.files import write_text_atomically
from sepframework.model_files import (
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

if TYPE_CHECKING:
    import httpx2
    from huggingface_hub import HfApi

#: Prefix of model names that designate a Hub repository: ``hf://ORG/REPO[@REVISION]``.
HUB_SCHEME = "hf://"
DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_REVISION = "main"
#: Seconds to wait for the Hub to connect or to answer a request (``huggingface_hub``'s
#: client would wait for ever on a server that accepts connections and never answers).
CONNECT_TIMEOUT_S = 10
ANSWER_TIMEOUT_S = 60
_COMMIT_SHA = re.compile(r"[0-9a-f]{40}")


class HubError(RegistryError):
    """The Hub or the cache cannot provide a model's verified files."""


def endpoint() -> str:
    """The Hub's base URL (``HF_ENDPOINT``); a value that is not an http(s) URL is a :class:`HubError`."""
    from urllib.parse import urlsplit

    url = os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise HubError(f"HF_ENDPOINT '{url}' is not a Hub URL such as {DEFAULT_ENDPOINT} or http://127.0.0.1:8080")
    return url


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


def is_commit_sha(revision: str) -> bool:
    """Whether ``revision`` is a full 40-hex commit sha (immutable, unlike a branch)."""
    return bool(_COMMIT_SHA.fullmatch(revision))


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

    def matches(self, local: Path, sha256: str | None = None) -> bool:
        """Whether ``local`` has this content: LFS sha256 (``sha256``: ``local``'s, when
        already computed), else git blob id."""
        if self.lfs_sha256 is not None:
            return (sha256 or sha256_of(local)) == self.lfs_sha256
        content = local.read_bytes()
        return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest() == self.blob_id


def _blob_entry(path: Path) -> Path | None:
    """The repository's ``blobs/<digest>`` entry that the snapshot file ``path`` links to;
    ``None`` in a cache without links (``HF_HUB_DISABLE_SYMLINKS``, Windows).

    One link only: the entry may itself link to huggingface_hub's shared Xet store.
    """
    if not path.is_symlink():
        return None
    return Path(os.path.normpath(path.parent / os.readlink(path)))


def cached_path(repo_id: str, revision: str, filename: str) -> Path | None:
    """The cached copy of a file at ``revision`` (a commit, or a branch as last seen)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir(), revision=revision)
    return Path(found) if isinstance(found, str) else None


def _short(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextlib.contextmanager
def _hub_errors(
    label: str, repo_id: str, revision: str, filename: str | None = None, *, downloading: bool = True
) -> Iterator[None]:
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
        hint = ("; check HF_TOKEN (it needs write access to publish)" if status in (401, 403) else
                "; the repository changed meanwhile: run the command again" if status == 412 else "")
        message = error.server_message or _short(error)
        raise HubError(f"{label}: {where} answered HTTP {status} for '{repo_id}': {message}{hint}") from error
    except httpx2.ReadTimeout as error:
        raise HubError(
            f"{label}: the Hub at {where} accepted the connection but did not answer in time ({_short(error)}); "
            "try again later, or check HF_ENDPOINT"
        ) from error
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled, httpx2.ConnectError,
            httpx2.TimeoutException) as error:
        raise HubError(
            f"{label}: cannot reach the Hub at {where} ({_short(error)}); check the network or HF_ENDPOINT"
            + (" (or use --offline for models already in the cache)" if downloading else "")
        ) from error
    except OSError as error:
        if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC):
            raise _retry_error(label, repo_id, filename, error) from error
        raise HubError(f"{label}: cannot use {error.filename or cache_dir()}: {error.strerror}") from error
    except httpx2.TransportError as error:
        raise _retry_error(label, repo_id, filename, error) from error


def _retry_error(label: str, repo_id: str, filename: str | None, error: BaseException) -> HubError:
    """A transfer that broke off and may succeed when tried again."""
    what = f"'{filename}'" if filename else "the request"
    return HubError(f"{label}: transfer of {what} from '{repo_id}' failed ({_short(error)}); run the command again to retry")


def _time_limits() -> httpx2.Timeout:
    """How long a Hub request may wait to connect and for each answer."""
    import httpx2

    return httpx2.Timeout(ANSWER_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)


def _bounded_waits() -> None:
    """Give ``huggingface_hub``'s shared HTTP client time limits (it has none by default)
    for the requests that take no timeout of their own."""
    from huggingface_hub import get_session

    session = get_session()
    if session.timeout.read is None:
        session.timeout = _time_limits()


def remote_files(repo_id: str, revision: str, label: str) -> tuple[str, dict[str, RemoteFile]]:
    """The commit ``revision`` designates now, and its files with their Hub digests."""
    from huggingface_hub import HfApi

    with _hub_errors(label, repo_id, revision):
        info = HfApi(endpoint=endpoint()).model_info(
            repo_id, revision=revision, files_metadata=True, timeout=_time_limits()
        )
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
    """Remove a cached file that failed verification (its snapshot entry and the
    repository's blob entry, never a shared store's file) and describe why."""
    blob = _blob_entry(path)
    try:
        path.unlink(missing_ok=True)
        if blob is not None:
            blob.unlink(missing_ok=True)
    except OSError as error:
        return HubError(f"{message}; it was not used, and could not be removed from the cache ({error.strerror})")
    return HubError(f"{message}; the file was removed from the cache and not used")


def _pull_hint(pull_name: str) -> str:
    return f"run `sep models pull {pull_name}` once while online"


def _offline_error(label: str, repo_id: str, revision: str, missing: str, pull_name: str) -> HubError:
    return HubError(
        f"{label}: offline mode is on and the cache ({cache_dir()}) lacks {missing} of '{repo_id}' at "
        f"revision '{revision}'; {_pull_hint(pull_name)}"
    )


def _mismatch(
    path: Path, filename: str, sha256: str, actual: str, repo_id: str, revision: str, label: str,
    remote: RemoteFile | None,
) -> HubError:
    """The error for a file whose sha256 ``actual`` is not the entry's ``sha256``. When it has
    the content the Hub declares (``remote``), the entry is at fault: the file is kept.
    Otherwise the file is damaged, and removed from the cache (see :func:`_reject`)."""
    if remote is not None and remote.matches(path, actual):
        return HubError(
            f"{label}: the registry entry disagrees with the file the Hub serves at that commit: '{filename}' of "
            f"'{repo_id}' at {revision[:12]} has sha256 {actual[:12]}… as the Hub declares, the entry says "
            f"{sha256[:12]}…; the entry is wrong or the repository was rewritten (the file is kept in the cache)"
        )
    return _reject(
        path,
        f"{label}: '{filename}' from '{repo_id}' at {revision[:12]} does not match its sha256 "
        f"(expected {sha256[:12]}…, got {actual[:12]}…)",
    )


def download(
    repo_id: str, revision: str, sha256s: Mapping[str, str], label: str, pull_name: str | None = None
) -> dict[str, Path]:
    """Verified local copies of the files ``sha256s`` names, at commit ``revision``.

    Cached files are used without any network access; missing ones are downloaded (not
    in offline mode). Each file must match its sha256: online, one that does not is
    compared with the digest the Hub declares for it, to tell a damaged file (removed from
    the cache, and a cached one downloaded again) from a wrong entry (an error; the file is
    kept). ``pull_name`` is the model name the offline errors tell to pull (default
    ``hf://REPO@REVISION``).
    """
    for filename in sha256s:
        check_loadable(filename, label)
    pull_name = pull_name or f"{HUB_SCHEME}{repo_id}@{revision}"
    cached = {filename: cached_path(repo_id, revision, filename) for filename in sha256s}
    paths = {filename: path for filename, path in cached.items() if path is not None}
    missing = [filename for filename in sha256s if filename not in paths]
    if missing and offline():
        raise _offline_error(label, repo_id, revision, ", ".join(missing), pull_name)
    actual = {filename: sha256_of(path) for filename, path in paths.items()}
    damaged = [filename for filename in paths if actual[filename] != sha256s[filename]]
    if damaged and offline():  # nothing to compare it with: removed, to be downloaded again
        name = damaged[0]
        error = _mismatch(paths[name], name, sha256s[name], actual[name], repo_id, revision, label, None)
        raise HubError(f"{error}; {_pull_hint(pull_name)}")
    if missing or damaged:
        commit, remote = remote_files(repo_id, revision, label)
        for filename in sorted([*missing, *damaged]):
            if filename not in remote:
                raise HubError(f"{label}: file '{filename}' not found in '{repo_id}' at revision '{revision}'")
            if filename in damaged:
                error = _mismatch(paths[filename], filename, sha256s[filename], actual[filename], repo_id, revision,
                                  label, remote[filename])
                if paths[filename].exists():  # the entry is wrong, or the damaged file could not be removed
                    raise error
            paths[filename] = _download(repo_id, commit, filename, label)
            actual[filename] = sha256_of(paths[filename])
            if actual[filename] != sha256s[filename]:
                raise _mismatch(paths[filename], filename, sha256s[filename], actual[filename], repo_id, revision,
                                label, remote[filename])
    return paths


def snapshot(repo_id: str, revision: str, label: str) -> tuple[str, dict[str, Path], dict[str, str]]:
    """The commit ``revision`` designates, verified local copies of its model files and their sha256s.

    Online, the revision is resolved on the Hub and each file is checked against the
    digest the Hub declares; the complete snapshot is then recorded as such. Offline, or
    for a commit sha already in the cache, a snapshot recorded by an earlier online run is
    used, its files checked against the digests they are stored under (a damaged one is
    removed and, online, downloaded again).
    """
    if offline() or is_commit_sha(revision):
        try:
            cached = _cached_snapshot(repo_id, revision, label)
        except HubError:
            if offline():
                raise
            cached = None  # the damaged file is gone: download it again
        if cached is not None:
            return cached
        if offline():
            raise _offline_error(label, repo_id, revision, "the model files", f"{HUB_SCHEME}{repo_id}@{revision}")
    commit, remote = remote_files(repo_id, revision, label)
    # The config comes last, through the revision as given, which records in the cache where
    # a branch points: an interrupted update leaves the branch at its last complete snapshot.
    names = [name for name in model_file_names(sorted(remote), label) if name != CONFIG_FILE] + [CONFIG_FILE]
    paths = {}
    for name in names:
        path = _download(repo_id, revision if name == CONFIG_FILE else commit, name, label)
        if path.parent.name != commit:
            raise HubError(f"{label}: '{revision}' of '{repo_id}' moved during the download; run the command again")
        if not remote[name].matches(path):  # a damaged cached copy: removed, then downloaded once more
            mismatch = f"{label}: '{name}' from '{repo_id}' at {commit[:12]} does not match the Hub's hash"
            error = _reject(path, mismatch)
            if path.exists():  # it could not be removed
                raise error
            path = _download(repo_id, commit, name, label)
            if not remote[name].matches(path):
                raise _reject(path, mismatch)
        paths[name] = path
    paths = dict(sorted(paths.items()))
    sha256s = {name: remote[name].lfs_sha256 or sha256_of(path) for name, path in paths.items()}  # LFS: just checked
    _record_complete(_complete_record(paths[CONFIG_FILE]), sha256s)
    if CARD_FILE in remote:  # for its licence and metrics only: a model loads without it
        with contextlib.suppress(HubError):
            _download(repo_id, commit, CARD_FILE, label)
    return commit, paths, sha256s


def _record_complete(record: Path, sha256s: Mapping[str, str]) -> None:
    """Record a snapshot verified against the Hub as complete, with its files' ``sha256s``;
    a cache sepframework may not write to simply keeps no record."""
    with contextlib.suppress(OSError, ValueError):
        if json.loads(record.read_text()) == sha256s:
            return
    with contextlib.suppress(OSError):
        write_text_atomically(record, json.dumps(sha256s, indent=2) + "\n")


def _complete_record(config: Path) -> Path:
    """Where :func:`snapshot` records a complete snapshot (its model files' sha256s), given its cached
    config (``snapshots/<commit>/config.json``): ``sepframework/<commit>.json`` beside
    ``snapshots/``, which huggingface_hub's cache tools leave alone and delete with the repository."""
    return config.parent.parent.parent / "sepframework" / f"{config.parent.name}.json"


def _cached_snapshot(repo_id: str, revision: str, label: str) -> tuple[str, dict[str, Path], dict[str, str]] | None:
    """The commit, verified model files and sha256s of ``revision`` as an earlier online run
    recorded them complete (see :func:`snapshot`); ``None`` when they are not all there."""
    config = cached_path(repo_id, revision, CONFIG_FILE)
    if config is None:
        return None
    record, folder = _complete_record(config), config.parent  # snapshots/<commit>/
    try:
        sha256s = json.loads(record.read_text())
    except (OSError, ValueError):
        return None  # no record: files from an interrupted download, or from another tool
    if not (isinstance(sha256s, dict) and CONFIG_FILE in sha256s
            and all(isinstance(value, str) for value in sha256s.values())):
        return None  # not a record sepframework wrote
    paths = {name: folder / name for name in sorted(model_file_names(sorted(sha256s), label))}
    if not all(path.is_file() for path in paths.values()):
        return None
    for name, path in paths.items():
        if sha256_of(path) != sha256s[name]:
            with contextlib.suppress(OSError):
                record.unlink()  # no longer complete
            error = _reject(path, f"{label}: cached '{name}' of '{repo_id}' at {folder.name[:12]} does not match "
                                  "the sha256 recorded when it was downloaded")
            if offline():
                error = HubError(f"{error}; {_pull_hint(f'{HUB_SCHEME}{repo_id}@{folder.name}')}")
            raise error
    return folder.name, paths, {name: sha256s[name] for name in paths}


@dataclass(frozen=True)
class Publication:
    """What ``sep registry publish`` uploaded: the new commit and the sha256s to pin."""

    repo_id: str
    revision: str
    files: dict[str, str]
    uploaded: tuple[str, ...]
    #: Whether the repository already held these files, so no commit was made.
    unchanged: bool = False


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
    _bounded_waits()
    with _hub_errors(label, repo_id, DEFAULT_REVISION, downloading=False), _progress_bars_on_terminal():
        api.create_repo(repo_id, exist_ok=True, private=private)
        head = _head_commit(api, repo_id)
        commit = api.create_commit(
            repo_id,
            operations=[CommitOperationAdd(path_in_repo=path.name, path_or_fileobj=str(path)) for path in uploads],
            commit_message=message or f"Publish {folder.name} with sepframework",
            parent_commit=head,  # refused if someone else published since: nothing is committed over
        )
    return Publication(
        repo_id=repo_id,
        revision=commit.oid,
        files={path.name: sha256_of(path) for path in files},
        uploaded=tuple(path.name for path in uploads),
        unchanged=commit.oid == head,
    )


@contextlib.contextmanager
def _progress_bars_on_terminal() -> Iterator[None]:
    """Turn ``huggingface_hub``'s progress bars off while stderr is not a terminal (a log
    file, a pipe), then back on if they were."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    if sys.stderr.isatty() or are_progress_bars_disabled():
        yield
        return
    disable_progress_bars()
    try:
        yield
    finally:
        enable_progress_bars()


def _head_commit(api: HfApi, repo_id: str) -> str | None:
    """The commit the default branch of ``repo_id`` points to (``None`` while it has none)."""
    from huggingface_hub import errors

    try:
        return api.repo_info(repo_id, revision=DEFAULT_REVISION, timeout=_time_limits()).sha
    except errors.RevisionNotFoundError:
        return None
