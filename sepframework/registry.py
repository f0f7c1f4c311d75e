"""The model registry: which named models exist and where their verified files are.

The index lives in ``registry/index.json`` (one entry per model: plugin, Hub repo id,
pinned revision, files with sha256, sample rate, sources, licence, metrics). A model's
files are bundled in ``registry/<name>/`` when shipped with the project.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from sepframework.interfaces import SeparationError


class RegistryError(SeparationError):
    """A registry entry is unknown, malformed, or its files cannot be verified."""


def registry_dir() -> Path:
    """Folder holding ``index.json`` and the bundled model files (env ``SEP_REGISTRY``)."""
    override = os.environ.get("SEP_REGISTRY")
    return Path(override) if override else Path(__file__).resolve().parents[1] / "registry"


@dataclass(frozen=True)
class ModelEntry:
    """One model of the registry index."""

    name: str
    plugin: str
    repo_id: str
    revision: str
    files: dict[str, str]
    sample_rate: int
    sources: tuple[str, ...]
    license: str = "unknown"
    description: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    default: bool = False

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> ModelEntry:
        try:
            return cls(
                name=name,
                plugin=data["plugin"],
                repo_id=data["repo_id"],
                revision=data["revision"],
                files=dict(data["files"]),
                sample_rate=int(data["sample_rate"]),
                sources=tuple(data["sources"]),
                license=data.get("license", "unknown"),
                description=data.get("description", ""),
                metrics=dict(data.get("metrics", {})),
                default=bool(data.get("default", False)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise RegistryError(f"registry entry '{name}' is malformed: {error!r}") from error


@lru_cache(maxsize=4)
def _load_index(path: Path) -> dict[str, ModelEntry]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {name: ModelEntry.from_json(name, entry) for name, entry in data["models"].items()}


def index() -> dict[str, ModelEntry]:
    """All registry entries by model name."""
    return _load_index(registry_dir() / "index.json")


def find(name: str) -> ModelEntry | None:
    """The entry named ``name``, or ``None``."""
    return index().get(name)


def default_model_name() -> str:
    """The model ``sep run`` uses when none is named."""
    defaults = [entry.name for entry in index().values() if entry.default]
    return defaults[0] if defaults else "repet-sim"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundled_files(entry: ModelEntry) -> dict[str, Path] | None:
    """The entry's files from ``registry/<name>/`` when all are present and verified."""
    folder = registry_dir() / entry.name
    paths = {filename: folder / filename for filename in entry.files}
    if not all(path.is_file() for path in paths.values()):
        return None
    for filename, path in paths.items():
        if sha256_of(path) != entry.files[filename]:
            raise RegistryError(
                f"bundled file {path} does not match its sha256 in the registry index; "
                "reinstall sepframework or run `sep models pull` to fetch a verified copy"
            )
    return paths


def fetch(entry: ModelEntry) -> dict[str, Path]:
    """Local, verified paths of all files of ``entry``."""
    paths = bundled_files(entry)
    if paths is None:
        raise RegistryError(f"the files of model '{entry.name}' are not available locally")
    return paths


def read_config(files: dict[str, Path]) -> dict[str, Any]:
    """The model's ``config.json``: ``{"plugin": ..., "args": {...}}``."""
    try:
        return json.loads(files["config.json"].read_text())
    except KeyError as error:
        raise RegistryError("the model has no config.json") from error
