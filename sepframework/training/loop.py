"""The training loop: epochs of random batches, validation, checkpoints, early stopping."""

from __future__ import annotations

import copy
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from sepframework.cpu_threads import limit_cpu_threads
from sepframework.datasets import Track
from sepframework.interfaces import SeparationError
from sepframework.loading import resolve_device
from sepframework.training.augment import RemixSampler
from sepframework.training.checkpoint import load_checkpoint, rng_states, save_checkpoint, set_rng_states
from sepframework.training.split import song_of, split_by_song
from sepframework.training.trainable import Trainable
from sepframework.training.validation import NonFiniteOutput, Validator, mean_gnsdr
from sepframework.training.warm_start import initialise

log = logging.getLogger("sepframework.training")

#: Settings a resumed run may change: they do not alter the trajectory so far.
RESUMABLE_CHANGES = frozenset({"epochs", "patience", "device", "num_threads", "license"})


@dataclass
class TrainConfig:
    """Everything that decides a training run besides the model arguments and the data."""

    epochs: int = 30
    steps_per_epoch: int = 200
    batch_size: int = 8
    learning_rate: float = 1e-3
    #: Epochs without a better validation score before training stops.
    patience: int = 6
    #: Epochs without a better validation score before the learning rate halves.
    lr_patience: int = 3
    seed: int = 0
    valid_fraction: float = 0.15
    remix_probability: float = 0.5
    gain_db: float = 6.0
    #: Random pitch shift range (± semitones) per source, by resampling; 0: none.
    pitch_semitones: float = 0.0
    #: Seconds per training crop (``None``: the model's default; see ``Trainable.crop_samples``).
    crop_seconds: float | None = None
    #: Training target of masking models: "magnitude", "phase-sensitive" or "waveform".
    target: str = "magnitude"
    #: Model folder or registry model whose weights start the run (``None``: random).
    init: str | None = None
    device: str = "auto"
    #: Intra-op CPU threads (``None``: torch's default).
    num_threads: int | None = None
    #: Licence named in the model card (a Hub licence identifier); no effect on training.
    license: str = "cc-by-nc-4.0"

    @classmethod
    def for_trainable(cls, trainable: Trainable | type[Trainable], **overrides: Any) -> TrainConfig:
        """Library defaults, then the plugin's ``train_defaults``, then non-None ``overrides``."""
        known = {field.name for field in fields(cls)}
        unknown = set(trainable.train_defaults) - known
        if unknown:
            raise ValueError(f"unknown training setting(s) {sorted(unknown)}")
        given = {name: value for name, value in overrides.items() if value is not None}
        return cls(**{**trainable.train_defaults, **given})


@dataclass
class TrainResult:
    """The outcome of :func:`fit`: the best model and how it was reached."""

    model: torch.nn.Module
    train_tracks: list[str]
    valid_tracks: list[str]
    history: list[dict[str, Any]]
    best_epoch: int
    seconds: float
    #: ``"track: reason"`` of the held-out tracks validation could not score (see :class:`Validator`).
    left_out: list[str] = field(default_factory=list)


def _trainer_name(trainer: type[Trainable]) -> str:
    return f"{trainer.__module__}.{trainer.__qualname__}"


def check_same_trainer(state: dict[str, Any], trainer: type[Trainable], out: Path) -> None:
    """A clear error where the checkpoint ``state`` of ``out`` is a run of another trainer."""
    saved = state.get("trainer", _trainer_name(trainer))  # not recorded by older checkpoints
    if saved != _trainer_name(trainer):
        raise SeparationError(f"--resume: {out} holds a run of another model (trained by {saved}); resume it "
                              "with its own `sep train NAME`, or choose another --out")


def resumable_checkpoint(out: Path, trainable: Trainable, config: TrainConfig) -> dict[str, Any]:
    """The checkpoint in ``out`` if its run trained this model with the same arguments and
    ``config`` (but for :data:`RESUMABLE_CHANGES`); else a clear error naming what differs."""
    state = load_checkpoint(out)
    check_same_trainer(state, type(trainable), out)
    args = trainable.args
    saved = {**asdict(TrainConfig()), **state["config"]}  # settings newer than the checkpoint: their defaults
    differences = [f"--arg {key}={json.dumps(state['args'].get(key))} (now {json.dumps(args.get(key))})"
                   for key in sorted(set(state["args"]) | set(args)) if state["args"].get(key) != args.get(key)]
    differences += [f"--{key.replace('_', '-')} {saved[key]} (now {value})"
                    for key, value in asdict(config).items() if key not in RESUMABLE_CHANGES and saved[key] != value]
    if differences:
        raise SeparationError(f"--resume: {out} was trained with {', '.join(differences)}; resume with its settings "
                              "or start over with --overwrite")
    return state


def _check_same_tracks(state: dict[str, Any], tracks: list[Track], out: Path) -> None:
    """A resumed run must see the tracks its checkpoint was trained and validated on."""
    if "tracks" not in state:  # a checkpoint from before tracks were recorded
        return
    before, now = set(state["tracks"]), {track.name for track in tracks}
    if before != now:
        raise SeparationError(
            f"--resume: {out} was trained on other data ({len(before - now)} of its {len(before)} tracks are "
            f"missing from --data, {len(now - before)} are new); resume with its --data, or start over with --overwrite"
        )


