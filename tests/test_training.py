"""The shared training library with a tiny trainable on synthetic tracks."""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from sepframework.model_files import card_metadata
from sepframework.datasets import Track
from sepframework.interfaces import SeparationError, Separator
from sepframework.training import (RemixSampler, TrainConfig, Trainable, export_model, fit, split_by_song,
                                   train_and_export)
from sepframework.training.card import CardFacts, reproduce_commands, render_card
from sepframework.training.checkpoint import load_checkpoint
from sepframework.training.cli import _resumed_settings, reproduce_command
from sepframework import registry
from sepframework.training.trainers import get_trainer
from sepframework.training.warm_start import checked_files, model_files, starting_commands
from sepframework.plugins import PluginError
from sep_unet.training import UNetTrainable

RATE = 8000


class TinySeparator(Separator):
    """Runs a TinyNet on the channel mean; both sources are predicted directly."""

    sample_rate = RATE
    sources = ("vocals", "accompaniment")

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    @classmethod
    def load(cls, args: Mapping[str, Any], weights: Mapping[str, Any] | None, device: str = "cpu") -> TinySeparator:
        net = TinyTrainable(args).build_model()
        net.load_state_dict({k: v.float() for k, v in load_file(str(weights["model.safetensors"])).items()})
        return cls(net.eval())

    def separate_block(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            out = self.net(torch.from_numpy(audio.mean(axis=0, keepdims=True))[None])[0].numpy()
        return {name: np.repeat(out[i : i + 1], audio.shape[0], axis=0) for i, name in enumerate(self.sources)}


class TinyTrainable(Trainable):
    """A 2-output FIR filter bank learning to split a low tone from a high one."""

    separator_class = TinySeparator
    default_args = {"taps": 15}
    train_defaults = {"steps_per_epoch": 20, "batch_size": 4, "learning_rate": 0.01, "epochs": 3}
    description = "A tiny test model."

    @property
    def sample_rate(self) -> int:
        return RATE

    @property
    def segment_samples(self) -> int:
        return 2000

    def build_model(self) -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Conv1d(1, 2, self.args["taps"], padding="same"), torch.nn.Dropout(0.1))

    def loss(self, model: torch.nn.Module, mixture: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (model(mixture) - targets[:, :, 0]).abs().mean()

    def separator(self, model: torch.nn.Module, device: str) -> Separator:
        return TinySeparator(model)


def synthetic_tracks(songs: int = 6, clips: int = 2, singers: tuple[str, ...] = ("ann", "bob")) -> list[Track]:
    """Clips named singer_song_clip: vocals a high tone, accompaniment a low one, random phases."""
    rng = np.random.default_rng(1)
    t = np.arange(RATE) / RATE
    tracks = []
    for singer in singers:
        for song in range(1, songs + 1):
            for clip in range(1, clips + 1):
                vocals = 0.3 * np.sin(2 * np.pi * rng.uniform(1500, 2500) * t + rng.uniform(0, 6))
                accompaniment = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t + rng.uniform(0, 6))
                tracks.append(Track(f"{singer}_{song}_{clip:02d}", RATE, {
                    "vocals": vocals[None].astype(np.float32), "accompaniment": accompaniment[None].astype(np.float32)}))
    return tracks


def test_split_holds_out_whole_songs_per_singer() -> None:
    tracks = synthetic_tracks(songs=10, clips=3)
    train, valid = split_by_song(tracks, 0.2, seed=0)
    song = lambda name: name.rsplit("_", 1)[0]  # noqa: E731
    assert not {song(t.name) for t in train} & {song(t.name) for t in valid}
    for singer in ("ann", "bob"):
        held = [t for t in valid if t.name.startswith(singer)]
        assert len(held) == 6  # two whole songs of three clips: 20 % of 30
    assert [t.name for t in split_by_song(tracks, 0.2, seed=0)[1]] == [t.name for t in valid]
    assert [t.name for t in split_by_song(tracks, 0.2, seed=5)[1]] != [t.name for t in valid]


def test_sampler_batches_are_seeded_sums_of_crops() -> None:
    tracks = synthetic_tracks(songs=2, clips=1)
    sampler = RemixSampler(tracks, ("vocals", "accompaniment"), 1000, channels=2, seed=3)
    mixture, targets = sampler.batch(5)
    assert mixture.shape == (5, 2, 1000) and targets.shape == (5, 2, 2, 1000)
    torch.testing.assert_close(mixture, targets.sum(dim=1))
    state = sampler.state()
    after = sampler.batch(3)
    sampler.set_state(state)
    torch.testing.assert_close(sampler.batch(3)[1], after[1], rtol=0, atol=0)
    torch.testing.assert_close(RemixSampler(tracks, ("vocals", "accompaniment"), 1000, 2, seed=3).batch(5)[1], targets)


