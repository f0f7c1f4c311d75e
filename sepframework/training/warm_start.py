"""Starting a training run from trained weights (``sep train --init``): fine-tuning.

The weights come from a model folder (``model.safetensors`` and ``config.json``, as
``sep train`` writes them) or a registry model name; their model arguments must be the
run's own, so the network they fill is the one being trained.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from sepframework import registry
from sepframework.interfaces import SeparationError
from sepframework.model_files import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, read_config
from sepframework.training.card import reproduce_commands
from sepframework.training.trainable import Trainable
from sepframework.weights import load_float32_state


def model_files(source: str) -> dict[str, Path]:
    """``{file name: path}`` of the model folder or registry model ``source``; the card
    (``README.md``) is named even where it is missing. A folder without weights does not
    hide a registry model of the same name."""
    folder = Path(source)
    entry = None if (folder / WEIGHTS_FILE).is_file() else registry.find(source)
    if entry is not None:
        files = registry.fetch(entry)
        if WEIGHTS_FILE not in files:
            raise SeparationError(f"--init {source}: the model has no {WEIGHTS_FILE}")
        return {CARD_FILE: registry.bundled_folder(entry) / CARD_FILE, **files}
    if folder.is_dir():
        files = {name: folder / name for name in (WEIGHTS_FILE, CONFIG_FILE)}
        missing = [name for name, path in files.items() if not path.is_file()]
        if missing:
            raise SeparationError(f"--init {source}: the folder has no {' or '.join(missing)}")
        return {**files, CARD_FILE: folder / CARD_FILE}
    raise SeparationError(f"--init {source}: neither a model folder nor a registry model "
                          f"(registry models: {', '.join(sorted(registry.index()))})")


def checked_files(trainable: Trainable, source: str, plugin: str | None = None) -> dict[str, Path]:
    """The files of ``source`` after checking that its model is ``plugin``'s (when given)
    and its model arguments are ``trainable``'s."""
    files = model_files(source)
    config = read_config(files)
    if plugin is not None and config["plugin"] != plugin:
        raise SeparationError(f"--init {source}: a model of the plugin '{config['plugin']}', not '{plugin}'")
    args = config.get("args", {})
    if args != trainable.args:
        differing = [f"{key} (this run: {json.dumps(trainable.args.get(key))}, {source}: {json.dumps(args.get(key))})"
                     for key in sorted(set(args) | set(trainable.args)) if args.get(key) != trainable.args.get(key)]
        raise SeparationError(f"--init {source}: its model arguments differ from this run's in "
                              f"{', '.join(differing)}; give the same --arg values")
    return files


def starting_commands(trainable: Trainable, source: str, plugin: str, resume: bool) -> list[str] | None:
    """The commands that trained the starting weights ``source``, from its card; ``None``
    where they cannot be known (no card, or a resumed run's weights are gone). A fresh run's
    ``source`` is checked first (see :func:`checked_files`): its errors come before any data
    is read."""
    if resume:
        try:
            files = model_files(source)
        except SeparationError:
            return None
    else:
        files = checked_files(trainable, source, plugin)
    card = files[CARD_FILE]
    return reproduce_commands(card.read_text()) if card.is_file() else None


def initialise(model: torch.nn.Module, trainable: Trainable, source: str) -> None:
    """Load the weights of ``source`` (a folder or registry model) into ``model``, in place."""
    files = checked_files(trainable, source)
    state = load_float32_state(files[WEIGHTS_FILE])
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise SeparationError(f"--init {source}: the weights do not fit this model: "
                              f"{str(error).splitlines()[0]}") from None