def _train_epoch(trainable: Trainable, model: torch.nn.Module, sampler: RemixSampler,
                 optimizer: torch.optim.Optimizer, config: TrainConfig, device: str, epoch: int) -> float:
    """``config.steps_per_epoch`` optimizer steps on fresh batches; their mean loss. A
    progress bar shows the steps on a terminal (an epoch can take many minutes)."""
    model.train()
    total = torch.zeros((), device=device)
    steps = tqdm(range(config.steps_per_epoch), desc=f"epoch {epoch}", unit="step", leave=False,
                 disable=not sys.stderr.isatty())
    for _ in steps:
        mixture, targets = sampler.batch(config.batch_size)
        loss = trainable.loss(model, mixture.to(device), targets.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach()
    return float(total) / config.steps_per_epoch


def _validate(
    trainable: Trainable, model: torch.nn.Module, validator: Validator, device: str
) -> dict[str, dict[str, float]]:
    model.eval()
    with torch.inference_mode():
        return validator(trainable.separator(model, device))


def _split(tracks: list[Track], config: TrainConfig) -> tuple[list[Track], list[Track]]:
    """Training and validation tracks (whole songs held out); a clear error where either is empty."""
    train, valid = split_by_song(tracks, config.valid_fraction, config.seed)
    if not train or not valid:
        songs = len({song_of(track.name) for track in tracks})
        raise SeparationError(
            f"the validation split holds out whole songs (clips named singer_song_NN are one song), and of "
            f"{len(tracks)} track(s) in {songs} song(s) it left {len(train)} for training and {len(valid)} for "
            "validation; use more songs or another --valid-fraction"
        )
    return train, valid


def _restore(state: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau, sampler: RemixSampler) -> None:
    """Put the model, optimizer, scheduler, sampler and random generators back where the
    checkpoint ``state`` left them."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    sampler.set_state(state["sampler"])
    set_rng_states(state["rng"])


def fit(
    trainable: Trainable,
    tracks: list[Track],
    config: TrainConfig,
    out: Path,
    resume: bool = False,
) -> TrainResult:
    """Train ``trainable`` on ``tracks`` (at its sample rate) and return the best model.

    A whole-song validation split is held out; after every epoch the model is scored on
    it (mean GNSDR over sources), a checkpoint is written to ``out`` and training stops
    early after ``config.patience`` epochs without improvement. With ``resume`` the run
    continues from ``out/checkpoint.pt`` exactly where it stopped.
    """
    if trainable.target != config.target:
        raise ValueError(f"the trainable's target {trainable.target!r} differs from the config's {config.target!r}")
    device = resolve_device(config.device)
    if config.num_threads:
        limit_cpu_threads(config.num_threads)
    train, valid = _split(tracks, config)
    log.info("%d training and %d validation tracks; device %s", len(train), len(valid), device)

    torch.manual_seed(config.seed)
    model = trainable.build_model()
    if config.init and not resume:  # a resumed run takes its weights from the checkpoint
        initialise(model, trainable, config.init)
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=0.5, patience=config.lr_patience
    )
    sampler = RemixSampler(train, trainable.sources, trainable.crop_samples(config.crop_seconds), trainable.channels,
                           seed=config.seed, remix_probability=config.remix_probability, gain_db=config.gain_db,
                           pitch_semitones=config.pitch_semitones)
    validator = Validator(valid, trainable.sources)
    for reason in validator.left_out:
        log.warning("validation track %s; it is left out of the validation scores", reason)
    history: list[dict[str, Any]] = []
    best_state: dict[str, torch.Tensor] = copy.deepcopy(model.state_dict())
    best_score, best_epoch, elapsed = -math.inf, 0, 0.0

    if resume:
        state = resumable_checkpoint(out, trainable, config)
        _check_same_tracks(state, tracks, out)
        _restore(state, model, optimizer, scheduler, sampler)
        best_state, history = state["best_model"], state["history"]
        best_score, best_epoch, elapsed = state["best_score"], state["best_epoch"], state["seconds"]
        log.info("resuming after epoch %d", len(history))

    for epoch in range(len(history) + 1, config.epochs + 1):
        if epoch - best_epoch > config.patience and best_epoch:
            log.info("no improvement for %d epochs: stopping", config.patience)
            break
        started = time.perf_counter()
        loss = _train_epoch(trainable, model, sampler, optimizer, config, device, epoch)
        try:
            scores = _validate(trainable, model, validator, device)
        except NonFiniteOutput as error:
            if not best_epoch:
                raise SeparationError(f"epoch {epoch}: {error}, so the training diverged; train again with a "
                                      f"lower --learning-rate (now {config.learning_rate:g})") from None
            log.warning("epoch %d: %s, so the training diverged: stopping with epoch %d's model", epoch, error,
                        best_epoch)
            break
        score = mean_gnsdr(scores)
        scheduler.step(score)
        if score > best_score:
            best_score, best_epoch = score, epoch
            best_state = copy.deepcopy(model.state_dict())
        elapsed += time.perf_counter() - started
        history.append({"epoch": epoch, "loss": loss, "score": score,
                        "validation": scores, "lr": optimizer.param_groups[0]["lr"], "seconds": elapsed})
        log.info("epoch %d: loss %.5f, validation mean GNSDR %.2f dB (best %.2f at epoch %d), %.0f s",
                 epoch, history[-1]["loss"], score, best_score, best_epoch, elapsed)
        save_checkpoint(out, {
            "args": trainable.args, "config": asdict(config), "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "sampler": sampler.state(), "rng": rng_states(), "best_model": best_state,
            "best_score": best_score, "best_epoch": best_epoch, "history": history, "seconds": elapsed,
            "tracks": sorted(track.name for track in tracks), "trainer": _trainer_name(type(trainable)),
        })

    model.load_state_dict(best_state)
    model.eval()
    if not best_epoch:
        raise SeparationError("no epoch has a finite validation score, so there is no model to export")
    return TrainResult(model, [t.name for t in train], [t.name for t in validator.tracks], history, best_epoch, elapsed,
                       validator.left_out)
