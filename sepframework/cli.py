"""The ``sep`` command line."""

from __future__ import annotations

import glob
import importlib
import os
import signal
import sys
import warnings
from pathlib import Path

import click

from sepframework import __version__
from sepframework.allocator import keep_freed_memory
from sepframework.cli_options import FiniteFloatRange, offline_option
from sepframework.engine import MIN_SEGMENT_SECONDS
from sepframework.interfaces import SeparationError, SeparationWarning, model_code
from sepframework.interrupts import exit_status, raise_if_interrupted, request_interrupt

#: Subcommands living in their own modules, imported only when invoked.
LAZY_COMMANDS = {
    "models": ("sepframework.models_cli", "models", "List, inspect and download models."),
    "train": ("sepframework.training.cli", "train", "Train a model on a dataset."),
    "eval": ("sepframework.evaluation.cli", "eval_command", "Score a model on a dataset."),
    "bench": ("sepframework.bench", "bench", "Compare models' speed and quality."),
    "stream": ("sepframework.streaming_cli", "stream", "Separate raw PCM from stdin live."),
    "registry": ("sepframework.registry_cli", "registry", "Publish models to a Hub registry."),
}


class LazyGroup(click.Group):
    """A click group whose heavy subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            module, attr, _ = LAZY_COMMANDS[name]
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from :data:`LAZY_COMMANDS`' summaries: ``sep --help`` imports none of them."""
        rows = [(name, self.commands[name].get_short_help_str(60)) for name in self.commands]
        rows += [(name, summary) for name, (_, _, summary) in LAZY_COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sep")
def cli() -> None:
    """Separate songs into vocals and accompaniment.

    \b
    Quick start:
      sep run song.mp3                 # default model, stems in ./separated/song/
      sep run --model unet -o out/ music/   # every audio file under music/
      sep models                       # installed models and their status
    """


def expand_inputs(patterns: tuple[str, ...], outdir: Path | None = None) -> tuple[list[Path], list[str]]:
    """Files named by ``patterns`` (files, folders searched recursively, globs) and errors.

    Folder searches and globs skip files inside ``outdir``, so that separating a folder
    again does not separate the stems written there by an earlier run.
    """
    from sepframework.audio import AUDIO_EXTENSIONS
    from sepframework.datasets import track_name

    excluded = outdir.resolve() if outdir is not None else None

    def in_outdir(path: Path) -> bool:
        return excluded is not None and path.resolve().is_relative_to(excluded)

    def audio_under(folder: Path) -> list[Path]:
        """Audio files below ``folder`` (symbolic links to folders are not followed, as by
        ``rglob``); unreadable folders and broken links go to ``errors``."""
        def unreadable(error: OSError) -> None:
            errors.append(f"{error.filename}: cannot read this folder ({error.strerror})")

        audio = []
        for root, _, names in os.walk(folder, onerror=unreadable):
            for name in names:
                candidate = Path(root, name)
                if candidate.suffix.lower() not in AUDIO_EXTENSIONS:
                    continue
                if candidate.is_file():
                    audio.append(candidate)
                elif candidate.is_symlink() and not candidate.exists():
                    errors.append(f"{candidate}: broken symbolic link")
        return audio

    files: list[Path] = []
    errors: list[str] = []
    for pattern in patterns:
        path = Path(pattern)
        try:
            if not pattern.strip():  # Path("") is the current folder: never search it by accident
                errors.append("an input is an empty path (an unset shell variable?)")
            elif path.is_dir():
                known_errors = len(errors)
                audio = audio_under(path)
                found = sorted(p for p in audio if not in_outdir(p))
                if not found and len(errors) == known_errors:
                    inside = f" outside the output folder {outdir} (it holds {len(audio)})" if audio else ""
                    errors.append(f"{pattern}: folder contains no audio files{inside}")
                files.extend(found)
            elif path.exists():
                files.append(path)
            elif glob.has_magic(pattern):
                matches = [Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file()]
                named_suffix = not glob.has_magic(Path(pattern).suffix) and Path(pattern).suffix  # '*.caf': asked for
                found = sorted(p for p in matches if (named_suffix or p.suffix.lower() in AUDIO_EXTENSIONS)
                               and not in_outdir(p))
                if not found:
                    others = sum(p.suffix.lower() not in AUDIO_EXTENSIONS for p in matches)
                    errors.append(f"{pattern}: no audio file matches" + (f" ({others} other file(s) do)" if others else ""))
                files.extend(found)
            elif path.is_symlink():
                errors.append(f"{pattern}: broken symbolic link")
            else:
                errors.append(f"{pattern}: no such file or folder")
        except OSError as error:  # e.g. a folder on the way that cannot be read
            errors.append(f"{pattern}: {error.strerror or error}")
    unique: dict[Path, Path] = {}
    for file in files:
        if track_name(file) in ("", ".", ".."):
            errors.append(f"{file}: its name leaves no track name for its stems; rename it")
            continue
        unique.setdefault(file.resolve(), file)  # one file named two ways is one input
    return list(unique.values()), list(dict.fromkeys(errors))  # a folder and a path inside it: one error


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-m", "--model", "model_name", default=None, help="Model name (see `sep models`), hf://ORG/REPO[@REV], or a model folder such as runs/gru; default: the bundled default model.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("-o", "--outdir", type=click.Path(file_okay=False, path_type=Path), default=Path("separated"), show_default=True, help="Output folder.")
@click.option("--template", default="{track}/{source}.{ext}", show_default=True, help="Output path inside OUTDIR; fields {track} {source} {ext} {model} {parent} (the input's folder name) "
                   "{file} (the input's file name).")
@click.option("--format", "fmt", type=click.Choice(["wav", "flac", "mp3"]), default="wav", show_default=True, help="Output format.")
@click.option("--subtype", default=None, help="Sample format, e.g. PCM_16, PCM_24, FLOAT (default: FLOAT for wav, PCM_24 for flac).")
@click.option("--stems", default=None, help="Comma-separated sources to write, e.g. vocals (default: all).")
@click.option("--segment", type=FiniteFloatRange(min=MIN_SEGMENT_SECONDS), default=None, help="Seconds of audio separated at once, at least 1 and twice the segment overlap (the "
                   "model's context at both ends plus a 50 ms crossfade: 2.15 for the GRUs): memory vs. speed "
                   "[default: the model's choice].")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--stream", is_flag=True, help="Process block by block as a live stream would (causal models such as gru-stream).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or messages, only errors and warnings.")
@offline_option
def run(
    inputs: tuple[str, ...], model_name: str | None, device: str, outdir: Path, template: str, fmt: str,
    subtype: str | None, stems: str | None, segment: float | None, stream: bool, overwrite: bool, quiet: bool,
) -> None:
    """Separate INPUTS (audio files, folders or glob patterns) into stems.

    Stems go to OUTDIR/<track>/<source>.<format>, e.g. separated/song/vocals.wav.
    Existing files are never replaced without --overwrite, and inputs that would write
    the same files (a/song.wav and b/song.wav) are an error before anything starts.
    Folders are searched without OUTDIR. When some inputs fail, the others are still
    separated and the exit status is 1.

    \b
    Examples:
      sep run song.mp3                                  # separated/song/{vocals,accompaniment}.wav
      sep run -m gru --stems vocals --format flac music/
      sep run -m gru-stream --stream live-set.wav       # block by block, constant memory
      sep run -o out --template '{model}/{track}-{source}.{ext}' '*.mp3'
    """
    import sepframework
    from sepframework.engine import plan_segments
    from sepframework.outputs import OutputSpec, check_batch
    from sepframework.pipeline import separate_file, separate_file_streaming
    from sepframework.streaming import streaming_model

    try:
        spec = OutputSpec(outdir=outdir, template=template, format=fmt, subtype=subtype, overwrite=overwrite)
    except SeparationError as error:  # --subtype or --template: a malformed command line
        raise click.UsageError(str(error)) from None
    files, failures = expand_inputs(inputs, outdir)
    for failure in failures:
        click.echo(f"error: {failure}", err=True)
    if not files:
        raise SystemExit(1)
    model = sepframework.load(model_name, device=device)
    name = sepframework.loading.display_name(model_name)
    wanted = [s.strip() for s in stems.split(",") if s.strip()] if stems is not None else None
    if wanted == []:
        raise SeparationError(f"--stems '{stems}' names no source; this model gives {', '.join(model.sources)}")
    check_batch(files, model, spec, wanted, name)
    if stream:
        with model_code(model, "frame_processor()"):  # a model that cannot stream fails here, once, not per file
            streaming_model(model).frame_processor()
        if segment is not None:
            raise click.UsageError("--segment has no effect with --stream (it processes the input block by block)")
    else:
        plan_segments(model, segment)
    show_progress = not quiet and sys.stderr.isatty()
    failed = len(failures)
    for path in files:
        raise_if_interrupted()
        try:
            if stream:
                written = separate_file_streaming(path, model, spec, stems=wanted, progress=show_progress,
                                                  model_name=name)
            else:
                written = separate_file(path, model, spec, stems=wanted, segment_seconds=segment,
                                        progress=show_progress, model_name=name)
        except SeparationError as error:
            message = str(error)
            click.echo(f"error: {message if message.startswith(f'{path}:') else f'{path}: {message}'}", err=True)
            failed += 1
            continue
        except (Exception, SystemExit) as error:  # a fault of the model's code: the other files still get done
            click.echo(f"error: {path}: model '{name}' failed: {type(error).__name__}: {error}", err=True)
            failed += 1
            continue
        if not quiet:
            click.echo(f"{path} -> " + ", ".join(str(p) for p in written.values()))
    if failed:
        click.echo(f"{failed} input(s) failed", err=True)
        raise SystemExit(1)


def _interrupt_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt so writers clean up their temporary files
    (recorded too, in case it lands in a C callback that drops it)."""

    def handler(signum: int, frame: object) -> None:
        request_interrupt(signum)
        raise KeyboardInterrupt

    def unraisable(report: sys.UnraisableHookArgs) -> None:
        if not isinstance(report.exc_value, KeyboardInterrupt):  # a dropped one is raised again later
            sys.__unraisablehook__(report)

    sys.unraisablehook = unraisable

    signal.signal(signal.SIGTERM, handler)


_python_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001 - warnings' hook
    """User-facing warnings as one ``warning:`` line on stderr; others as Python shows them."""
    if issubclass(category, SeparationWarning):
        from tqdm import tqdm

        tqdm.write(f"warning: {message}", file=sys.stderr)  # above a progress bar, not through it
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


#: What click (8.2 and later) raises for a group called without a command, to show its help.
_HELP_INSTEAD = getattr(click.exceptions, "NoArgsIsHelpError", ())


def main() -> None:
    """Entry point: user errors are one line on stderr, never a traceback."""
    warnings.showwarning = _show_warning
    # huggingface_hub's progress notes ("Trying to resume download...") are not sep's
    # messages; its errors reach the user as sep's one-line errors.
    os.environ.setdefault("HF_HUB_VERBOSITY", "error")
    _interrupt_on_sigterm()
    keep_freed_memory()
    try:
        cli.main(standalone_mode=False, prog_name="sep")
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(exit_status())
    except _HELP_INSTEAD as error:  # `sep` alone: the help, as click shows it
        error.show()
        sys.exit(error.exit_code)
    except click.UsageError as error:  # a bad option or argument: one line and where to read more
        hint = f" (see `{error.ctx.command_path} --help`)" if error.ctx is not None else ""
        click.echo(f"error: {error.format_message()}{hint}", err=True)
        sys.exit(error.exit_code)
    except click.ClickException as error:
        click.echo(f"error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except SeparationError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(exit_status())


if __name__ == "__main__":
    main()
