"""``sep train NAME``: train a model whose plugin registers a trainer."""

from __future__ import annotations

import json
import logging
import shlex
from dataclasses import asdict
from pathlib import Path

import click

from sepframework.interfaces import SeparationError
from sepframework.training.targets import TARGETS


def _parse_args(pairs: tuple[str, ...]) -> dict:
    args = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SeparationError(f"--arg expects KEY=VALUE, got '{pair}'")
        try:
            args[key] = json.loads(value)
        except json.JSONDecodeError:
            args[key] = value
    return args


def reproduce_command(name: str, data: Path, out: Path, config: dict, args: dict) -> str:
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
@click.option("--epochs", type=int, help="Maximum number of epochs.")
@click.option("--steps-per-epoch", type=int, help="Optimizer steps between validations.")
@click.option("--batch-size", type=int, help="Examples per step.")
@click.option("--learning-rate", type=float, help="Initial Adam learning rate.")
@click.option("--patience", type=int, help="Stop after this many epochs without a better validation score.")
@click.option("--lr-patience", type=int, help="Halve the learning rate after this many epochs without one.")
@click.option("--seed", type=int, help="Seed of the split, the batches and (without --init) the initial weights.")
@click.option("--valid-fraction", type=float, help="Share of each singer's tracks held out (by song).")
@click.option("--remix-probability", type=float, help="Chance that an example mixes sources of different tracks.")
@click.option("--gain-db", type=float, help="Random gain range (±dB) per source.")
@click.option("--crop-seconds", type=float,
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
@click.option("--num-threads", type=int, help="CPU threads for torch.")
@click.option("--arg", "model_args", multiple=True, metavar="KEY=VALUE", help="Model argument (JSON value), repeatable.")
@click.option("--license", "license_", default="cc-by-nc-4.0", show_default=True, help="Licence named in the model card.")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt.")
def train(name, data, out, model_args, license_, resume, **settings) -> None:
    """Train the model NAME (see its plugin) on the dataset at --data.

    \b
    Examples:
      sep train unet --data ../shared/data/mir1k --out runs/unet --seed 0
      sep train gru --data my-stems/ --init gru --arg bidirectional=true --arg hidden_size=192
    """
    from sepframework.training.loop import TrainConfig
    from sepframework.training.plugins import get_trainer
    from sepframework.training.run import train_and_export

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    trainer = get_trainer(name)
    config = TrainConfig.for_trainable(trainer, **settings)
    trainable = trainer(_parse_args(model_args), target=config.target)
    out = out or Path("runs") / name
    command = reproduce_command(name, data, out, asdict(config), trainable.args)
    metrics = train_and_export(name, trainable, data, out, config, resume=resume, command=command, license=license_)
    summary = ", ".join(f"{source} GNSDR {values['GNSDR']:.2f} dB" for source, values in metrics["validation"].items())
    click.echo(f"{out}: {summary} (epoch {metrics['best_epoch']} of {metrics['epochs_run']})")
