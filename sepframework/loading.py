"""Turning a model name into a ready Separator: registry entry, plugin, weights, device."""

from __future__ import annotations

import difflib
import inspect
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sepframework import model_files, plugins, registry
from sepframework.interfaces import SeparationError, Separator, attribute_problem, plugin_output_to_stderr


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` picks CUDA when available, else the CPU; ``"cpu"``, ``"cuda"`` and
    ``"cuda:N"`` are checked to exist here (a :class:`SeparationError` otherwise)."""
    if device == "cpu" or (device == "auto" and not _may_have_cuda()):
        return "cpu"  # without importing torch (seconds), which a NumPy model never needs
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


def _may_have_cuda() -> bool:
    """Whether torch is loaded already, or this machine shows a GPU driver torch.cuda can
    use: NVIDIA's (Linux, WSL), AMD's ROCm, or their ``nvidia-smi``/``rocm-smi``."""
    drivers = ("/proc/driver/nvidia/version", "/dev/dxg", "/dev/kfd")
    return ("torch" in sys.modules or any(Path(driver).exists() for driver in drivers)
            or any(shutil.which(tool) is not None for tool in ("nvidia-smi", "rocm-smi")))


def model_names() -> list[str]:
    """Every name ``load`` accepts: registry models and installed plugins."""
    return sorted(set(registry.index()) | set(plugins.plugin_names()))


def unknown_model(name: str) -> SeparationError:
    """The error for a name that is no registry model, plugin or model folder, with the
    likeliest meant one."""
    names = model_names()
    if name.lower().startswith(("hf:", "hf/", "hf\\")):
        hint = " (a Hub model is written hf://ORG/REPO[@REVISION])"
    else:
        close = difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
    return SeparationError(
        f"unknown model '{name}'{hint}; available models: {', '.join(names)} (or a model folder such as "
        "one `sep train` wrote)"
    )


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: its plugin, its files (``None`` for a plugin that needs
    none) and the plugin's arguments from ``config.json``."""

    plugin: str
    files: dict[str, Path] | None
    args: dict[str, Any]


def resolve(name: str) -> registry.ModelEntry | str | Path:
    """What the model name ``name`` designates, in the order ``sep run --model`` looks: a
    registry entry (or pinned ``hf://`` repo), else an installed plugin (its name returned
    as is), else a model folder; :func:`unknown_model`'s error for anything else."""
    entry = registry.find(name)
    if entry is not None:
        return entry
    if name in plugins.plugin_names():
        return name
    if Path(name).is_dir():
        return Path(name)
    raise unknown_model(name)


def locate(name: str) -> ModelSource:
    """The source of model ``name`` (see :func:`resolve`); a registry entry's files are
    fetched and verified now."""
    found = resolve(name)
    if isinstance(found, registry.ModelEntry):
        files = registry.fetch(found)
        return ModelSource(found.plugin, files, model_files.read_config(files).get("args", {}))
    if isinstance(found, str):
        return ModelSource(found, None, {})
    files = {path.name: path for path in model_files.model_folder_files(found)}
    config = model_files.read_config(files)
    return ModelSource(config["plugin"], files, config.get("args", {}))


def display_name(name: str | os.PathLike[str] | None) -> str:
    """The name a model goes by in output paths (``{model}``) and reports: the default
    model's name for ``None``, a model folder's own name (``./runs/gru/`` is ``gru``)."""
    name = checked_model_name(name)
    if name not in model_names() and Path(name).is_dir():
        return Path(name).resolve().name
    return name


def load(name: str | os.PathLike[str] | None = None, device: str = "auto") -> Separator:
    """Load the model ``name``: a registry entry, a plugin name or a model folder (its
    ``config.json`` and safetensors weights, e.g. what ``sep train`` wrote); default: the
    bundled default.

    >>> import sepframework as sep
    >>> model = sep.load("unet")           # doctest: +SKIP
    >>> stems = model.separate(audio, 44100)  # doctest: +SKIP
    """
    name = checked_model_name(name)
    device = resolve_device(device)
    source = locate(name)
    plugin_name = source.plugin
    try:
        plugin = plugins.get_plugin(plugin_name)
    except plugins.PluginError as error:
        if plugin_name == name:
            raise
        raise plugins.PluginError(f"model '{name}' needs the plugin '{plugin_name}': {error}") from error
    cls = plugin.load()
    try:
        with plugin_output_to_stderr():
            model = cls.load(source.args, source.files, device)
    except SeparationError:
        raise
    except (Exception, SystemExit) as error:  # a failure in the plugin's own code: name it, in one line
        raise SeparationError(
            f"plugin '{plugin_name}' ({plugin.distribution}) failed to load model '{name}': "
            f"{type(error).__name__}: {error}"
        ) from error
    problem = attribute_problem(model) if isinstance(model, Separator) else _not_a_model(model, cls)
    if problem is not None:
        raise SeparationError(f"plugin '{plugin_name}' ({plugin.distribution}) gave an unusable model '{name}': {problem}")
    return model


def checked_model_name(name: str | os.PathLike[str] | None) -> str:
    """The model name to load: ``name`` (a folder path as a string), or the default
    model's for ``None``; a clear error for anything else."""
    if name is None:
        return registry.default_model_name()
    if isinstance(name, os.PathLike):
        return os.fspath(name)
    if not isinstance(name, str) or not name.strip():
        raise SeparationError(f"a model is a name, a folder path or None (the default model), not {name!r}")
    return name


def _not_a_model(model: object, cls: type[Separator]) -> str:
    """What ``load`` returned instead of a Separator instance."""
    if isinstance(model, type):
        return f"load returned the class {model.__name__}, not an instance (return cls(...))"
    if not isinstance(inspect.getattr_static(cls, "load"), classmethod):
        return f"load returned {type(model).__name__}; it must be a classmethod (@classmethod)"
    return f"load returned {type(model).__name__}"