def test_sampler_without_remix_keeps_sources_aligned() -> None:
    rng = np.random.default_rng(0)
    vocals, accompaniment = rng.standard_normal((2, 1, RATE)).astype(np.float32)
    track = Track("noise", RATE, {"vocals": vocals, "accompaniment": accompaniment})
    sampler = RemixSampler([track], ("vocals", "accompaniment"), 500, channels=1, seed=0,
                           remix_probability=0.0, gain_db=0.0)
    _, targets = sampler.batch(4)
    for example in targets.numpy():
        start = int(np.flatnonzero(vocals[0] == example[0, 0, 0])[0])
        np.testing.assert_array_equal(example[0, 0], vocals[0, start : start + 500])
        np.testing.assert_array_equal(example[1, 0], accompaniment[0, start : start + 500])


def _dominant_frequency(signal: np.ndarray) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(signal))) * RATE / len(signal))


def test_pitch_shifts_move_each_crop_within_the_range_and_keep_unremixed_sources_in_tune() -> None:
    seconds = np.arange(4 * RATE) / RATE
    tones = {name: (0.5 * np.sin(2 * np.pi * hz * seconds)).astype(np.float32)[None]
             for name, hz in (("vocals", 400.0), ("accompaniment", 200.0))}
    sampler = RemixSampler([Track("tones", RATE, tones)], ("vocals", "accompaniment"), RATE, channels=1, seed=0,
                           remix_probability=0.0, gain_db=0.0, pitch_semitones=3)
    vocals = []
    for example in sampler.batch(40)[1].numpy():
        assert example.shape == (2, 1, RATE) and np.all(np.abs(example[:, 0, -2]) > 0)  # at most one padded sample
        vocal, accompaniment = _dominant_frequency(example[0, 0]), _dominant_frequency(example[1, 0])
        assert 400 * 2 ** (-3 / 12) - 1 <= vocal <= 400 * 2 ** (3 / 12) + 1
        assert abs(vocal - 2 * accompaniment) <= 1  # one shift for both sources: still an octave apart
        vocals.append(vocal)
    assert max(vocals) - min(vocals) > 40  # shifted differently from example to example


def test_sampler_without_pitch_shifts_draws_what_it_always_did() -> None:
    tracks = synthetic_tracks(songs=2, clips=1)
    plain = RemixSampler(tracks, ("vocals", "accompaniment"), 1000, channels=1, seed=4)
    zero = RemixSampler(tracks, ("vocals", "accompaniment"), 1000, channels=1, seed=4, pitch_semitones=0.0)
    torch.testing.assert_close(zero.batch(6)[1], plain.batch(6)[1], rtol=0, atol=0)


def test_sampler_pads_short_tracks() -> None:
    tracks = synthetic_tracks(songs=1, clips=1)
    mixture, _ = RemixSampler(tracks, ("vocals", "accompaniment"), 3 * RATE, 1, seed=0).batch(2)
    assert mixture.shape == (2, 1, 3 * RATE)
    assert (mixture.abs().sum(dim=-1) > 0).all()


