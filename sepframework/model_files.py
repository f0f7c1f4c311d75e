"""The files a sepframework model is made of, and how they are read and checked.

A model is a ``config.json`` naming its plugin and arguments, safetensors weights and a
model card ``README.md`` (Markdown with YAML metadata, as on the Hub), optionally with the
``metrics.json`` of its training run. The registry (:mod:`sepframework.registry`) and the
Hub code (:mod:`sepframework.hub`) share this vocabulary.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sepframework.interfaces import SeparationError

#: The model's plugin and constructor arguments: ``{"plugin": ..., "args": {...}}``.
CONFIG_FILE = "config.json"
#: The model card: Markdown with YAML metadata, as on the Hub.
CARD_FILE = "README.md"
#: Optional scores written by ``sep train``: ``{"validation": {source: {metric: value}}}``.
METRICS_FILE = "metrics.json"
#: The only weight format loaded: safetensors hold tensors, never code.
WEIGHTS_SUFFIX = ".safetensors"
#: The weights file ``sep train`` writes and the bundled plugins load.
WEIGHTS_FILE = "model" + WEIGHTS_SUFFIX
#: Pickle-based formats, which can run code when loaded: always refused.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")


class RegistryError(SeparationError):
    """A registry entry is unknown, malformed, or its files cannot be verified."""


def check_loadable(filename: str, owner: str) -> None:
    """Refuse pickle-based weight files, which could run code when loaded."""
    if filename.lower().endswith(PICKLE_SUFFIXES):
        raise RegistryError(
            f"{owner}: refusing '{filename}': pickle-based weights can run code when loaded; "
            f"sepframework loads weights only from {WEIGHTS_SUFFIX} files"
        )


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_config(files: dict[str, Path]) -> dict[str, Any]:
    """The model's ``config.json``: ``{"plugin": ..., "args": {...}}`` (a JSON object)."""
    if CONFIG_FILE not in files:
        raise RegistryError("the model has no config.json")
    path = files[CONFIG_FILE]
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RegistryError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(config, dict) or not isinstance(config.get("plugin"), str):
        raise RegistryError(f"{path} must be a JSON object naming its \"plugin\"")
    if not isinstance(config.get("args", {}), dict):
        raise RegistryError(f"{path}: \"args\" must be a JSON object")
    return config


def card_metadata(path: Path) -> dict[str, Any]:
    """Licence, description (first paragraph) and metrics of a model card.

    Metrics come from the card's ``model-index`` as ``{dataset name: {metric name: value}}``;
    without one, from ``metrics.json`` beside the card, in the same shape:
    ``{"validation": {"<source> <metric>": value}}`` (rounded to 2 decimals).
    """
    import yaml
    from huggingface_hub import ModelCard

    if not path.is_file():
        raise RegistryError(f"model card {path} is missing")
    try:
        card = ModelCard.load(path)
    except yaml.YAMLError as error:
        raise RegistryError(f"model card {path} has malformed YAML metadata: {error}") from error
    if not card.data.license:
        raise RegistryError(f"model card {path} needs YAML metadata with a license")
    metrics: dict[str, dict[str, float]] = {}
    for result in card.data.eval_results or []:
        dataset = metrics.setdefault(result.dataset_name, {})
        dataset[result.metric_name or result.metric_type] = result.metric_value
    scores = path.with_name(METRICS_FILE)
    if not metrics and scores.is_file():
        metrics = _validation_scores(scores)
    paragraphs = [p.strip() for p in card.text.split("\n\n") if p.strip() and not p.lstrip().startswith("#")]
    return {
        "license": card.data.license,
        "description": " ".join(paragraphs[0].split()) if paragraphs else "",
        "metrics": metrics,
    }


def _validation_scores(path: Path) -> dict[str, dict[str, float]]:
    """The ``validation`` scores of a training run's ``metrics.json``, as
    ``{"validation": {"<source> <metric>": value}}``, values rounded to 2 decimals."""
    try:
        scores = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RegistryError(f"{path} is not valid JSON ({error})") from None
    validation = scores.get("validation", {}) if isinstance(scores, dict) else None
    if not isinstance(validation, dict) or not all(isinstance(value, dict) for value in validation.values()):
        raise RegistryError(f'{path} should hold {{"validation": {{source: {{metric: value}}}}}} as `sep train` writes it')
    flat = {
        f"{source} {metric}": round(value, 2) if isinstance(value, float) else value
        for source, values in validation.items()
        for metric, value in values.items()
    }
    return {"validation": flat} if flat else {}


def model_file_names(names: list[str], owner: str) -> list[str]:
    """The files a model is made of, among ``names``: ``config.json`` and safetensors weights.

    Other files are not part of the model; pickle weights without a safetensors copy are refused.
    """
    if CONFIG_FILE not in names:
        raise RegistryError(f"{owner} has no {CONFIG_FILE}, so it is not a sepframework model")
    weights = sorted(name for name in names if name.endswith(WEIGHTS_SUFFIX))
    if not weights:
        for name in names:
            check_loadable(name, owner)
    return [CONFIG_FILE, *weights]


def model_folder_files(folder: Path) -> list[Path]:
    """The model files of a folder (see :func:`model_file_names`)."""
    if not folder.is_dir():
        raise RegistryError(f"model folder {folder} does not exist")
    names = sorted(path.name for path in folder.iterdir() if path.is_file())
    return [folder / name for name in model_file_names(names, str(folder))]
