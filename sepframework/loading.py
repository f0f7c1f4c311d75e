"""Turning a model name into a ready Separator: registry entry, plugin, weights, device."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sepframework import plugins, registry
from sepframework.interfaces import SeparationError, Separator, attribute_problem


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` picks CUDA when available, else the CPU; ``"cpu"``, ``"cuda"`` and
    ``"cuda:N"`` are checked to exist here (a :class:`SeparationError` otherwise)."""
    if device == "cpu":
        return device  # without importing torch
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str) or not re.fullmatch(r"cuda(:\d+)?", device):
        raise SeparationError(f"unknown device '{device}' (use auto, cpu, cuda or cuda:N)")
    if not torch.cuda.is_available():
        raise SeparationError(f"device '{device}' was requested but no CUDA GPU is available")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise SeparationError(f"device '{device}' was requested but this machine has "
                              f"{torch.cuda.device_count()} CUDA GPU(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return device


def model_names() -> list[str]:
    """Every name ``load`` accepts: registry models and installed plugins."""
    return sorted(set(registry.index()) | set(plugins.plugin_names()))


def unknown_model(name: str) -> SeparationError:
    """The error for a name that is no registry model, plugin or model folder."""
    return SeparationError(
        f"unknown model '{name}'; available models: {', '.join(model_names())} (or a model folder such as "
        "one `sep train` wrote)"
    )


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: its plugin, its files (``None`` for a plugin that needs
    none) and the plugin's arguments from ``config.json``."""

    plugin: str
    files: dict[str, Path] | None
    args: dict[str, Any]


def locate(name: str) -> ModelSource:
    """The source of model ``name``: a registry entry (its files fetched and verified now),
    a plugin name or a model folder."""
    entry = registry.find(name)
    if entry is not None:
        files = registry.fetch(entry)
        return ModelSource(entry.plugin, files, registry.read_config(files).get("args", {}))
    if name in plugins.plugin_names():
        return ModelSource(name, None, {})
    if Path(name).is_dir():
        files = {path.name: path for path in registry.model_folder_files(Path(name))}
        config = registry.read_config(files)
        return ModelSource(config["plugin"], files, config.get("args", {}))
    raise unknown_model(name)


def display_name(name: str | None) -> str:
    """The name a model goes by in output paths (``{model}``) and reports: the default
    model's name for ``None``, a model folder's own name (``./runs/gru/`` is ``gru``)."""
    name = name or registry.default_model_name()
    if name not in model_names() and Path(name).is_dir():
        return Path(name).resolve().name
    return name


def load(name: str | None = None, device: str = "auto") -> Separator:
    """Load the model ``name``: a registry entry, a plugin name or a model folder (its
    ``config.json`` and safetensors weights, e.g. what ``sep train`` wrote); default: the
    bundled default.

    >>> import sepframework as sep
    >>> model = sep.load("unet")           # doctest: +SKIP
    >>> stems = model.separate(audio, 44100)  # doctest: +SKIP
    """
    name = name or registry.default_model_name()
    device = resolve_device(device)
    source = locate(name)
    plugin_name = source.plugin
    plugin = plugins.get_plugin(plugin_name)
    try:
        model = plugin.load().load(source.args, source.files, device)
    except SeparationError:
        raise
    except Exception as error:  # a failure in the plugin's own code: name it, in one line
        raise SeparationError(
            f"plugin '{plugin_name}' ({plugin.distribution}) failed to load model '{name}': "
            f"{type(error).__name__}: {error}"
        ) from error
    problem = attribute_problem(model) if isinstance(model, Separator) else f"load returned {type(model).__name__}"
    if problem is not None:
        raise SeparationError(f"plugin '{plugin_name}' ({plugin.distribution}) gave an unusable model '{name}': {problem}")
    return model
