"""``sep models``: what models exist, where their files come from, and whether they work."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click

from sepframework import hub, model_files, plugins, registry
from sepframework.cli_options import offline_option
from sepframework.interfaces import SeparationError, class_attribute
from sepframework.loading import model_names, resolve
from sepframework.text_tables import aligned


@dataclass(frozen=True)
class ModelStatus:
    """One model of ``sep models``: a registry entry, a plugin used by its name (without
    files) or a model folder."""

    name: str
    plugin: str
    distribution: str
    sources: tuple[str, ...]
    sample_rate: int | None
    #: Where the files come from: ``bundled``, ``cached``, ``hub`` (downloaded on first use),
    #: ``missing``, ``folder`` (a model folder used in place), or ``none`` for a plugin named
    #: without files.
    availability: str
    #: ``ok``, ``broken: <error>``, ``missing: ...`` (files neither bundled nor published, or
    #: not cached while offline) or ``conflict: ...``; a registry model that hides a plugin of
    #: its name adds ``; hides the plugin ...``.
    status: str
    repo_id: str | None = None
    revision: str | None = None
    license: str | None = None
    #: The sha256 of each file (none for a plugin named without files).
    files: dict[str, str] = field(default_factory=dict)


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
            sources, rate = tuple(class_attribute(cls, "sources", ())), class_attribute(cls, "sample_rate")
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
        entry.repo_id, entry.revision, entry.license, entry.files,
    )


def _files_status(entry: registry.ModelEntry, files: str) -> str:
    """``ok``, or why the entry's files cannot be used: bundled and cached files are hashed
    (a few tens of MB at most); files still on the Hub are checked when downloaded."""
    if files == "missing":
        return "missing: its files are neither bundled nor published on the Hub"
    if files == "hub":
        offline = f"missing: not in the cache (offline); run `sep models pull {entry.name}` once while online"
        return offline if hub.offline() else "ok"
    try:
        registry.check_local_files(entry)
    except model_files.RegistryError as error:
        return f"broken: {error}"
    return "ok"


def model_statuses() -> list[ModelStatus]:
    """Every registry model and installed plugin, sorted by name."""
    entries = registry.index()
    return [model_status(name, entries.get(name)) for name in model_names()]


def _print_table(rows: list[ModelStatus]) -> None:
    header = ("NAME", "PLUGIN", "DISTRIBUTION", "SOURCES", "RATE", "FILES", "STATUS")
    table = [header] + [
        (r.name, r.plugin, r.distribution, ",".join(r.sources) or "-", str(r.sample_rate or "-"), r.availability,
         r.status)
        for r in rows
    ]
    for line in aligned(table):
        click.echo(line)


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


def _lookup(name: str) -> registry.ModelEntry | Path | None:
    """What ``name`` designates (:func:`~sepframework.loading.resolve`), ``None`` for a plugin."""
    found = resolve(name)
    return None if isinstance(found, str) else found


def _echo_aligned(lines: list[tuple[str, str]]) -> None:
    for line in aligned(lines):
        click.echo(line)


def _sha256_lines(files: dict[str, str]) -> list[tuple[str, str]]:
    return [(f"  {filename}", f"sha256 {sha}") for filename, sha in files.items()]


@models.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@offline_option
def info(name: str, as_json: bool) -> None:
    """Show everything about model NAME: plugin, files and their sha256, revision, metrics.

    NAME may be hf://ORG/REPO[@REVISION], which is then downloaded and pinned, or a model
    folder (such as `sep train` writes), described as it is.
    """
    found = _lookup(name)
    entry = registry.folder_entry(found, name) if isinstance(found, Path) else found
    status = model_status(name, entry)
    if as_json:
        click.echo(json.dumps({**asdict(status), **(entry.to_json() if entry else {})}, indent=2))
        return
    lines = [
        ("name", status.name),
        ("plugin", f"{status.plugin} ({status.distribution})"),
        ("status", status.status),
        ("sources", ", ".join(status.sources) or "-"),
        ("sample rate", f"{status.sample_rate} Hz" if status.sample_rate else "-"),
    ]
    if entry is None:
        lines.append(("files", "none registered (the plugin is used without files; a model folder or "
                               "registry entry provides weights)"))
    else:
        if entry.default:
            lines.append(("default", "yes (what `sep run` uses when no model is named)"))
        lines += [("licence", entry.license), ("description", entry.description or "-")]
        if entry.repo_id is None:
            lines.append(("folder", str(Path(name).resolve())))
        else:
            lines += [
                ("repository", entry.repo_id),
                ("revision", entry.revision or "not published yet (the bundled files are authoritative)"),
            ]
        lines += [("files", status.availability), *_sha256_lines(entry.files)]
        for group, values in entry.metrics.items():
            scores = values.items() if isinstance(values, dict) else [("", values)]
            lines.append((f"metrics {group}", ", ".join(f"{metric} {value}".strip() for metric, value in scores)))
    _echo_aligned(lines)


@models.command()
@click.argument("names", nargs=-1, required=True)
@offline_option
def pull(names: tuple[str, ...]) -> None:
    """Download and verify the files of models NAMES, so they work offline.

    Bundled models are only verified; model folders are used in place. hf://ORG/REPO[@REVISION]
    names are resolved to a commit; the printed sha256s can pin them in a registry index.
    """
    failed = 0
    for name in names:
        try:
            entry = _lookup(name)
            if isinstance(entry, Path):
                click.echo(f"{name}: a model folder, used in place: nothing to download")
                continue
            if entry is None:
                click.echo(f"{name}: no registry entry, nothing to download")
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
        _echo_aligned(_sha256_lines(entry.files))
    if failed:
        raise SystemExit(1)
