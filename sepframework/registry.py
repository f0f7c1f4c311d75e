"""The model registry: which named models exist and where their verified files are.

The index lives in ``registry/index.json`` (``$SEP_REGISTRY/index.json`` when set):
``{"models": {name: entry}}`` where an entry names its plugin, Hub repo id, pinned
revision (a 40-hex commit sha, or ``null`` while the model is not published), files with
sha256, sample rate, sources, licence, description and metrics. A model shipped with the project keeps its files (``config.json``, weights,
model card ``README.md``) in ``registry/<name>/``.

:func:`fetch` returns a model's files: the bundled copy when complete, else the Hugging
Face cache, else a download of the pinned revision (see :mod:`sepframework.hub`). Every
file is checked against its sha256 before use. ``hf://ORG/REPO[@REVISION]`` names any Hub
repository in the same layout, without an index entry.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from sepframework import hub
from sepframework.files import write_text_atomically
from sepframework.interfaces import SeparationError, SeparationWarning, class_attribute
from sepframework.model_files import (
    CARD_FILE,
    CONFIG_FILE,
    RegistryError,
    check_loadable,
    card_metadata,
    model_folder_files,
    read_config,
    sha256_of,
)

#: The registry shipped with sepframework.
SHIPPED_REGISTRY = Path(__file__).resolve().parents[1] / "registry"


def registry_dir() -> Path:
    """Folder holding ``index.json`` and the bundled model files: ``SEP_REGISTRY`` if set
    (an existing folder, else a :class:`RegistryError`), else the shipped one."""
    override = os.environ.get("SEP_REGISTRY")
    if not override:
        return SHIPPED_REGISTRY
    if not Path(override).is_dir():
        raise RegistryError(f"SEP_REGISTRY={override} is not a folder: point it to a registry folder "
                            "(holding index.json and the model folders), or unset it for the shipped registry")
    return Path(override)


def index_path() -> Path:
    """The index file, ``registry/index.json``."""
    return registry_dir() / "index.json"


@dataclass(frozen=True)
class ModelEntry:
    """One model of the registry index (or a pinned ``hf://`` repository, or a model folder)."""

    name: str
    plugin: str
    #: The Hub repository; ``None`` for a model folder used in place (:func:`folder_entry`).
    repo_id: str | None
    revision: str | None
    files: dict[str, str]
    sample_rate: int
    sources: tuple[str, ...]
    license: str = "unknown"
    description: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    default: bool = False

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> ModelEntry:
        """The entry ``name`` of an index file; a :class:`RegistryError` naming what is malformed."""
        if not isinstance(data, dict):
            raise RegistryError(f"registry entry '{name}' is malformed: it must be a JSON object")
        try:
            entry = cls(
                name=name,
                plugin=data["plugin"],
                repo_id=data["repo_id"],
                revision=data.get("revision"),
                files=dict(data["files"]),
                sample_rate=int(data["sample_rate"]),
                sources=tuple(data["sources"]),
                license=data.get("license", "unknown"),
                description=data.get("description", ""),
                metrics=dict(data.get("metrics", {})),
                default=bool(data.get("default", False)),
            )
        except KeyError as error:
            raise RegistryError(f"registry entry '{name}' is malformed: missing key {error}") from None
        except (TypeError, ValueError) as error:
            raise RegistryError(f"registry entry '{name}' is malformed: {error}") from None
        if entry.revision is not None and not hub.is_commit_sha(entry.revision):
            raise RegistryError(
                f"registry entry '{name}' pins revision '{entry.revision}': use the full 40-hex commit sha "
                "printed by `sep registry publish` (or null while the model is not published)"
            )
        for filename in entry.files:
            check_loadable(filename, f"registry entry '{name}'")
        return entry

    def to_json(self) -> dict[str, Any]:
        """The entry as stored in ``index.json`` (without its name)."""
        data = asdict(self)
        del data["name"]
        data["sources"] = list(self.sources)
        return data


@lru_cache(maxsize=4)
def _load_index(path: Path) -> dict[str, ModelEntry]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        models = data["models"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise RegistryError(f"{path} is not a valid registry index: {error}") from error
    if not isinstance(models, dict):
        raise RegistryError(f'{path} is not a valid registry index: "models" must be a JSON object')
    try:
        return {name: ModelEntry.from_json(name, entry) for name, entry in models.items()}
    except RegistryError as error:
        raise RegistryError(f"{path}: {error}") from None


def index() -> dict[str, ModelEntry]:
    """All registry entries by model name."""
    return _load_index(index_path())


def find(name: str) -> ModelEntry | None:
    """The entry named ``name``, or ``None``.

    An ``hf://ORG/REPO[@REVISION]`` name is resolved on the Hub (or in the cache when
    offline) to an entry pinned to a commit, downloading and verifying its files.
    """
    if hub.is_hub_uri(name):
        return hub_entry(name)
    return index().get(name)


def default_model_name() -> str:
    """The model ``sep run`` uses when none is named."""
    defaults = [entry.name for entry in index().values() if entry.default]
    return defaults[0] if defaults else "repet-sim"


def bundled_folder(entry: ModelEntry) -> Path:
    """Where the entry's files are when shipped with the project."""
    return registry_dir() / entry.name


def _bundled_copy(name: str, sha256s: Mapping[str, str]) -> tuple[dict[str, Path], list[str]] | None:
    """The files ``sha256s`` names in ``registry/<name>/`` and those whose sha256 differs;
    ``None`` unless all are there."""
    paths = {filename: registry_dir() / name / filename for filename in sha256s}
    if not all(path.is_file() for path in paths.values()):
        return None
    return paths, [filename for filename, path in paths.items() if sha256_of(path) != sha256s[filename]]


def bundled_files(entry: ModelEntry) -> dict[str, Path] | None:
    """The entry's files from ``registry/<name>/`` when all are present and verified."""
    bundled = _bundled_copy(entry.name, entry.files)
    if bundled is None:
        return None
    paths, differing = bundled
    if differing:
        shipped = registry_dir().resolve() == SHIPPED_REGISTRY
        restore = "reinstall sepframework to restore it" if shipped else "restore it"
        raise RegistryError(
            f"model '{entry.name}': bundled file {paths[differing[0]]} does not match its sha256 in the registry "
            f"index, so it is not used; {restore}, or record the files it now holds with "
            f"`sep registry add {entry.name}`"
        )
    return paths


def check_local_files(entry: ModelEntry) -> None:
    """Hash the entry's bundled, else cached, files against the index, as loading would (nothing
    is downloaded or removed); a :class:`RegistryError` names the first one that differs.
    A model folder's files have no recorded sha256 to check."""
    if entry.repo_id is None or bundled_files(entry) is not None or entry.revision is None:
        return
    for filename, sha256 in entry.files.items():
        cached = hub.cached_path(entry.repo_id, entry.revision, filename)
        if cached is not None and sha256_of(cached) != sha256:
            raise RegistryError(
                f"model '{entry.name}': cached file {filename} of {entry.repo_id}@{entry.revision[:12]} does not match "
                f"its sha256 in the registry index; `sep models pull {entry.name}` tells why and downloads it again"
            )


def availability(entry: ModelEntry) -> str:
    """Where the entry's files would come from, without hashing or network: ``folder`` (a
    model folder used in place), ``bundled``, ``cached``, ``hub`` (to download) or ``missing``."""
    if entry.repo_id is None:
        return "folder"
    if all((bundled_folder(entry) / filename).is_file() for filename in entry.files):
        return "bundled"
    if entry.revision is None:
        return "missing"
    if all(hub.cached_path(entry.repo_id, entry.revision, filename) for filename in entry.files):
        return "cached"
    return "hub"


def fetch(entry: ModelEntry) -> dict[str, Path]:
    """Local, verified paths of all files of ``entry``: bundled, cached or downloaded."""
    paths = bundled_files(entry)
    if paths is not None:
        return paths
    if entry.repo_id is None or entry.revision is None:
        raise RegistryError(
            f"model '{entry.name}' is not published on the Hub yet (no pinned revision) and its "
            f"files are missing from {bundled_folder(entry)}"
        )
    return hub.download(entry.repo_id, entry.revision, entry.files, f"model '{entry.name}'", entry.name)


def _described_by_plugin(config: dict[str, Any], files: dict[str, Path], owner: str) -> dict[str, Any]:
    """``sample_rate`` and ``sources`` of the plugin's class, or of the model built from
    ``files`` when they depend on its arguments."""
    from sepframework import plugins

    plugin = config["plugin"]
    try:
        described: Any = plugins.get_plugin(plugin).load()
        if not (hasattr(described, "sample_rate") and hasattr(described, "sources")):
            described = described.load(config.get("args", {}), files, "cpu")
    except SeparationError as error:
        raise RegistryError(f"{owner} needs plugin '{plugin}': {error}") from error
    return {"sample_rate": getattr(described, "sample_rate", None), "sources": getattr(described, "sources", None)}


def _plugin_metadata(config: dict[str, Any], files: dict[str, Path], owner: str) -> tuple[str, int, tuple[str, ...]]:
    """Plugin, sample rate and sources: from ``config.json`` (checked against the plugin's
    class when that is installed and states them), else from the plugin."""
    declared = config if "sample_rate" in config and "sources" in config else _described_by_plugin(config, files, owner)
    try:
        rate, sources = int(declared["sample_rate"]), tuple(declared["sources"])
    except (TypeError, ValueError) as error:
        raise RegistryError(f"{owner}: bad \"sample_rate\" or \"sources\" in config.json: {error}") from error
    if declared is config:
        _check_declared(config["plugin"], rate, sources, owner)
    return config["plugin"], rate, sources


def _check_declared(plugin_name: str, rate: int, sources: tuple[str, ...], owner: str) -> None:
    """Warn where ``config.json`` declares another sample rate or other sources than the
    plugin's class states (nothing to compare with when it is not installed; a warning, as
    a plugin may also set them per model, which only loading the model tells)."""
    from sepframework import plugins

    try:
        cls = plugins.get_plugin(plugin_name).load()
    except plugins.PluginError:
        return
    for name, value in (("sample_rate", rate), ("sources", sources)):
        stated = class_attribute(cls, name)
        if stated is not None and stated != value:
            warnings.warn(SeparationWarning(
                f"{owner}: config.json declares {name} {value!r}, but plugin '{plugin_name}''s class states "
                f"{stated!r}; unless the plugin sets it per model, correct config.json or leave {name} out"),
                stacklevel=2)


def hub_entry(uri: str) -> ModelEntry:
    """An entry for ``hf://ORG/REPO[@REVISION]``, pinned to the commit it resolves to."""
    repo_id, revision = hub.parse_hub_uri(uri)
    commit, paths, sha256s = hub.snapshot(repo_id, revision, f"model '{uri}'")
    config = read_config(paths)
    plugin, sample_rate, sources = _plugin_metadata(config, paths, f"model '{uri}'")
    return ModelEntry(
        name=uri,
        plugin=plugin,
        repo_id=repo_id,
        revision=commit,
        files=sha256s,
        sample_rate=sample_rate,
        sources=sources,
        **_hub_card_metadata(hub.cached_path(repo_id, commit, CARD_FILE)),
    )


def _hub_card_metadata(card: Path | None) -> dict[str, Any]:
    """Licence, description and metrics of a Hub model's card, as far as it has a readable
    one (``snapshot`` fetches it when the repository has one); nothing otherwise."""
    if card is None:
        return {}
    try:
        return card_metadata(card)
    except RegistryError:
        return {}


#: What a registry model may be called: one plain name, as a folder and on the command line.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def folder_entry(folder: Path, name: str | None = None, *, card_required: bool = False) -> ModelEntry:
    """What a model folder holds, as an entry without repository or revision: plugin, sample
    rate and sources (see :func:`_plugin_metadata`), file sha256s and, when it has a card (or
    ``card_required``), its licence, description and metrics. ``name`` defaults to the folder."""
    name = name or str(folder)
    files = model_folder_files(folder)
    config = read_config({CONFIG_FILE: files[0]})
    plugin, sample_rate, sources = _plugin_metadata(config, {path.name: path for path in files}, f"model '{name}'")
    card = folder / CARD_FILE
    return ModelEntry(
        name=name,
        plugin=plugin,
        repo_id=None,
        revision=None,
        files={path.name: sha256_of(path) for path in files},
        sample_rate=sample_rate,
        sources=sources,
        **(card_metadata(card) if card_required or card.is_file() else {}),
    )


def entry_from_folder(
    name: str, folder: Path, repo_id: str | None = None, revision: str | None = None
) -> ModelEntry:
    """The index entry of a model folder: its config, card metadata and file sha256s.

    ``repo_id`` defaults to the current entry's. Without ``revision``, the current pin is
    kept only while the repository and the files are unchanged: a pin must designate
    exactly these files.
    """
    if not MODEL_NAME.fullmatch(name):
        raise RegistryError(f"'{name}' is not a usable model name: use letters, digits, '.', '_' and '-' "
                            "(it names a folder of registry/ and is what users type after --model)")
    entry = folder_entry(folder, name, card_required=True)
    _check_bundled_copy_agrees(name, folder, entry.files)
    previous = index().get(name)
    repo_id = repo_id or (previous.repo_id if previous else None)
    if not repo_id:
        raise RegistryError(f"model '{name}' has no Hub repo id yet: give one with --repo ORG/REPO")
    if revision is None and previous is not None and (previous.repo_id, previous.files) == (repo_id, entry.files):
        revision = previous.revision
    if revision is not None and not hub.is_commit_sha(revision):
        raise RegistryError(f"revision '{revision}' is not a full 40-hex commit sha")
    return replace(entry, repo_id=repo_id, revision=revision, default=previous.default if previous else False)


def _check_bundled_copy_agrees(name: str, folder: Path, sha256s: dict[str, str]) -> None:
    """Refuse an entry for ``folder`` that ``registry/NAME`` holds other files of: loading
    would take the bundled copy and reject it, as it no longer matches the entry."""
    bundled = registry_dir() / name
    copy = _bundled_copy(name, sha256s) if folder.resolve() != bundled.resolve() else None
    differing = copy[1] if copy else []
    if differing:
        raise RegistryError(
            f"{bundled} holds another {', '.join(differing)} than {folder}, and sep would refuse model "
            f"'{name}' as its bundled files would not match the entry; copy the files of {folder} to "
            f"{bundled}, or choose another name"
        )


def write_entry(entry: ModelEntry) -> Path:
    """Add or replace ``entry`` in ``index.json``; returns the index path."""
    path = index_path()
    data = json.loads(path.read_text()) if path.exists() else {"models": {}}
    data["models"][entry.name] = entry.to_json()
    data["models"] = dict(sorted(data["models"].items()))
    try:
        write_text_atomically(path, json.dumps(data, indent=2) + "\n")
    except OSError as error:
        raise RegistryError(f"cannot write {path}: {error.strerror or error}") from None
    _load_index.cache_clear()
    return path
