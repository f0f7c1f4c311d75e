"""Turning a model name into a ready Separator: registry entry, plugin, weights, device."""

from __future__ import annotations

from pathlib import Path

from sepframework import plugins, registry
from sepframework.interfaces import SeparationError, Separator, attribute_problem


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` picks CUDA when available, else the CPU; others are checked."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SeparationError(f"device '{device}' was requested but no CUDA GPU is available")
    if device != "cpu" and not device.startswith("cuda"):
        raise SeparationError(f"unknown device '{device}' (use auto, cpu or cuda)")
    return device


def model_names() -> list[str]:
    """Every name ``load`` accepts: registry models and installed plugins."""
    return sorted(set(registry.index()) | set(plugins.plugin_names()))


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
    entry = registry.find(name)
    if entry is not None:
        plugin_name, files = entry.plugin, registry.fetch(entry)
        args = registry.read_config(files).get("args", {})
    elif name in plugins.plugin_names():
        plugin_name, files, args = name, None, {}
    elif Path(name).is_dir():
        files = {path.name: path for path in registry.model_folder_files(Path(name))}
        config = registry.read_config(files)
        plugin_name, args = config["plugin"], config.get("args", {})
    else:
        raise SeparationError(
            f"unknown model '{name}'; available models: {', '.join(model_names())} (or a model folder such as "
            "one `sep train` wrote)"
        )
    plugin = plugins.get_plugin(plugin_name)
    try:
        model = plugin.load().load(args, files, device)
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
