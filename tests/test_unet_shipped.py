"""The shipped ``registry/unet`` model on a real MIR-1K clip it was not trained on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sepframework.model_files import read_config
from sepframework.datasets import load_tracks
from sepframework.evaluation.bss_fast import BssEval
from sepframework.training.split import split_by_song
from sep_unet.model import UNetSeparator

MODEL_DIR = Path(__file__).resolve().parents[1] / "registry" / "unet"
FILES = ("model.safetensors", "config.json")


@pytest.fixture(scope="module")
def shipped() -> UNetSeparator:
    files = {name: MODEL_DIR / name for name in FILES}
    if not all(path.is_file() for path in files.values()):
        pytest.skip("registry/unet is not bundled")
    return UNetSeparator.load(read_config(files)["args"], files, device="cpu")


def test_card_and_config_describe_the_weights(shipped: UNetSeparator) -> None:
    config = json.loads((MODEL_DIR / "config.json").read_text())
    assert config["plugin"] == "unet" and config["args"] == shipped.args
    card = (MODEL_DIR / "README.md").read_text()
    assert card.startswith("---\nlicense:") and "sep train unet" in card
    assert (MODEL_DIR / "model.safetensors").stat().st_size < 60 * 2**20


@pytest.mark.needs_mir1k
def test_validation_clip_vocals_are_clearly_better_than_the_mixture(shipped: UNetSeparator, mir1k: Path) -> None:
    tracks = load_tracks(mir1k / "train", shipped.sample_rate)
    _, valid = split_by_song(tracks, 0.15, seed=0)  # the held-out songs of the shipped run
    track = valid[0]
    stereo = np.concatenate([track.mixture, 0.5 * track.mixture])  # stereo input, one mask
    estimates = shipped.separate(stereo, track.sample_rate)
    references = np.stack([track.sources["vocals"], track.sources["accompaniment"]])
    evaluator = BssEval(references)
    sdr = evaluator.sources(np.stack([estimates["vocals"][:1], estimates["accompaniment"][:1]]))["SDR"]
    mixture_sdr = evaluator.sources(np.stack([track.mixture, track.mixture]))["SDR"]
    assert sdr[0] - mixture_sdr[0] > 5.0, f"vocals NSDR {sdr[0] - mixture_sdr[0]:.2f} dB on {track.name}"
    assert sdr[1] - mixture_sdr[1] > 2.0, f"accompaniment NSDR {sdr[1] - mixture_sdr[1]:.2f} dB on {track.name}"
    np.testing.assert_allclose(estimates["vocals"][1], 0.5 * estimates["vocals"][0], atol=1e-5)