def test_fit_decreases_loss_and_improves_validation(tmp_path: Path) -> None:
    trainable = TinyTrainable()
    config = TrainConfig.for_trainable(trainable, epochs=4, seed=0, num_threads=1)
    result = fit(trainable, synthetic_tracks(), config, tmp_path)
    losses = [entry["loss"] for entry in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert result.history[-1]["validation"]["vocals"]["GNSDR"] > 5.0
    assert (tmp_path / "checkpoint.pt").is_file()


def test_resume_continues_identically(tmp_path: Path) -> None:
    trainable = TinyTrainable()
    tracks = synthetic_tracks()
    straight = fit(trainable, tracks, TrainConfig.for_trainable(trainable, epochs=2), tmp_path / "a")
    fit(trainable, tracks, TrainConfig.for_trainable(trainable, epochs=1), tmp_path / "b")
    resumed = fit(trainable, tracks, TrainConfig.for_trainable(trainable, epochs=2), tmp_path / "b", resume=True)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    final_a, final_b = load_checkpoint(tmp_path / "a")["model"], load_checkpoint(tmp_path / "b")["model"]
    for name in final_a:
        torch.testing.assert_close(final_a[name], final_b[name], rtol=0, atol=0)


def test_resume_refuses_other_settings(tmp_path: Path) -> None:
    trainable = TinyTrainable()
    tracks = synthetic_tracks()
    fit(trainable, tracks, TrainConfig.for_trainable(trainable, epochs=1), tmp_path)
    learning_rate = TrainConfig.for_trainable(trainable).learning_rate
    changed = TrainConfig.for_trainable(trainable, epochs=2, learning_rate=0.5, gain_db=1.0)
    message = (f"--resume: {tmp_path} was trained with --learning-rate {learning_rate} (now 0.5), --gain-db 6.0 "
               "(now 1.0); resume with its settings or start over with --overwrite")
    with pytest.raises(SeparationError, match=re.escape(message)):
        fit(trainable, tracks, changed, tmp_path, resume=True)
    # before any data is read (the dataset folder does not even exist)
    with pytest.raises(SeparationError, match=re.escape(message)):
        train_and_export("tiny", trainable, tmp_path / "no-data", tmp_path, changed, resume=True)
    with pytest.raises(SeparationError, match="no checkpoint"):
        fit(trainable, tracks, TrainConfig.for_trainable(trainable), tmp_path / "empty", resume=True)


def test_a_checkpoint_older_than_a_setting_resumes_with_its_default(tmp_path: Path) -> None:
    trainable = TinyTrainable()
    tracks = synthetic_tracks()
    fit(trainable, tracks, TrainConfig.for_trainable(trainable, epochs=1), tmp_path)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    del state["config"]["pitch_semitones"]  # as written before the setting existed
    del state["trainer"], state["tracks"]  # as written before the trainer and the tracks were recorded
    torch.save(state, tmp_path / "checkpoint.pt")
    resumed = fit(trainable, tracks, TrainConfig.for_trainable(trainable, epochs=2), tmp_path, resume=True)
    assert len(resumed.history) == 2


def test_resume_keeps_the_runs_licence_and_refuses_fewer_epochs_than_it_ran(tmp_path: Path) -> None:
    fit(TinyTrainable(), synthetic_tracks(), TrainConfig.for_trainable(TinyTrainable, epochs=2, license="mit"), tmp_path)
    unset = {field: None for field in vars(TrainConfig())}
    settings, _ = _resumed_settings(tmp_path, TinyTrainable, {**unset, "epochs": 3}, {})
    assert (settings["license"], settings["epochs"]) == ("mit", 3)
    settings, _ = _resumed_settings(tmp_path, TinyTrainable, {**unset, "license": "apache-2.0"}, {})
    assert settings["license"] == "apache-2.0"  # the licence may change: it is no training setting
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    del state["config"]["license"]  # as written before the licence was recorded: the card's counts
    torch.save(state, tmp_path / "checkpoint.pt")
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n\nA tiny model.\n")
    assert _resumed_settings(tmp_path, TinyTrainable, unset, {})[0]["license"] == "mit"
    message = f"--resume: the run in {tmp_path} has already trained 2 epochs; give --epochs 2 or more"
    with pytest.raises(SeparationError, match=re.escape(message)):
        _resumed_settings(tmp_path, TinyTrainable, {**unset, "epochs": 1}, {})


@pytest.mark.parametrize("content", [b"junk\n", None])
def test_an_unreadable_checkpoint_is_a_clear_error(tmp_path: Path, content: bytes | None) -> None:
    fit(TinyTrainable(), synthetic_tracks(), TrainConfig.for_trainable(TinyTrainable, epochs=1), tmp_path)
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(content if content is not None else checkpoint.read_bytes()[:5000])  # foreign or cut
    with pytest.raises(SeparationError, match=r"^--resume: .*checkpoint.pt is not a readable checkpoint \(.*\); "
                                              r"start over with --overwrite$"):
        load_checkpoint(tmp_path)


def test_a_validation_track_with_a_silent_source_is_left_out_not_scored(tmp_path: Path, caplog) -> None:
    trainable, tracks = TinyTrainable(), synthetic_tracks()
    config = TrainConfig.for_trainable(trainable, epochs=1)
    _, valid = split_by_song(tracks, config.valid_fraction, config.seed)
    silent = valid[0]
    silent.sources["vocals"] = np.zeros_like(silent.sources["vocals"])
    with caplog.at_level("WARNING", logger="sepframework.training"):
        result = fit(trainable, tracks, config, tmp_path)
    assert f"validation track {silent.name}: reference 'vocals' is silent" in caplog.text
    assert result.best_epoch == 1 and math.isfinite(result.history[0]["score"])
    assert result.valid_tracks == [track.name for track in valid[1:]]
    assert result.left_out == [f"{silent.name}: reference 'vocals' is silent; BSS Eval needs non-silent references "
                               "and estimates"]
    for track in valid[1:]:
        track.sources["accompaniment"] = np.zeros_like(track.sources["accompaniment"])
    with pytest.raises(SeparationError, match="^no validation track can be scored "):
        fit(trainable, tracks, config, tmp_path / "none")


def test_a_model_with_silent_estimates_has_no_score_and_fails_the_run(tmp_path: Path) -> None:
    class Mute(TinyTrainable):
        def separator(self, model: torch.nn.Module, device: str) -> Separator:
            separator = TinySeparator(model)
            separator.separate_block = lambda audio: {"vocals": np.zeros_like(audio), "accompaniment": audio}
            return separator

    with pytest.raises(SeparationError, match=r"^epoch 1: the model's estimates for .* have no finite BSS Eval "
                                              r"score \(a silent source\), so the training diverged"):
        fit(Mute(), synthetic_tracks(), TrainConfig.for_trainable(Mute, epochs=1), tmp_path)


def test_too_few_tracks_for_a_split_is_a_clear_error(tmp_path: Path) -> None:
    trainable = TinyTrainable()
    with pytest.raises(SeparationError, match="validation split"):
        fit(trainable, synthetic_tracks(songs=1, clips=2, singers=("ann",)), TrainConfig(), tmp_path)


class VariableCropTiny(TinyTrainable):
    """TinyTrainable that takes any crop length and records the lengths it was trained on."""

    variable_crop = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lengths: set[int] = set()

    def loss(self, model: torch.nn.Module, mixture: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        self.lengths.add(mixture.shape[-1])
        return super().loss(model, mixture, targets)


def test_crop_seconds_sets_the_length_of_the_training_crops(tmp_path: Path) -> None:
    trainable = VariableCropTiny()
    fit(trainable, synthetic_tracks(), TrainConfig.for_trainable(trainable, epochs=1), tmp_path / "default")
    assert trainable.lengths == {2000}
    trainable.lengths.clear()
    fit(trainable, synthetic_tracks(), TrainConfig.for_trainable(trainable, epochs=1, crop_seconds=0.75), tmp_path / "long")
    assert trainable.lengths == {6000}


def test_crop_seconds_is_refused_where_it_cannot_apply() -> None:
    with pytest.raises(SeparationError, match=r"^this model trains on fixed 0.25 s crops; --crop-seconds does not apply"):
        TinyTrainable().crop_samples(1.0)
    with pytest.raises(SeparationError, match=r"^--crop-seconds must be at least 0.5 s, got 0.1"):
        VariableCropTiny().crop_samples(0.1)


def write_mini_dataset(data: Path) -> Path:
    """Synthetic tracks as MIR-1K style stereo FLAC clips (accompaniment left, vocals right)."""
    import soundfile as sf

    data.mkdir()
    for track in synthetic_tracks(songs=4, clips=1):
        stereo = np.concatenate([track.sources["accompaniment"], track.sources["vocals"]])
        sf.write(data / f"{track.name}.flac", stereo.T, RATE)
    return data


def test_train_and_export_writes_loadable_files_and_card(tmp_path: Path) -> None:
    data = write_mini_dataset(tmp_path / "mini")
    trainable = TinyTrainable()
    config = TrainConfig.for_trainable(trainable, epochs=2)
    command = reproduce_command("tiny", data, tmp_path / "out", vars(config), trainable.args)
    metrics = train_and_export("tiny", trainable, data, tmp_path / "out", config, command=command)
    out = tmp_path / "out"
    assert json.loads((out / "config.json").read_text()) == {"plugin": "tiny", "args": {"taps": 15}}
    weights = load_file(str(out / "model.safetensors"))
    assert all(tensor.dtype == torch.float16 for tensor in weights.values())
    assert json.loads((out / "metrics.json").read_text())["validation"] == metrics["validation"]
    card = (out / "README.md").read_text()
    modes = {name: (out / name).stat().st_mode for name in ("model.safetensors", "config.json", "metrics.json", "README.md")}
    assert len(set(modes.values())) == 1, modes  # the weights as readable as the other files
    assert card.startswith("---\n") and "\nlicense: cc-by-nc-4.0\nmetrics:\n" in card
    assert "\nlibrary_name: sepframework\n" in card
    assert command in card and f"{metrics['validation']['vocals']['GNSDR']:.2f}" in card
    assert "--epochs 2" in command and "--arg taps=15" in command and "--crop-seconds" not in command
    assert "--license cc-by-nc-4.0" in command
    assert "Augmentation: random crops of 0.25 s, remixing" in card and "pitch shifts" not in card
    assert "# sepframework `out` (plugin `tiny`)" in card
    scores = card_metadata(out / "README.md")["metrics"]["mini validation"]
    assert scores["vocals GNSDR"] == round(metrics["validation"]["vocals"]["GNSDR"], 2)
    assert scores["accompaniment GSAR"] == round(metrics["validation"]["accompaniment"]["GSAR"], 2)


def test_a_card_names_the_pitch_shifts_of_its_run(tmp_path: Path) -> None:
    data = write_mini_dataset(tmp_path / "mini")
    trainable = TinyTrainable()
    config = TrainConfig.for_trainable(trainable, epochs=1, pitch_semitones=2.5)
    command = reproduce_command("tiny", data, tmp_path / "out", vars(config), trainable.args)
    train_and_export("tiny", trainable, data, tmp_path / "out", config, command=command)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "dB per source, random pitch shifts of ±2.5 semitones per source (resampling)." in card
    assert "--pitch-semitones 2.5" in card


def test_unknown_trainer_and_model_argument_are_clear_errors() -> None:
    with pytest.raises(PluginError, match=r"unknown trainer 'nope' \(installed trainers: .*unet"):
        get_trainer("nope")
    with pytest.raises(SeparationError, match="unknown model argument"):
        TinyTrainable({"tapz": 3})


def exported_tiny_model(folder: Path, seed: int = 5) -> dict[str, torch.Tensor]:
    """A randomly initialised TinyTrainable model exported to ``folder``; its stored tensors."""
    torch.manual_seed(seed)
    trainable = TinyTrainable()
    export_model(trainable, trainable.build_model(), "tiny", folder)
    return load_file(str(folder / "model.safetensors"))


def test_init_starts_from_the_given_weights(tmp_path: Path) -> None:
    stored = exported_tiny_model(tmp_path / "base")
    config = TrainConfig.for_trainable(TinyTrainable, epochs=1, learning_rate=0.0, init=str(tmp_path / "base"))
    result = fit(TinyTrainable(), synthetic_tracks(), config, tmp_path / "tuned")
    for name, tensor in result.model.state_dict().items():
        torch.testing.assert_close(tensor, stored[name].float())  # a zero learning rate kept them
    fresh = fit(TinyTrainable(), synthetic_tracks(), TrainConfig.for_trainable(TinyTrainable, epochs=1, learning_rate=0.0),
                tmp_path / "fresh")
    assert not torch.equal(fresh.model.state_dict()["0.weight"], result.model.state_dict()["0.weight"])
    # a resumed run continues from its checkpoint: the starting weights are no longer needed
    shutil.rmtree(tmp_path / "base")
    config.epochs = 2
    resumed = fit(TinyTrainable(), synthetic_tracks(), config, tmp_path / "tuned", resume=True)
    assert len(resumed.history) == 2


def test_init_refuses_other_model_arguments_and_unknown_sources(tmp_path: Path) -> None:
    exported_tiny_model(tmp_path / "base")
    with pytest.raises(SeparationError, match=r"--init .*base: its model arguments differ from this run's in "
                                              r"taps \(this run: 7, .*base: 15\); give the same --arg values"):
        checked_files(TinyTrainable({"taps": 7}), str(tmp_path / "base"))
    with pytest.raises(SeparationError, match="a model of the plugin 'tiny', not 'gru'"):
        checked_files(TinyTrainable(), str(tmp_path / "base"), plugin="gru")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SeparationError, match="the folder has no model.safetensors or config.json"):
        checked_files(TinyTrainable(), str(tmp_path / "empty"))
    with pytest.raises(SeparationError, match="neither a model folder nor a registry model .*unet"):
        checked_files(TinyTrainable(), "no-such-model")


@pytest.mark.parametrize(("weights", "message"), [
    (b"garbage", r"model.safetensors: not a readable safetensors file"),
    (None, r"--init .*base: the weights do not fit this model: "),
])
def test_unusable_starting_weights_fail_before_the_data_is_read(tmp_path: Path, weights: bytes | None,
                                                                message: str) -> None:
    exported_tiny_model(tmp_path / "base")
    if weights is None:  # readable, but of another network
        save_file({"other.weight": torch.zeros(3)}, str(tmp_path / "base" / "model.safetensors"))
    else:
        (tmp_path / "base" / "model.safetensors").write_bytes(weights)
    config = TrainConfig.for_trainable(TinyTrainable, epochs=1, init=str(tmp_path / "base"))
    with pytest.raises(SeparationError, match=message):  # the dataset folder does not even exist
        train_and_export("tiny", TinyTrainable(), tmp_path / "no-data", tmp_path / "out", config)
    assert not (tmp_path / "out").exists()


def test_init_takes_a_registry_model_over_a_folder_of_its_name_without_weights(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "unet").mkdir()  # e.g. the plugin's source folder
    files = model_files("unet")
    assert files["model.safetensors"] == registry.bundled_folder(registry.find("unet")) / "model.safetensors"
    commands = starting_commands(UNetTrainable(), "unet", "unet", resume=False)
    assert commands[-1].startswith("sep train unet --data ")


def test_sep_train_setting_errors_are_one_line_before_the_data_is_read(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "sepframework.cli", "train", "gru", "--data", str(tmp_path / "nothing"),
                             "--init", "unet"], capture_output=True, text=True, timeout=120, cwd=tmp_path)  # default --out runs/gru
    assert result.returncode == 1
    assert result.stderr.startswith("error: --init unet: a model of the plugin 'unet', not 'gru'")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = subprocess.run([sys.executable, "-m", "sepframework.cli", "train", "unet", "--data", str(tmp_path / "nothing"),
                             "--crop-seconds", "8"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == ("error: this model trains on fixed 2.03 s crops; --crop-seconds does not apply to it\n")


def test_a_fine_tuned_models_card_gives_every_command_that_led_to_it(tmp_path: Path) -> None:
    data = write_mini_dataset(tmp_path / "mini")
    commands = []
    for run, init in (("base", None), ("tuned", str(tmp_path / "base")), ("again", str(tmp_path / "tuned"))):
        config = TrainConfig.for_trainable(TinyTrainable, epochs=1, init=init)
        commands.append(reproduce_command("tiny", data, tmp_path / run, vars(config), {"taps": 15}))
        train_and_export("tiny", TinyTrainable(), data, tmp_path / run, config, command=commands[-1])
    assert "--init" not in commands[0] and f"--init {tmp_path / 'tuned'}" in commands[2]
    card = (tmp_path / "again" / "README.md").read_text()
    assert f"starting from the weights of `{tmp_path / 'tuned'}`" in card
    assert reproduce_commands(card) == commands
    assert reproduce_commands((tmp_path / "base" / "README.md").read_text()) == commands[:1]


def test_a_card_says_when_the_starting_weights_have_no_known_commands(tmp_path: Path) -> None:
    data = write_mini_dataset(tmp_path / "mini")
    exported_tiny_model(tmp_path / "base")  # weights and config only, no card
    config = TrainConfig.for_trainable(TinyTrainable, epochs=1, init=str(tmp_path / "base"))
    train_and_export("tiny", TinyTrainable(), data, tmp_path / "tuned", config, command="sep train tiny ...")
    card = (tmp_path / "tuned" / "README.md").read_text()
    assert f"started from the trained weights of `{tmp_path / 'base'}` (`--init`), whose training commands are not known" in card
    assert reproduce_commands(card) == ["sep train tiny ..."]


def test_an_earlier_run_is_kept_unless_resumed_or_overwritten(tmp_path: Path) -> None:
    data, out = write_mini_dataset(tmp_path / "mini"), tmp_path / "out"
    config = TrainConfig.for_trainable(TinyTrainable, epochs=1)
    train_and_export("tiny", TinyTrainable(), data, out, config)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    assert sorted(before) == ["README.md", "checkpoint.pt", "config.json", "metrics.json", "model.safetensors"]
    with pytest.raises(SeparationError) as error:
        train_and_export("tiny", TinyTrainable(), data, out, config)
    assert str(error.value) == (f"{out} already holds a model or training run (model.safetensors, config.json, "
                                "metrics.json, README.md, checkpoint.pt); pass --resume to continue its training, "
                                "--overwrite to start over, or choose another --out")
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    with pytest.raises(SeparationError, match=r"^--resume continues the run in .*out and --overwrite replaces it: "
                                              r"pass only one of them$"):
        train_and_export("tiny", TinyTrainable(), data, out, config, resume=True, overwrite=True)
    config.epochs = 2
    assert train_and_export("tiny", TinyTrainable(), data, out, config, resume=True)["epochs_run"] == 2
    assert (out / "model.safetensors").read_bytes() != before["model.safetensors"]
    config.epochs = 1
    assert train_and_export("tiny", TinyTrainable(), data, out, config, overwrite=True)["epochs_run"] == 1
    assert (out / "model.safetensors").read_bytes() == before["model.safetensors"]  # the same seeded run again
    with pytest.raises(SeparationError, match=r"^--resume: no checkpoint at .*elsewhere/checkpoint.pt$"):
        train_and_export("tiny", TinyTrainable(), data, tmp_path / "elsewhere", config, resume=True)
    assert not (tmp_path / "elsewhere").exists()


class TrainingFails(TinyTrainable):
    def loss(self, model: torch.nn.Module, mixture: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("training failed")


class LoadingFails(TinySeparator):
    @classmethod
    def load(cls, args: Mapping[str, Any], weights: Mapping[str, Any] | None, device: str = "cpu") -> TinySeparator:
        raise RuntimeError("loading the exported files failed")


class ExportFails(TinyTrainable):
    separator_class = LoadingFails


def test_a_failed_run_leaves_no_model_files(tmp_path: Path) -> None:
    data = write_mini_dataset(tmp_path / "mini")
    config = TrainConfig.for_trainable(TinyTrainable, epochs=1)
    with pytest.raises(RuntimeError, match="training failed"):
        train_and_export("tiny", TrainingFails(), data, tmp_path / "out", config)
    assert not (tmp_path / "out").exists()  # failed before its first checkpoint
    with pytest.raises(RuntimeError, match="loading the exported files failed"):
        train_and_export("tiny", ExportFails(), data, tmp_path / "out", config)
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["checkpoint.pt"]  # resumable, no model


def test_validation_scores_are_those_of_the_gnsdr_evaluator_also_for_stereo() -> None:
    from sepframework.evaluation.evaluators import GNSDR
    from sepframework.training.validation import Validator
    from tests.test_engine import FIRSeparator

    rng = np.random.default_rng(3)
    tracks = [Track(f"t{i}", 8000, {name: rng.standard_normal((2, length)).astype(np.float32) * 0.1
                                    for name in ("vocals", "accompaniment")})
              for i, length in enumerate((8000, 12000))]
    model = FIRSeparator()
    evaluator = GNSDR()
    means = evaluator.accumulator()
    for track in tracks:
        means.add(track.length, evaluator.evaluate(track.sources, model.separate_block(track.mixture), 8000))
    expected = means.result()
    scores = Validator(tracks, ("vocals", "accompaniment"))(model)
    for source, metrics in scores.items():
        for metric, value in metrics.items():
            assert value == pytest.approx(expected[source][metric], abs=1e-6), (source, metric)


def test_a_broken_or_ambiguous_trainer_is_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    import entrypoints

    from sepframework import plugins

    (tmp_path / "sep_exits_in_training.py").write_text("import sys\nsys.exit('no GPU toolkit')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = [entrypoints.EntryPoint("exits", "sep_exits_in_training", "Trainer",
                                    distro=entrypoints.Distribution("sep-exits", "1.0"))]
    found += [entrypoints.EntryPoint("twice", "sep_unet.training", "UNetTrainable",
                                     distro=entrypoints.Distribution(dist, "1.0")) for dist in ("sep-a", "sep-b")]
    monkeypatch.setattr(entrypoints, "get_group_all", lambda group, path=None: found)
    plugins.refresh()
    try:
        with pytest.raises(PluginError, match=r"^trainer 'exits' \(sep-exits 1.0\) failed to import: SystemExit: no GPU"):
            get_trainer("exits")
        with pytest.raises(PluginError, match="trainer name 'twice' is claimed by several distributions: sep-a 1.0 and sep-b 1.0"):
            get_trainer("twice")
    finally:
        monkeypatch.undo()
        plugins.refresh()


class DivergesAtValidation(TinyTrainable):
    """TinyTrainable whose model gives NaN from the ``nan_from``-th validation on (a diverged run)."""

    def __init__(self, *args: Any, nan_from: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.nan_from, self.validations = nan_from, 0

    def separator(self, model: torch.nn.Module, device: str) -> Separator:
        self.validations += 1
        if self.validations < self.nan_from:
            return TinySeparator(model)
        broken = TinyTrainable().build_model()
        torch.nn.init.constant_(broken[0].weight, float("nan"))
        return TinySeparator(broken.eval())


def test_a_run_that_diverges_at_once_is_an_error_not_a_score(tmp_path: Path) -> None:
    config = TrainConfig.for_trainable(TinyTrainable, epochs=3)
    with pytest.raises(SeparationError, match=re.escape(
            "epoch 1: the model gives NaN or infinite samples for ann_")) as error:
        fit(DivergesAtValidation(), synthetic_tracks(), config, tmp_path)
    assert str(error.value).endswith("so the training diverged; train again with a lower --learning-rate (now 0.01)")
    assert not (tmp_path / "checkpoint.pt").exists()


def test_a_run_that_diverges_later_stops_with_its_best_epoch(tmp_path: Path, caplog) -> None:
    config = TrainConfig.for_trainable(TinyTrainable, epochs=4, patience=10)
    result = fit(DivergesAtValidation(nan_from=3), synthetic_tracks(), config, tmp_path)
    assert [entry["epoch"] for entry in result.history] == [1, 2] and result.best_epoch in (1, 2)
    assert all(np.isfinite(entry["score"]) for entry in result.history)
    assert "epoch 3: the model gives NaN or infinite samples" in caplog.text
    assert f"stopping with epoch {result.best_epoch}'s model" in caplog.text


@pytest.mark.parametrize(("value", "message"), [
    (1e6, "weight 0.weight of the trained model has values beyond ±65504, which float16 weights cannot hold"),
    (float("inf"), "weight 0.weight of the trained model is NaN or infinite: the training diverged"),
])
def test_weights_that_float16_cannot_hold_are_not_exported(tmp_path: Path, value: float, message: str) -> None:
    trainable = TinyTrainable()
    model = trainable.build_model()
    with torch.no_grad():
        model[0].weight[0, 0, 0] = value
    with pytest.raises(SeparationError, match=re.escape(message)):
        export_model(trainable, model, "tiny", tmp_path / "out")
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_resume_refuses_other_data(tmp_path: Path) -> None:
    trainable = TinyTrainable()
    tracks = synthetic_tracks()
    fit(trainable, tracks, TrainConfig.for_trainable(trainable, epochs=1), tmp_path)
    with pytest.raises(SeparationError, match=re.escape(
            f"--resume: {tmp_path} was trained on other data (12 of its 24 tracks are missing from --data, "
            "0 are new); resume with its --data, or start over with --overwrite")):
        fit(trainable, tracks[:12], TrainConfig.for_trainable(trainable, epochs=2), tmp_path, resume=True)


def test_the_split_error_says_that_whole_songs_are_held_out(tmp_path: Path) -> None:
    with pytest.raises(SeparationError, match=re.escape(
            "the validation split holds out whole songs (clips named singer_song_NN are one song), and of 3 track(s) "
            "in 1 song(s) it left 3 for training and 0 for validation; use more songs or another --valid-fraction")):
        fit(TinyTrainable(), synthetic_tracks(songs=1, clips=3, singers=("ann",)), TrainConfig(), tmp_path)


def test_running_out_of_memory_while_training_is_one_clear_line(tmp_path: Path, monkeypatch) -> None:
    data = write_mini_dataset(tmp_path / "mini")

    def allocate(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 120000000000 bytes")

    monkeypatch.setattr("sepframework.training.run.fit", allocate)
    with pytest.raises(SeparationError, match=re.escape(
            "out of memory while training: lower --batch-size or --crop-seconds, or use a smaller model (--arg)")):
        train_and_export("tiny", TinyTrainable(), data, tmp_path / "out", TrainConfig.for_trainable(TinyTrainable))
    assert not (tmp_path / "out").exists()

    def no_memory(*args: Any, **kwargs: Any) -> None:
        raise MemoryError()

    monkeypatch.setattr("sepframework.training.run.load_tracks", no_memory)
    with pytest.raises(SeparationError, match=re.escape(
            "out of memory while reading the dataset: train on fewer or shorter tracks")):
        train_and_export("tiny", TinyTrainable(), data, tmp_path / "out", TrainConfig.for_trainable(TinyTrainable))


def test_resume_names_a_run_of_another_model(tmp_path: Path) -> None:
    fit(TinyTrainable(), synthetic_tracks(), TrainConfig.for_trainable(TinyTrainable, epochs=1), tmp_path)
    with pytest.raises(SeparationError, match=re.escape(
            f"--resume: {tmp_path} holds a run of another model (trained by tests.test_training.TinyTrainable); "
            "resume it with its own `sep train NAME`, or choose another --out")):
        train_and_export("other", VariableCropTiny(), tmp_path / "no-data", tmp_path,
                         TrainConfig.for_trainable(VariableCropTiny, epochs=2), resume=True)


def test_sep_train_resume_takes_the_runs_own_settings(tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from sepframework.training.cli import train

    monkeypatch.setattr("sepframework.training.trainers.get_trainer", lambda name: TinyTrainable)
    data, out = write_mini_dataset(tmp_path / "mini"), tmp_path / "out"
    first = CliRunner().invoke(train, ["tiny", "--data", str(data), "--out", str(out), "--epochs", "1", "--seed", "3",
                                       "--learning-rate", "0.02", "--arg", "taps=9"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    resumed = CliRunner().invoke(train, ["tiny", "--data", str(data), "--out", str(out), "--resume", "--epochs", "2"],
                                 catch_exceptions=False)
    assert resumed.exit_code == 0, resumed.output
    card = (out / "README.md").read_text()
    assert "--epochs 2" in card and "--seed 3" in card and "--learning-rate 0.02" in card and "--arg taps=9" in card
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 2
    changed = CliRunner().invoke(train, ["tiny", "--data", str(data), "--out", str(out), "--resume", "--seed", "4"])
    assert "was trained with --seed 3 (now 4)" in str(changed.exception)


@pytest.mark.parametrize(("name", "args", "says", "never"), [
    ("unet", {"n_fft": 2048, "patch_frames": 64}, ["1024-bin x 64-frame", "2048-sample window"], "512-bin"),
    ("gru", {"n_fft": 2048, "hidden_size": 64}, ["2048-sample Hann window", "128 ms algorithmic latency", "64 units"],
     "1024-sample"),
    ("gru", {"bidirectional": True}, ["bidirectional network", "units per direction"], "latency"),
])
def test_a_cards_description_states_the_runs_own_model_arguments(name: str, args: dict[str, Any], says: list[str],
                                                                 never: str) -> None:
    description = get_trainer(name)(args).description
    assert all(fact in description for fact in says), description
    assert never not in description


def test_a_card_stays_readable_whatever_the_dataset_and_run_are_named(tmp_path: Path) -> None:
    facts = CardFacts(
        name="run: 1", plugin="tiny", description="A tiny test model.", dataset="stems: v2 #1", license="mit",
        args={}, config={"valid_fraction": 0.15, "remix_probability": 0.5, "gain_db": 6.0, "seed": 0},
        train_tracks=["amy_1_01"], valid_tracks=["amy_2_01"],
        metrics={"vocals": {"GNSDR": 9.876, "GSIR": 15.0, "GSAR": 12.0},
                 "accompaniment": {"GNSDR": 10.5, "GSIR": 18.0, "GSAR": 11.0}},
        epochs_run=2, best_epoch=1, seconds=60.0, device="cpu", command="sep train tiny --data 'stems: v2 #1'",
        left_out=["amy_3_02: reference 'vocals' is silent"],
    )
    card = tmp_path / "README.md"
    card.write_text(render_card(facts))
    assert "\n1 held-out track(s) could not be scored and are in neither count: amy_3_02: reference 'vocals' is " \
           "silent.\n" in card.read_text()
    read = card_metadata(card)
    assert read["license"] == "mit"
    assert read["metrics"]["stems: v2 #1 validation"]["vocals GNSDR"] == 9.88
    assert read["metrics"]["stems: v2 #1 validation"]["accompaniment GSAR"] == 11.0
