"""A whole training run: read the data, fit, export, score the exported files, write the card."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sepframework.datasets import load_tracks
from sepframework.loading import resolve_device
from sepframework.training.card import CARD_NAME, CardFacts, render_card
from sepframework.training.export import export_model
from sepframework.training.loop import TrainConfig, fit
from sepframework.training.trainable import Trainable
from sepframework.training.validation import Validator
from sepframework.training.warm_start import starting_commands

METRICS_NAME = "metrics.json"


def train_and_export(
    plugin: str,
    trainable: Trainable,
    data: Path,
    out: Path,
    config: TrainConfig,
    resume: bool = False,
    command: str = "",
    license: str = "cc-by-nc-4.0",
) -> dict[str, Any]:
    """Train ``trainable`` on the dataset at ``data`` and write the model to ``out``.

    ``out`` receives ``model.safetensors``, ``config.json`` (``{"plugin", "args"}``),
    ``metrics.json`` and the model card ``README.md``, besides ``checkpoint.pt``; the card
    names the model after ``out`` (``runs/gru-stream`` is model ``gru-stream``). The
    metrics are those of the exported (float16) files loaded through the plugin's
    Separator. Returns the content of ``metrics.json``.
    """
    # before the data and the training: a bad --init fails at once, and a long run's
    # starting weights may be moved or replaced meanwhile
    earlier_commands = starting_commands(trainable, config.init, plugin, resume) if config.init else ()
    crop_seconds = trainable.crop_samples(config.crop_seconds) / trainable.sample_rate
    tracks = load_tracks(data, trainable.sample_rate)
    result = fit(trainable, tracks, config, out, resume=resume)
    files = export_model(trainable, result.model, plugin, out)
    device = resolve_device(config.device)
    separator = trainable.separator_class.load(trainable.args, files, device)
    valid = [track for track in tracks if track.name in set(result.valid_tracks)]
    scores = Validator(valid, trainable.sources)(separator)
    metrics = {
        "validation": scores,
        "validation_float32": result.history[result.best_epoch - 1]["validation"],
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "training_seconds": result.seconds,
        "valid_tracks": result.valid_tracks,
        "history": [{key: entry[key] for key in ("epoch", "loss", "score", "lr", "seconds")}
                    for entry in result.history],
    }
    (out / METRICS_NAME).write_text(json.dumps(metrics, indent=2) + "\n")
    facts = CardFacts(
        name=out.resolve().name, plugin=plugin, description=trainable.description, dataset=data.resolve().name, license=license,
        args=trainable.args, config=asdict(config), train_tracks=result.train_tracks,
        valid_tracks=result.valid_tracks, metrics=scores, epochs_run=len(result.history),
        best_epoch=result.best_epoch, seconds=result.seconds, device=device, command=command,
        earlier_commands=earlier_commands, crop_seconds=crop_seconds,
    )
    (out / CARD_NAME).write_text(render_card(facts))
    return metrics
