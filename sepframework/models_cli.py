"""``sep models``: what models are installed, where they come from, and whether they work."""

from __future__ import annotations

from dataclasses import dataclass

import click

from sepframework import plugins, registry


@dataclass(frozen=True)
class ModelStatus:
    """One row of ``sep models``."""

    name: str
    plugin: str
    distribution: str
    sources: str
    sample_rate: str
    status: str


def model_statuses() -> list[ModelStatus]:
    """Every registry model and plugin, with the plugin imported to check it works."""
    rows = []
    conflicts = plugins.conflicts()
    entries = registry.index()
    names = sorted(set(entries) | set(plugins.plugin_names()))
    for name in names:
        entry = entries.get(name)
        plugin_name = entry.plugin if entry else name
        distribution, status, sources, rate = "-", "ok", "-", "-"
        if plugin_name in conflicts:
            distribution = " / ".join(conflicts[plugin_name])
            status = "conflict: name claimed by several distributions"
        else:
            try:
                plugin = plugins.get_plugin(plugin_name)
                distribution = plugin.distribution
                cls = plugin.load()
                sources = ",".join(getattr(cls, "sources", ()) or ()) or "-"
                rate = str(getattr(cls, "sample_rate", "-"))
            except plugins.PluginError as error:
                status = f"broken: {error}"
        if entry is not None:
            sources, rate = ",".join(entry.sources), str(entry.sample_rate)
        rows.append(ModelStatus(name, plugin_name, distribution, sources, rate, status))
    return rows


@click.group(invoke_without_command=True)
@click.pass_context
def models(ctx: click.Context) -> None:
    """List installed models: name, distribution, sources, sample rate, status."""
    if ctx.invoked_subcommand is not None:
        return
    rows = model_statuses()
    header = ("NAME", "PLUGIN", "DISTRIBUTION", "SOURCES", "RATE", "STATUS")
    table = [header] + [(r.name, r.plugin, r.distribution, r.sources, r.sample_rate, r.status) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
