"""``sep train NAME``: train a model whose plugin registers a trainer."""

from __future__ import annotations

import json
import logging
import re
import shlex
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sepframework.cli_options import FiniteFloatRange
from sepframework.interfaces import SeparationError
from sepframework.training.targets import TARGETS

if TYPE_CHECKING:
    from sepframework.training.trainable import Trainable


POSITIVE = click.IntRange(min=1)
NON_NEGATIVE = click.IntRange(min=0)


def _parse_args(ctx: click.Context, param: click.Parameter, pairs: tuple[str, ...]) -> dict[str, Any]:
    """``--arg KEY=VALUE`` pairs as model arguments: JSON values, or the text itself."""
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expects KEY=VALUE, got '{pair}'")
        if key in args:
            raise click.BadParameter(f"{key} is given twice")
        try:
            args[key] = json.loads(value)
        except json.JSONDecodeError:
            args[key] = value
    return args


def _resumed_settings(out: Path, trainer: type[Trainable], settings: dict[str, Any], args: dict[str, Any]
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Settings and model arguments for ``--resume``: those given, else the run's own."""
    from sepframework.training.checkpoint import load_checkpoint
    from sepframework.training.loop import check_same_trainer

    state = load_checkpoint(out)
    check_same_trainer(state, trainer, out)
    done = len(state["history"])
    if settings["epochs"] is not None and settings["epochs"] < done:
        raise SeparationError(f"--resume: the run in {out} has already trained {done} epochs; give --epochs "
                              f"{done} or more (its card would not reproduce it with fewer)")
    saved = state["config"]
    if "license" not in saved:  # a checkpoint from before the licence was recorded: its card's
        saved = {**saved, "license": _card_license(out)}
    return ({key: saved.get(key) if value is None else value for key, value in settings.items()},
            {**state["args"], **args})


def _card_license(out: Path) -> str | None:
    """The licence of the card in ``out``, if a readable one is there."""
    from sepframework.model_files import CARD_FILE, RegistryError, card_metadata

    try:
        return card_metadata(out / CARD_FILE)["license"]
    except RegistryError:
        return None


def _check_license(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.+-]*", value):
        raise click.BadParameter(f"{value!r} is not a licence identifier such as mit, apache-2.0 or cc-by-nc-4.0")
    return value


def reproduce_command(name: str, data: Path, out: Path, config: dict[str, Any], args: dict[str, Any]) -> str:
    """The ``sep train`` command line that repeats a run with every setting explicit."""
    words = ["sep", "train", name, "--data", str(data), "--out", str(out)]
    for key, value in config.items():
        if value is not None:
            words += [f"--{key.replace('_', '-')}", str(value)]
    for key, value in args.items():
        words += ["--arg", f"{key}={json.dumps(value)}"]
    return shlex.join(words)


@click.command()
@click.argument("name")
@click.option("--data", required=True, type=click.Path(path_type=Path),
              help="Dataset folder: MIR-1K clips or a folder of stems (track/vocals.wav ...).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder for weights, config, metrics and card [default: runs/NAME].")
@click.option("--epochs", type=POSITIVE, help="Maximum number of epochs.")
@click.option("--steps-per-epoch", type=POSITIVE, help="Optimizer steps between validations.")
@click.option("--batch-size", type=POSITIVE, help="Examples per step.")
@click.option("--learning-rate", type=FiniteFloatRange(min=0, min_open=True), help="Initial Adam learning rate.")
@click.option("--patience", type=NON_NEGATIVE, help="Stop after this many epochs without a better validation score.")
@click.option("--lr-patience", type=NON_NEGATIVE, help="Halve the learning rate after this many epochs without one.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1),
              help="Seed of the split, the batches and (without --init) the initial weights.")
@click.option("--valid-fraction", type=FiniteFloatRange(0, 1, min_open=True, max_open=True),
              help="Share of each singer's tracks held out (by song).")
@click.option("--remix-probability", type=FiniteFloatRange(0, 1), help="Chance that an example mixes sources of different tracks.")
@click.option("--gain-db", type=FiniteFloatRange(0, 40), help="Random gain range (±dB) per source.")
@click.option("--pitch-semitones", type=FiniteFloatRange(0, 12),
              help="Random pitch shift range (± semitones) per source, by resampling (tempo and "
                   "formants move along, as for another voice); teaches voices the data lacks [default: 0].")
@click.option("--crop-seconds", type=FiniteFloatRange(0, 600, min_open=True),
              help="Length of the random training crops, for models that take any length (gru); "
                   "longer crops teach longer context, at a proportional cost per step "
                   "[default: the model's, 4 s for gru].")
@click.option("--target", type=click.Choice(TARGETS), default=None,
              help="What masked magnitudes learn: the sources' magnitudes, their phase-sensitive "
                   "part, or (waveform) the source waveforms, by the SDR of the masked mixture's "
                   "inverse STFT [default: the model's].")
@click.option("--init", metavar="MODEL", default=None,
              help="Start from these trained weights instead of random ones (fine-tuning): a model "
                   "folder such as runs/gru, or a registry model such as gru. Same --arg values.")
@click.option("--device", default=None, help="auto, cpu or cuda [default: auto].")
@click.option("--num-threads", type=POSITIVE, help="CPU threads for torch.")
@click.option("--arg", "args", multiple=True, metavar="KEY=VALUE", callback=_parse_args,
              help="Model argument (JSON value), repeatable.")
@click.option("--license", callback=_check_license,
              help="Licence named in the model card (a Hub licence identifier such as mit or apache-2.0) "
                   "[default: cc-by-nc-4.0, or the resumed run's].")
@click.option("--resume", is_flag=True,
              help="Continue the run in OUT from OUT/checkpoint.pt, with its settings; give --epochs to extend it.")
@click.option("--overwrite", is_flag=True, help="Start over in an OUT that holds an earlier run, replacing it.")
def train(
    name: str, data: Path, out: Path | None, args: dict[str, Any], resume: bool, overwrite: bool, **settings: Any,
) -> None:
    """Train the model NAME (see its plugin) on the dataset at --data.

    Settings not given take the plugin's defaults; the run's card and its reproduce
    command record every value used. An unknown --arg KEY lists the model's arguments.

    \b
    Examples:
      sep train unet --data ../shared/data/mir1k --out runs/unet --seed 0
      sep train gru --data my-stems/ --init gru --arg bidirectional=true --arg hidden_size=192
    """
    from sepframework.training.loop import TrainConfig
    from sepframework.training.trainers import get_trainer
    from sepframework.training.run import train_and_export

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    trainer = get_trainer(name)
    out = out or Path("runs") / name
    if resume and not overwrite:
        settings, args = _resumed_settings(out, trainer, settings, args)
    config = TrainConfig.for_trainable(trainer, **settings)
    trainable = trainer(args, target=config.target)
    command = reproduce_command(name, data, out, asdict(config), trainable.args)
    metrics = train_and_export(name, trainable, data, out, config, resume=resume, overwrite=overwrite,
                               command=command)
    summary = ", ".join(f"{source} GNSDR {values['GNSDR']:.2f} dB" for source, values in metrics["validation"].items())
    click.echo(f"{out}: {summary} (epoch {metrics['best_epoch']} of {metrics['epochs_run']})")
