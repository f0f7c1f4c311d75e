"""Discovery of trainable models through the ``sepframework.trainers`` entry-point group."""

from __future__ import annotations

from sepframework.plugins import PluginError, find_entry_point
from sepframework.training.trainable import Trainable

ENTRY_POINT_GROUP = "sepframework.trainers"


def get_trainer(name: str) -> type[Trainable]:
    """The Trainable subclass registered as ``name``; a clear error when unknown, ambiguous or broken."""
    entry_point = find_entry_point(ENTRY_POINT_GROUP, name, "trainer")
    cls = entry_point.import_target("trainer")
    if not (isinstance(cls, type) and issubclass(cls, Trainable)):
        raise PluginError(f"trainer '{name}' ({entry_point.distribution}) does not point to a "
                          f"sepframework.training.Trainable subclass: {entry_point.target}")
    return cls
