"""A whole training run: read the data, fit, export, score the exported files, write the card."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sepframework.datasets import load_tracks
from sepframework.files import output_folder
from sepframework.interfaces import SeparationError
from sepframework.loading import resolve_device
from sepframework.model_files import CARD_FILE, CONFIG_FILE, METRICS_FILE, WEIGHTS_FILE
from sepframework.training.card import CardFacts, render_card
from sepframework.training.checkpoint import CHECKPOINT_NAME, checkpoint_path
from sepframework.training.export import export_model
from sepframework.training.loop import TrainConfig, fit, resumable_checkpoint
from sepframework.training.trainable import Trainable
from sepframework.training.validation import Validator
from sepframework.training.warm_start import initialise, starting_commands

#: The files a run writes into its output folder.
RUN_FILES = (WEIGHTS_FILE, CONFIG_FILE, METRICS_FILE, CARD_FILE, CHECKPOINT_NAME)


def check_output(out: Path, resume: bool, overwrite: bool) -> None:
    """A clear error where ``out`` holds no run to resume, or (without ``overwrite``) an earlier run's files."""
    if resume and overwrite:
        raise SeparationError(f"--resume continues the run in {out} and --overwrite replaces it: pass only one of them")
    if resume:
        checkpoint_path(out)
        return
    earlier = [name for name in RUN_FILES if (out / name).exists()]
    if earlier and not overwrite:
        raise SeparationError(f"{out} already holds a model or training run ({', '.join(earlier)}); pass --resume "
                              "to continue its training, --overwrite to start over, or choose another --out")


@contextmanager
def _out_of_memory(step: str, advice: str) -> Iterator[None]:
    """Running out of (CPU or GPU) memory during ``step`` as one clear error with ``advice``."""
    try:
        yield
    except (MemoryError, RuntimeError) as error:
        if not isinstance(error, MemoryError) and not re.search(r"can't allocate memory|out of memory", str(error)):
            raise
        raise SeparationError(f"out of memory while {step}: {advice}") from None


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A temporary folder in ``out`` whose files replace those of ``out`` if the block succeeds;
    removed in any case, so a failure leaves no partial files."""
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        yield staging
        for path in staging.iterdir():
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def train_and_export(
    plugin: str,
    trainable: Trainable,
    data: Path,
    out: Path,
    config: TrainConfig,
    resume: bool = False,
    overwrite: bool = False,
    command: str = "",
) -> dict[str, Any]:
    """Train ``trainable`` on the dataset at ``data`` and write the model to ``out``.

    ``out`` receives ``model.safetensors``, ``config.json`` (``{"plugin", "args"}``),
    ``metrics.json`` and the model card ``README.md``, besides ``checkpoint.pt``; the card
    names the model after ``out`` (``runs/gru-stream`` is model ``gru-stream``). The
    metrics are those of the exported (float16) files loaded through the plugin's
    Separator. Settings are checked before anything is read or written; an ``out`` that
    holds an earlier run is an error unless ``resume`` continues it or ``overwrite``
    starts over (the earlier files stay until the new run's replace them). The four
    model files are written together at the end, or not at all. Returns the content of
    ``metrics.json``.
    """
    # before the data and the training: a bad --init, model argument or output folder fails
    # at once, and a long run's starting weights may be moved or replaced meanwhile
    check_output(out, resume, overwrite)
    if resume:
        resumable_checkpoint(out, trainable, config)
    device = resolve_device(config.device)
    earlier_commands = starting_commands(trainable, config.init, plugin, resume) if config.init else ()
    crop_seconds = trainable.crop_samples(config.crop_seconds) / trainable.sample_rate
    model = trainable.build_model()
    if config.init and not resume:
        initialise(model, trainable, config.init)  # unreadable or unfitting starting weights
    trainable.separator(model, "cpu")  # model arguments the network or separator refuses
    with output_folder(out):  # an --out that cannot be made fails now, not after the first epoch
        with _out_of_memory("reading the dataset", "train on fewer or shorter tracks"):
            tracks = load_tracks(data, trainable.sample_rate)
        with _out_of_memory("training", "lower --batch-size or --crop-seconds, or use a smaller model (--arg)"):
            result = fit(trainable, tracks, config, out, resume=resume)
    with staged(out) as staging:
        files = export_model(trainable, result.model, plugin, staging)
        separator = trainable.separator_class.load(trainable.args, files, device)
        valid = [track for track in tracks if track.name in set(result.valid_tracks)]
        with _out_of_memory("scoring the exported model", "use shorter validation tracks or --device cpu"):
            scores = Validator(valid, trainable.sources)(separator)
        metrics = {
            "validation": scores,
            "validation_float32": result.history[result.best_epoch - 1]["validation"],
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "training_seconds": result.seconds,
            "valid_tracks": result.valid_tracks,
            "left_out_of_validation": result.left_out,
            "history": [{key: entry[key] for key in ("epoch", "loss", "score", "lr", "seconds")}
                        for entry in result.history],
        }
        (staging / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
        facts = CardFacts(
            name=out.resolve().name, plugin=plugin, description=trainable.description, dataset=data.resolve().name,
            license=config.license, args=trainable.args, config=asdict(config), train_tracks=result.train_tracks,
            valid_tracks=result.valid_tracks, left_out=result.left_out, metrics=scores, epochs_run=len(result.history),
            best_epoch=result.best_epoch, seconds=result.seconds, device=device, command=command,
            earlier_commands=earlier_commands, crop_seconds=crop_seconds,
        )
        (staging / CARD_FILE).write_text(render_card(facts))
    return metrics
