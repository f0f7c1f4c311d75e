"""``sep registry``: publish model folders to the Hub and pin them in ``registry/index.json``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from sepframework import hub, plugins
from sepframework.model_files import WEIGHTS_SUFFIX, RegistryError
from sepframework.registry import ModelEntry, entry_from_folder, index, registry_dir, write_entry


def _repo_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    try:
        return value if value is None else hub.checked_repo_id(value)
    except hub.HubError as error:
        raise click.BadParameter(str(error)) from None


def _revision(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not hub.is_commit_sha(value):
        raise click.BadParameter(
            f"'{value}' is not a full 40-hex commit sha (use the one `sep registry publish` printed)"
        )
    return value


def _write_entry(entry: ModelEntry) -> None:
    """Write ``entry`` into the index, and warn about what it will not do as one may expect."""
    hides_plugin = entry.name in plugins.plugin_names() and entry.name not in index()
    path = write_entry(entry)
    pinned = f"pinned at {entry.revision}" if entry.revision else "not published (revision null)"
    click.echo(f"{entry.name}: {len(entry.files)} file(s) recorded in {path}, {entry.repo_id} {pinned}")
    if not any(filename.endswith(WEIGHTS_SUFFIX) for filename in entry.files):
        click.echo(f"warning: {entry.name} has no weights (*.safetensors): only a plugin that needs none can load it",
                   err=True)
    if hides_plugin:
        click.echo(f"warning: '{entry.name}' is also an installed plugin's name: `--model {entry.name}` now "
                   f"loads this registry entry (plugin '{entry.plugin}' with the entry's files), no longer the "
                   "plugin as it is", err=True)


folder_option = click.option(
    "--folder", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Model folder (config.json, *.safetensors, README.md); default: registry/NAME.",
)


@click.group()
def registry() -> None:
    """Publish models to the Hub and maintain the registry index.

    \b
    sep registry publish unet --repo ORG/sep-unet   # upload, print the revision to pin
    sep registry add unet                           # (re)compute unet's index entry
    """


@registry.command()
@click.argument("name")
@click.option("--repo", "repo_id", required=True, callback=_repo_id,
              help="Hub repository, ORG/REPO (created if needed).")
@folder_option
@click.option("--token", default=None, help="Hub token with write access (default: HF_TOKEN or the saved login).")
@click.option("--private", is_flag=True, help="Create the repository as private.")
@click.option("-m", "--message", default=None, help="Commit message.")
@click.option("--write-index", is_flag=True, help="Also pin the new revision in registry/index.json.")
def publish(name: str, repo_id: str, folder: Path | None, token: str | None, private: bool,
            message: str | None, write_index: bool) -> None:
    """Upload model NAME's weights, config and card to the Hub as one commit.

    Prints the new revision and the sha256s to pin in the registry index.
    """
    folder = folder or registry_dir() / name
    entry = entry_from_folder(name, folder, repo_id) if write_index else None  # checked before uploading
    published = hub.publish(folder, repo_id, token=token, private=private, message=message)
    if published.unchanged:
        click.echo(f"{repo_id} already holds these files: nothing published, revision {published.revision}")
    else:
        click.echo(f"published {', '.join(published.uploaded)} to {repo_id} at revision {published.revision}")
    pin = {"repo_id": published.repo_id, "revision": published.revision, "files": published.files}
    click.echo(f"pin in the index entry of '{name}':\n{json.dumps(pin, indent=2)}")
    if entry is not None:
        _write_entry(dataclasses.replace(entry, revision=published.revision))


@registry.command()
@click.argument("name")
@click.option("--repo", "repo_id", default=None, callback=_repo_id,
              help="Hub repository, ORG/REPO (default: the current entry's; needed for a new NAME).")
@click.option("--revision", default=None, callback=_revision,
              help="Commit sha printed by `sep registry publish` (default: kept while the repository and the "
                   "files are unchanged).")
@folder_option
def add(name: str, repo_id: str | None, revision: str | None, folder: Path | None) -> None:
    """Write NAME's entry in registry/index.json from its model folder.

    Reads config.json (plugin, args) and the card's YAML (licence, metrics), and records
    the sha256 of config.json and every *.safetensors file.
    """
    bundled = registry_dir() / name
    entry = entry_from_folder(name, folder or bundled, repo_id, revision)
    if entry.revision is None and folder is not None and folder.resolve() != bundled.resolve():
        raise RegistryError(
            f"the entry would find its files neither in {bundled} nor on the Hub (no revision); copy "
            f"{folder} to {bundled}, or publish it first: sep registry publish {name} --repo ORG/REPO "
            f"--folder {folder} --write-index"
        )
    _write_entry(entry)
