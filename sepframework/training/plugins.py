"""Discovery of trainable models through the ``sepframework.trainers`` entry-point group."""

from __future__ import annotations

import entrypoints

from sepframework.plugins import PluginError
from sepframework.training.trainable import Trainable

ENTRY_POINT_GROUP = "sepframework.trainers"


def trainer_names() -> list[str]:
    """Sorted names of all installed trainers, without importing them."""
    return sorted({entry_point.name for entry_point in entrypoints.get_group_all(ENTRY_POINT_GROUP)})


def get_trainer(name: str) -> type[Trainable]:
    """The Trainable subclass registered as ``name``; a clear error when unknown or broken."""
    try:
        entry_point = entrypoints.get_single(ENTRY_POINT_GROUP, name)
    except entrypoints.NoSuchEntryPoint:
        known = ", ".join(trainer_names()) or "none installed"
        raise PluginError(f"no trainer named '{name}' (trainable models: {known})") from None
    try:
        cls = entry_point.load()
    except Exception as error:  # any import-time failure of third-party code
        raise PluginError(f"trainer '{name}' failed to import: {type(error).__name__}: {error}") from error
    if not (isinstance(cls, type) and issubclass(cls, Trainable)):
        raise PluginError(f"trainer '{name}' does not point to a sepframework.training.Trainable subclass")
    return cls
