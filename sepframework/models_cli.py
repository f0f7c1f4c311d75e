"""``sep models``: what models exist, where their files come from, and whether they work."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import click

from sepframework import plugins, registry
from sepframework.cli_options import offline_option
from sepframework.interfaces import SeparationError
from sepframework.loading import model_names


@dataclass(frozen=True)
class ModelStatus:
    """One model of ``sep models``: a registry entry or a plugin without weights."""

    name: str
    plugin: str
    distribution: str
    sources: tuple[str, ...]
    sample_rate: int | None
    #: ``bundled``, ``cached``, ``hub`` (downloaded on first use), ``missing``, or ``none``
    #: for a plugin that needs no files.
    files: str
    #: ``ok``, ``broken: <error>``, ``missing: ...`` (files neither bundled nor published) or
    #: ``conflict: ...``; a registry model that hides a plugin of its name adds ``; hides the plugin ...``.
    status: str
    repo_id: str | None = None
    revision: str | None = None
    license: str | None = None


def model_status(name: str, entry: registry.ModelEntry | None) -> ModelStatus:
    """The status of one model; its plugin is imported to check that it works."""
    plugin_name = entry.plugin if entry else name
    distribution, status, sources, rate = "-", "ok", (), None
    conflicts = plugins.conflicts()
    if plugin_name in conflicts:
        distribution = " / ".join(conflicts[plugin_name])
        status = "conflict: name claimed by several distributions"
    else:
        try:
            plugin = plugins.get_plugin(plugin_name)
            distribution = plugin.distribution
            cls = plugin.load()
            sources, rate = tuple(getattr(cls, "sources", ())), getattr(cls, "sample_rate", None)
        except plugins.PluginError as error:
            status = f"broken: {error}"
    if entry is None:
        return ModelStatus(name, plugin_name, distribution, sources, rate, "none", status)
    files = registry.availability(entry)
    if status == "ok":
        status = _files_status(entry, files)
    if plugin_name != name and name in plugins.plugin_names():  # the registry entry wins the name
        hidden = " / ".join(conflicts.get(name, [])) or plugins.get_plugin(name).distribution
        status += f"; hides the plugin '{name}' of {hidden}"
    return ModelStatus(
        name, plugin_name, distribution, entry.sources, entry.sample_rate, files, status,
        entry.repo_id, entry.revision, entry.license,
    )


def _files_status(entry: registry.ModelEntry, files: str) -> str:
    """``ok``, or why the entry's files cannot be used: bundled files are hashed (a few
    tens of MB at most), cached and Hub files are checked when they are loaded."""
    if files == "missing":
        return "missing: its files are neither bundled nor published on the Hub"
    if files == "bundled":
        try:
            registry.bundled_files(entry)
        except registry.RegistryError as error:
            return f"broken: {error}"
    return "ok"


def model_statuses() -> list[ModelStatus]:
    """Every registry model and installed plugin, sorted by name."""
    entries = registry.index()
    return [model_status(name, entries.get(name)) for name in model_names()]


def _print_table(rows: list[ModelStatus]) -> None:
    header = ("NAME", "PLUGIN", "DISTRIBUTION", "SOURCES", "RATE", "FILES", "STATUS")
    table = [header] + [
        (r.name, r.plugin, r.distribution, ",".join(r.sources) or "-", str(r.sample_rate or "-"), r.files, r.status)
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])


@click.group(invoke_without_command=True)
@click.pass_context
def models(ctx: click.Context) -> None:
    """List installed models: name, distribution, sources, sample rate, files, status.

    \b
    sep models                   # the table
    sep models list --json       # the same, as JSON
    sep models info NAME         # everything about one model
    sep models pull NAME         # download and verify, for offline use
    """
    if ctx.invoked_subcommand is None:
        _print_table(model_statuses())


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
def list_command(as_json: bool) -> None:
    """List models (as `sep models` does)."""
    rows = model_statuses()
    if as_json:
        click.echo(json.dumps([asdict(row) for row in rows], indent=2))
    else:
        _print_table(rows)


def _entry(name: str) -> registry.ModelEntry | None:
    """The registry entry (or pinned ``hf://`` repo) ``name`` designates; plugins give None."""
    entry = registry.find(name)
    if entry is None and name not in plugins.plugin_names():
        raise registry.RegistryError(f"unknown model '{name}'; available models: {', '.join(model_names())}")
    return entry


@models.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@offline_option
def info(name: str, as_json: bool) -> None:
    """Show everything about model NAME: plugin, files and their sha256, revision, metrics.

    NAME may be hf://ORG/REPO[@REVISION], which is then downloaded and pinned.
    """
    entry = _entry(name)
    status = model_status(name, entry)
    details = {**asdict(status), **(entry.to_json() if entry else {})}
    if as_json:
        click.echo(json.dumps(details, indent=2))
        return
    lines = [
        ("name", status.name),
        ("plugin", f"{status.plugin} ({status.distribution})"),
        ("status", status.status),
        ("sources", ", ".join(status.sources) or "-"),
        ("sample rate", f"{status.sample_rate} Hz" if status.sample_rate else "-"),
    ]
    if entry is not None:
        lines += [
            ("licence", entry.license),
            ("description", entry.description or "-"),
            ("repository", entry.repo_id),
            ("revision", entry.revision or "not published yet (the bundled files are authoritative)"),
            ("files", status.files),
        ]
        lines += [(f"  {filename}", f"sha256 {sha}") for filename, sha in entry.files.items()]
        for group, values in entry.metrics.items():
            scores = values.items() if isinstance(values, dict) else [("", values)]
            lines.append((f"metrics {group}", ", ".join(f"{metric} {value}".strip() for metric, value in scores)))
    else:
        lines.append(("files", "none (the plugin needs no weights)"))
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        click.echo(f"{label.ljust(width)}  {value}")


@models.command()
@click.argument("names", nargs=-1, required=True)
@offline_option
def pull(names: tuple[str, ...]) -> None:
    """Download and verify the files of models NAMES, so they work offline.

    Bundled models are only verified. hf://ORG/REPO[@REVISION] names are resolved to a
    commit; the printed sha256s can pin them in a registry index.
    """
    failed = 0
    for name in names:
        try:
            entry = _entry(name)
            if entry is None:
                click.echo(f"{name}: plugin without weights, nothing to download")
                continue
            files = registry.fetch(entry)
        except SeparationError as error:
            click.echo(f"error: {error}", err=True)
            failed += 1
            continue
        bundled = registry.bundled_folder(entry)
        if all(path.parent == bundled for path in files.values()):
            click.echo(f"{name}: {len(files)} file(s) bundled in {bundled}, verified")
        else:
            click.echo(f"{name}: {len(files)} file(s) of {entry.repo_id}@{entry.revision} verified in the cache")
        for filename, sha in entry.files.items():
            click.echo(f"  {filename}  sha256 {sha}")
    if failed:
        raise SystemExit(1)
