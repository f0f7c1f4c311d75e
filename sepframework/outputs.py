"""Where separated stems go: the output template, each stem's path, and the checks that
no stem replaces an input, another input's stem or an existing file unasked."""

from __future__ import annotations

import os
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sepframework.audio import OutputExistsError, checked_subtype
from sepframework.datasets import track_name
from sepframework.interfaces import SeparationError, Separator

#: Default output layout: ``OUTDIR/<track name>/<source>.<ext>``.
DEFAULT_TEMPLATE = "{track}/{source}.{ext}"
#: The fields an output template may use, as plain ``{name}`` (no ``!r``, ``:spec``,
#: ``.attribute`` or ``[index]``).
TEMPLATE_NAMES = ("track", "source", "ext", "model", "parent", "file")
TEMPLATE_FIELDS = ", ".join(f"{{{name}}}" for name in TEMPLATE_NAMES[:-1]) + f" and {{{TEMPLATE_NAMES[-1]}}}"


@dataclass(frozen=True)
class OutputSpec:
    """Where and how stems are written."""

    outdir: Path = Path("separated")
    template: str = DEFAULT_TEMPLATE
    format: str = "wav"
    subtype: str | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "outdir", Path(self.outdir))  # accept str paths too
        if isinstance(self.format, str):
            object.__setattr__(self, "format", self.format.lower())  # "FLAC" as "flac", as subtypes ignore case
        checked_subtype(self.format, self.subtype)  # an unknown format or subtype fails here, once
        try:
            fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(self.template)
                      if name is not None]
        except ValueError as error:  # e.g. an unmatched brace
            raise SeparationError(f"bad output template '{self.template}': {error}") from None
        if any(name not in TEMPLATE_NAMES or spec or conversion for name, spec, conversion in fields):
            raise SeparationError(f"bad output template '{self.template}': use the fields {TEMPLATE_FIELDS}")
        example = self._filled(track="track", source="source", model="model", parent="parent", file="file.wav")
        problem = self._relative_path_problem(example)
        if problem is not None:
            raise SeparationError(problem)

    def _filled(self, **fields: str) -> str:
        """The template with ``fields`` (every one but ``ext``, the format) filled in."""
        return self.template.format(ext=self.format, **fields)

    def _relative_path_problem(self, relative: str) -> str | None:
        """Why the template's ``relative`` output path is unusable, or ``None``."""
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            return f"output template '{self.template}' leads outside the output folder"
        if not relative.lower().endswith(f".{self.format}"):
            return f"output template '{self.template}' does not name .{self.format} files; end it with .{{ext}}"
        return None

    def paths(self, input_path: Path, sources: Sequence[str], model: str) -> dict[str, Path]:
        """The output path of each source of ``input_path``.

        Template fields: ``{track}`` (the input's name without extension), ``{source}``,
        ``{ext}`` (the format), ``{model}``, ``{parent}`` (the input's folder name) and
        ``{file}`` (the input's name with its extension).
        """
        track = track_name(input_path)
        model = model.replace("://", "-").replace("/", "-").replace(":", "-").replace("@", "-")  # hf://org/repo@rev
        parent = input_path.absolute().parent.name or "root"
        paths = {}
        for source in sources:
            relative = self._filled(track=track, source=source, model=model, parent=parent, file=input_path.name)
            problem = self._relative_path_problem(relative)
            if problem is not None:  # the names filled in make it so (e.g. a track named '..')
                raise SeparationError(f"{input_path}: {problem}")
            paths[source] = self.outdir / relative
        if len(set(paths.values())) != len(paths):
            raise SeparationError(f"output template '{self.template}' gives every source the same file; use {{source}}")
        return paths


def stem_paths(
    input_path: Path, model: Separator, output: OutputSpec, stems: Sequence[str] | None, model_name: str
) -> dict[str, Path]:
    """The path of each requested stem (``None``: all of the model's); unknown stems, or none, are an error."""
    stems = list(model.sources if stems is None else stems)
    if not stems:
        raise SeparationError(f"no stem requested; this model gives {', '.join(model.sources)} (None: all of them)")
    unknown = [name for name in stems if name not in model.sources]
    if unknown:
        raise SeparationError(
            f"unknown stem(s) {', '.join(unknown)}; this model gives {', '.join(model.sources)}"
        )
    return output.paths(input_path, stems, model_name)


def check_batch(
    inputs: Sequence[Path], model: Separator, output: OutputSpec, stems: Sequence[str] | None, model_name: str
) -> None:
    """Check the stems and template for a batch of inputs, before any is separated.

    Raises a ``SeparationError`` when two inputs (e.g. ``a/song.wav`` and ``b/song.wav``)
    would write the same file, instead of the later one replacing the earlier's stems, or
    when an input's stem would replace another input.
    """
    writers: dict[Path, Path] = {}
    read = {input_path.resolve(): input_path for input_path in inputs}
    for input_path in inputs:
        for path in stem_paths(input_path, model, output, stems, model_name).values():
            other_input = read.get(path.resolve())
            if other_input is not None and other_input != input_path:
                raise SeparationError(f"{input_path}'s stem {path} would replace the input {other_input} of this "
                                      "batch; choose another -o or --template")
            earlier = writers.setdefault(path.absolute(), input_path)
            if earlier != input_path:
                remedy = ""
                if earlier.absolute().parent.name != input_path.absolute().parent.name:  # a/song.wav, b/song.wav
                    remedy = "give each its own folder with --template '{parent}/{track}/{source}.{ext}', or "
                elif earlier.name != input_path.name:  # song.mp3, song.wav
                    remedy = "give each its own folder with --template '{file}/{source}.{ext}', or "
                raise SeparationError(
                    f"{earlier} and {input_path} would both write {path}; {remedy}separate them in two runs "
                    "with different -o"
                )


def plan_outputs(
    input_path: Path, model: Separator, output: OutputSpec, stems: Sequence[str] | None, model_name: str
) -> dict[str, Path]:
    """The path of each requested stem, after checking the stems and existing files."""
    paths = stem_paths(input_path, model, output, stems, model_name)
    itself = [str(path) for path in paths.values()
              if path.exists() and input_path.exists() and os.path.samefile(path, input_path)]
    if itself:
        raise SeparationError(f"the output {itself[0]} is the input itself; choose another -o or --template")
    existing = [str(path) for path in paths.values() if path.exists()]
    if existing and not output.overwrite:
        raise OutputExistsError(f"output already exists: {', '.join(existing)} (use --overwrite, or overwrite=True in Python, to replace)")
    return paths
