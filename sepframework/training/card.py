"""The model card (Hugging Face format: YAML front matter, then Markdown) of a trained model."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sepframework.training.split import song_of


@dataclass(frozen=True)
class CardFacts:
    """Everything the card states about one trained model."""

    name: str
    plugin: str
    description: str
    dataset: str
    license: str
    args: Mapping[str, Any]
    config: Mapping[str, Any]
    train_tracks: Sequence[str]
    valid_tracks: Sequence[str]
    metrics: Mapping[str, Mapping[str, float]]
    epochs_run: int
    best_epoch: int
    seconds: float
    device: str
    command: str
    #: Commands that trained the weights the run started from (``--init``), in order;
    #: ``None`` where the run started from weights whose commands are not known.
    earlier_commands: Sequence[str] | None = ()
    #: Length of the training crops, in seconds.
    crop_seconds: float | None = None
    #: ``"track: reason"`` of the held-out tracks validation could not score.
    left_out: Sequence[str] = ()


def _metrics_table(metrics: Mapping[str, Mapping[str, float]]) -> str:
    rows = ["| source | GNSDR (dB) | GSIR (dB) | GSAR (dB) |", "|---|---|---|---|"]
    for source, values in metrics.items():
        rows.append(f"| {source} | {values['GNSDR']:.2f} | {values['GSIR']:.2f} | {values['GSAR']:.2f} |")
    return "\n".join(rows)


def front_matter(facts: CardFacts) -> str:
    """The card's YAML metadata, with the validation scores as Hub evaluation results."""
    from huggingface_hub import EvalResult, ModelCardData

    results = [
        EvalResult(task_type="audio-source-separation", task_name="Singing voice separation",
                   dataset_type=facts.dataset, dataset_name=f"{facts.dataset} validation", dataset_split="validation",
                   metric_type=metric.lower(), metric_name=f"{source} {metric}", metric_value=round(values[metric], 2))
        for source, values in facts.metrics.items() for metric in ("GNSDR", "GSIR", "GSAR")
    ]
    return ModelCardData(
        license=facts.license, library_name="sepframework", datasets=[facts.dataset], metrics=["sdr", "sir", "sar"],
        tags=["audio", "source-separation", "singing-voice-separation", facts.plugin], model_name=facts.name,
        eval_results=results,
    ).to_yaml()


def reproduce_commands(card: str) -> list[str]:
    """The commands of a card's Reproduce section, in order (none if it has no such section)."""
    _, found, section = card.partition("## Reproduce\n")
    if not found:
        return []
    _, _, block = section.partition("```\n")
    return [line for line in block.partition("```")[0].splitlines() if line.strip()]


def _reproduce(facts: CardFacts) -> str:
    init = facts.config.get("init")
    if not init:
        return f"```\n{facts.command}\n```"
    if facts.earlier_commands is None:
        return (f"The run started from the trained weights of `{init}` (`--init`), whose training commands "
                f"are not known here (its folder has no card):\n\n```\n{facts.command}\n```")
    return (f"The run started from the trained weights of `{init}` (`--init`); these commands trained "
            "them, then this model:\n\n```\n" + "\n".join([*facts.earlier_commands, facts.command]) + "\n```")


def _pitch_shifts(facts: CardFacts) -> str:
    """The card's words for the run's pitch shifts, if it had any."""
    semitones = facts.config.get("pitch_semitones") or 0
    return f", random pitch shifts of ±{semitones} semitones per source (resampling)" if semitones else ""


def _crop_length(facts: CardFacts) -> str:
    return f" of {facts.crop_seconds:g} s" if facts.crop_seconds else ""


def _left_out(facts: CardFacts) -> str:
    """The card's words for held-out tracks that validation could not score, if any."""
    if not facts.left_out:
        return ""
    return (f"\n{len(facts.left_out)} held-out track(s) could not be scored and are in neither count: "
            + "; ".join(facts.left_out) + ".")


def _started_from(facts: CardFacts) -> str:
    init = facts.config.get("init")
    return f", starting from the weights of `{init}`" if init else ""


def render_card(facts: CardFacts) -> str:
    """The README.md text of the model."""
    songs = sorted({song_of(name)[1] for name in facts.valid_tracks})
    return f"""---
{front_matter(facts)}
---

# sepframework `{facts.name}` (plugin `{facts.plugin}`) trained on {facts.dataset}

{facts.description}

Sources: {", ".join(facts.metrics)}. Use it with `sep run --model {facts.name} song.mp3` in a registry that
holds it (`sep registry add {facts.name}`), or by its folder: `sep run --model path/to/{facts.name} song.mp3`.

## Data

{len(facts.train_tracks)} training tracks and {len(facts.valid_tracks)} validation tracks of
`{facts.dataset}`, split by whole song (about {facts.config["valid_fraction"]:.0%} of each singer's
tracks held out). Validation songs: {", ".join(songs)}.{_left_out(facts)}
Augmentation: random crops{_crop_length(facts)}, remixing sources of different tracks (probability
{facts.config["remix_probability"]}), random gains of ±{facts.config["gain_db"]} dB per source{_pitch_shifts(facts)}.

## Configuration

Model arguments (`config.json`):

```json
{json.dumps(dict(facts.args), indent=2)}
```

Training settings (seed {facts.config["seed"]}):

```json
{json.dumps(dict(facts.config), indent=2)}
```

Trained for {facts.epochs_run} epochs on {facts.device} in {facts.seconds / 60:.1f} minutes{_started_from(facts)}; the weights are
those of epoch {facts.best_epoch}, the best on validation (mean GNSDR over sources), stored as float16.

## Validation metrics

BSS Eval v3 (`bss_eval_sources`) on whole validation clips, length-weighted means over clips;
GNSDR = SDR(estimate) - SDR(mixture). Computed with the stored float16 weights.

{_metrics_table(facts.metrics)}

## Reproduce

{_reproduce(facts)}
"""
