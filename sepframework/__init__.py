"""sepframework: separate songs into vocals and accompaniment.

>>> import sepframework as sep
>>> model = sep.load("unet")                       # doctest: +SKIP
>>> stems = model.separate(audio, sample_rate)     # doctest: +SKIP
>>> sep.separate_file("song.mp3", model="unet")    # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from sepframework import registry
from sepframework.interfaces import Evaluator, SeparationError, Separator, Transform
from sepframework.loading import display_name, load, model_names

__version__ = "0.1.0"

__all__ = [
    "Evaluator",
    "SeparationError",
    "Separator",
    "Transform",
    "load",
    "model_names",
    "registry",
    "separate_file",
]


def separate_file(
    path: str | Path,
    model: str | os.PathLike[str] | Separator | None = None,
    outdir: str | Path = "separated",
    *,
    format: str = "wav",
    subtype: str | None = None,
    template: str | None = None,
    stems: str | Sequence[str] | None = None,
    overwrite: bool = False,
    segment_seconds: float | None = None,
    device: str = "auto",
    model_name: str | None = None,
) -> dict[str, Path]:
    """Separate an audio file and write its stems to ``outdir/<track>/<source>.<format>``.

    ``model`` is a model name, a model folder, a loaded :class:`Separator`, or ``None``
    for the default. ``stems`` is one source name or several. ``subtype`` and ``template``
    are those of ``sep run`` (e.g. ``"PCM_16"``, ``"{model}/{track}-{source}.{ext}"``);
    ``{model}`` is the model's name, or ``model_name`` (default for a loaded Separator: its
    class name, so pass the name to keep two models of one class apart). Returns the path
    written for each source.
    """
    from sepframework.outputs import DEFAULT_TEMPLATE, OutputSpec
    from sepframework.pipeline import separate_file as _separate_file

    if model is not None and not isinstance(model, (str, os.PathLike, Separator)):
        raise SeparationError(f"model must be a name, a folder path or a Separator, not {type(model).__name__}")
    stems = [stems] if isinstance(stems, str) else stems
    name = model_name or (type(model).__name__ if isinstance(model, Separator) else display_name(model))
    separator = model if isinstance(model, Separator) else load(model, device=device)
    spec = OutputSpec(outdir=Path(outdir), template=template or DEFAULT_TEMPLATE, format=format, subtype=subtype,
                      overwrite=overwrite)
    return _separate_file(path, separator, spec, stems=stems, segment_seconds=segment_seconds, model_name=name)
