"""Discovery of separator plugins through the ``sepframework.models`` entry-point group.

Listing reads only the installed distributions' metadata; a plugin's code is imported
when it is used, and one plugin failing to import never affects the others.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import warnings
from dataclasses import dataclass
from functools import lru_cache

import entrypoints

from sepframework.interfaces import (
    SeparationError,
    SeparationWarning,
    Separator,
    attribute_problem,
    plugin_output_to_stderr,
)

ENTRY_POINT_GROUP = "sepframework.models"


class PluginError(SeparationError):
    """A plugin is unknown, ambiguous or broken."""


@dataclass(frozen=True)
class Plugin:
    """One entry point of the ``sepframework.models`` group (or of another group, see
    :func:`entry_points`)."""

    name: str
    target: str
    distribution: str

    def import_target(self, kind: str = "plugin") -> object:
        """Import the entry point's module and return its target; any failure of that
        third-party code (``sys.exit`` included) is a :class:`PluginError` naming the
        ``kind`` of entry point and its distribution."""
        module, _, attr = self.target.partition(":")
        try:
            with plugin_output_to_stderr():
                return entrypoints.EntryPoint(self.name, module, attr or None).load()
        except (Exception, SystemExit) as error:
            raise PluginError(
                f"{kind} '{self.name}' ({self.distribution}) failed to import: {type(error).__name__}: {error}"
            ) from error

    def load(self) -> type[Separator]:
        """Import the plugin and return its Separator class."""
        cls = self.import_target()
        if not (isinstance(cls, type) and issubclass(cls, Separator)):
            raise PluginError(
                f"plugin '{self.name}' ({self.distribution}) does not point to a "
                f"sepframework.Separator subclass: {self.target}"
            )
        if inspect.isabstract(cls):
            missing = ", ".join(sorted(cls.__abstractmethods__))
            raise PluginError(f"plugin '{self.name}' ({self.distribution}): {self.target} does not implement {missing}")
        problem = attribute_problem(cls, set_only=True)
        if problem is not None:
            raise PluginError(f"plugin '{self.name}' ({self.distribution}): {self.target}.{problem}")
        return cls


def _describe(distro: entrypoints.Distribution | None) -> str:
    """'name version' of a distribution as its metadata spells it (e.g. ``sep-unet 0.1.0``)."""
    if distro is None:
        return "unknown distribution"
    try:
        metadata = importlib.metadata.distribution(distro.name)
        return f"{metadata.metadata['Name']} {metadata.version}"
    except importlib.metadata.PackageNotFoundError:
        return f"{distro.name} {distro.version or ''}".strip()


@lru_cache(maxsize=4)
def entry_points(group: str) -> tuple[Plugin, ...]:
    """Every entry point of ``group``, once per distribution, without importing any."""
    found: dict[tuple[str, str], Plugin] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        listed = entrypoints.get_group_all(group)
    for warning in caught:  # a distribution's malformed entry point: one line, not Python's warning
        if "entry point" not in str(warning.message):
            warnings.warn(warning.message, warning.category, stacklevel=2)  # another's: as it was
            continue
        warnings.warn(SeparationWarning(f"an installed distribution has a malformed {group} entry point, left "
                                        f"out ({warning.message})"), stacklevel=2)
    for entry_point in listed:
        distribution = _describe(entry_point.distro)
        target = f"{entry_point.module_name}:{entry_point.object_name or ''}".rstrip(":")
        # One distribution can be visible twice on sys.path (an editable install run from
        # its source folder shows its egg-info too): keep one copy.
        found.setdefault((entry_point.name, distribution), Plugin(entry_point.name, target, distribution))
    return tuple(found.values())


def refresh() -> None:
    """Forget cached discovery results (after installing a plugin at run time)."""
    entry_points.cache_clear()


def plugin_names() -> list[str]:
    """Sorted names of all installed plugins, without importing any of them."""
    return sorted({plugin.name for plugin in entry_points(ENTRY_POINT_GROUP)})


def conflicts() -> dict[str, list[str]]:
    """Plugin names claimed by more than one distribution, with those distributions."""
    claims: dict[str, list[str]] = {}
    for plugin in entry_points(ENTRY_POINT_GROUP):
        claims.setdefault(plugin.name, []).append(plugin.distribution)
    return {name: dists for name, dists in claims.items() if len(dists) > 1}


def get_plugin(name: str) -> Plugin:
    """The plugin registered as ``name``; a clear error when unknown or ambiguous."""
    return find_entry_point(ENTRY_POINT_GROUP, name, "plugin")


def find_entry_point(group: str, name: str, kind: str) -> Plugin:
    """The entry point ``name`` of ``group``; a clear error, calling it a ``kind``, when it
    is unknown or claimed by several distributions."""
    found = entry_points(group)
    matches = [plugin for plugin in found if plugin.name == name]
    if not matches:
        known = ", ".join(sorted({plugin.name for plugin in found})) or "none installed"
        raise PluginError(f"unknown {kind} '{name}' (installed {kind}s: {known})")
    if len(matches) > 1:
        dists = " and ".join(plugin.distribution for plugin in matches)
        raise PluginError(f"{kind} name '{name}' is claimed by several distributions: {dists}; uninstall all "
                          "but one (pip uninstall NAME)")
    return matches[0]
