"""The shipped GRU models: complete registry folders that really separate held-out MIR-1K clips."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import sepframework
from sepframework.model_files import WEIGHTS_FILE
from sepframework.datasets import iter_tracks
from sepframework.interfaces import SeparationError
from sepframework.streaming import Streamer
from sepframework.training.validation import Validator
from sep_gru.model import GRUSeparator
from tests.test_gru_model import noise
from tests.test_streaming import TOLERANCE, stream_through

REGISTRY = Path(__file__).resolve().parents[1] / "registry"
#: Validation clips of the shipped models (songs abjones_3, amy_4 and amy_11 were held out).
HELD_OUT = ("abjones_3_01", "amy_4_03")
#: A floor far below the models' validation GNSDR, well above what untrained masks give.
MIN_VOCALS_NSDR_DB = 3.0


def shipped(name: str) -> dict[str, Path]:
    files = {filename: REGISTRY / name / filename for filename in (WEIGHTS_FILE, "config.json", "README.md")}
    if not all(path.is_file() for path in files.values()):
        pytest.skip(f"registry/{name} is not bundled yet")
    return files


@pytest.mark.parametrize(("name", "bidirectional"), [("gru", True), ("gru-stream", False)])
def test_shipped_folder_is_complete(name: str, bidirectional: bool) -> None:
    files = shipped(name)
    config = json.loads(files["config.json"].read_text())
    assert config["plugin"] == "gru" and config["args"]["bidirectional"] is bidirectional
    card = files["README.md"].read_text()
    assert card.startswith("---\n") and "\n---\n" in card[4:]  # YAML front matter
    assert "GNSDR" in card and "sep train gru" in card
    assert files[WEIGHTS_FILE].stat().st_size < 5_000_000


@pytest.mark.parametrize("name", ["gru", "gru-stream"])
def test_shipped_model_separates_held_out_clips(name: str, mir1k: Path) -> None:
    files = shipped(name)
    model = GRUSeparator.load(json.loads(files["config.json"].read_text())["args"], files)
    tracks = [track for track in iter_tracks(mir1k / "train") if track.name in HELD_OUT]
    assert len(tracks) == len(HELD_OUT)
    scores = Validator(tracks, model.sources)(model)
    assert scores["vocals"]["GNSDR"] > MIN_VOCALS_NSDR_DB


def test_the_shipped_stream_model_streams_its_whole_sequence_causal_output() -> None:
    # `sep run` chunks long inputs for speed (see GRUSeparator); the stream equals the
    # causal network run over the whole input as one sequence.
    files = shipped("gru-stream")
    model = GRUSeparator.load(json.loads(files["config.json"].read_text())["args"], files)
    whole_sequence = GRUSeparator(model.config, chunk_frames=None, network=model.network)
    audio = noise(2, 16000 * 6, seed=11)
    offline = whole_sequence.separate_block(audio)
    streamed, _ = stream_through(Streamer(model, channels=2), audio, [1, 700, 1024, 4099])
    for source in model.sources:
        assert np.abs(streamed[source] - offline[source]).max() < TOLERANCE


def test_a_model_folder_loads_like_its_registry_entry(tmp_path: Path) -> None:
    files = shipped("gru-stream")
    folder = tmp_path / "my-run"
    folder.mkdir()
    for name in (WEIGHTS_FILE, "config.json"):
        shutil.copy(files[name], folder / name)
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 16000)).astype(np.float32)

    from_folder = sepframework.load(str(folder), "cpu").separate_block(audio)
    from_registry = sepframework.load("gru-stream", "cpu").separate_block(audio)

    for source in ("vocals", "accompaniment"):
        np.testing.assert_array_equal(from_folder[source], from_registry[source])
    weights = folder / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(SeparationError, match=f"{weights}: not a readable safetensors file"):
        sepframework.load(str(folder), "cpu")
    (folder / "config.json").unlink()
    with pytest.raises(SeparationError, match="has no config.json, so it is not a sepframework model"):
        sepframework.load(str(folder), "cpu")
