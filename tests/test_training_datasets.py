"""Dataset readers on tiny generated folders: MIR-1K clips, folders of stems, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sepframework.audio import resample
from sepframework.datasets import detect_layout, load_tracks
from sepframework.interfaces import SeparationError

RATE = 16000


def noise(channels: int, samples: int, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal((channels, samples))).astype(np.float32)


def write(path: Path, audio: np.ndarray, rate: int = RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio.T, rate, subtype="FLOAT" if path.suffix.lower() == ".wav" else None)


def test_mir1k_clips_split_left_accompaniment_right_vocals(tmp_path: Path) -> None:
    clips = {"amy_1_01": noise(2, 3000, 0), "amy_1_02": noise(2, 4000, 1)}
    for name, audio in clips.items():
        write(tmp_path / "train" / f"{name}.wav", audio)
    assert detect_layout(tmp_path) == "mir1k"
    tracks = load_tracks(tmp_path)
    assert [t.name for t in tracks] == ["amy_1_01", "amy_1_02"]
    for track in tracks:
        np.testing.assert_array_equal(track.sources["vocals"], clips[track.name][1:2])
        np.testing.assert_array_equal(track.sources["accompaniment"], clips[track.name][0:1])
        np.testing.assert_array_equal(track.mixture, clips[track.name].sum(axis=0, keepdims=True))
        assert track.sample_rate == RATE and track.length == clips[track.name].shape[1]


def test_resampling_on_load(tmp_path: Path) -> None:
    write(tmp_path / "abjones_1_01.flac", noise(2, 16000, 0))
    (track,) = load_tracks(tmp_path, sample_rate=8000)
    assert track.sample_rate == 8000 and track.sources["vocals"].shape == (1, 8000)


def test_stems_with_accompaniment_file(tmp_path: Path) -> None:
    vocals, accompaniment = noise(2, 5000, 0), noise(2, 5000, 1)
    write(tmp_path / "Song A" / "vocals.wav", vocals)
    write(tmp_path / "Song A" / "accompaniment.wav", accompaniment)
    write(tmp_path / "Song A" / "mixture.wav", vocals + accompaniment + 1)  # ignored
    write(tmp_path / "Song A" / "drums.wav", noise(2, 5000, 9))  # ignored: accompaniment given
    assert detect_layout(tmp_path) == "stems"
    (track,) = load_tracks(tmp_path)
    assert track.name == "Song A"
    np.testing.assert_array_equal(track.sources["vocals"], vocals)
    np.testing.assert_array_equal(track.sources["accompaniment"], accompaniment)


def test_stems_other_than_vocals_are_summed_musdb_style(tmp_path: Path) -> None:
    stems = {name: noise(2, 4000, seed) for seed, name in enumerate(("vocals", "drums", "bass", "other"))}
    for name, audio in stems.items():
        write(tmp_path / "train" / "Artist - Title" / f"{name}.wav", audio)
    write(tmp_path / "train" / "Artist - Title" / "mixture.wav", sum(stems.values()))
    (track,) = load_tracks(tmp_path)
    assert track.name == "train/Artist - Title"
    np.testing.assert_allclose(track.sources["accompaniment"], stems["drums"] + stems["bass"] + stems["other"], atol=1e-7)
    np.testing.assert_array_equal(track.sources["vocals"], stems["vocals"])


def test_dsd100_layout_keeps_its_mixtures_apart_from_its_sources(tmp_path: Path) -> None:
    stems = {name: noise(2, 3000, seed) for seed, name in enumerate(("vocals", "drums", "bass", "other"))}
    for name, audio in stems.items():
        write(tmp_path / "Sources" / "Dev" / "051 - AM Contra" / f"{name}.wav", audio)
    write(tmp_path / "Mixtures" / "Dev" / "051 - AM Contra" / "mixture.wav", sum(stems.values()))
    (track,) = load_tracks(tmp_path)
    assert track.name == "Sources/Dev/051 - AM Contra"
    np.testing.assert_array_equal(track.sources["vocals"], stems["vocals"])


def test_audio_not_named_after_a_stem_is_no_track(tmp_path: Path) -> None:
    vocals, accompaniment = noise(2, 3000, 0), noise(2, 3000, 1)
    write(tmp_path / "t1" / "vocals.wav", vocals)
    write(tmp_path / "t1" / "accompaniment.wav", accompaniment)
    write(tmp_path / "preview.wav", noise(2, 3000, 2))
    write(tmp_path / "t1" / "takes" / "vocals_take2.wav", noise(2, 3000, 3))
    assert [track.name for track in load_tracks(tmp_path)] == ["t1"]


def test_stem_names_match_in_any_case(tmp_path: Path) -> None:
    vocals, accompaniment = noise(2, 3000, 0), noise(2, 3000, 1)
    write(tmp_path / "t0" / "Vocals.WAV", vocals)
    write(tmp_path / "t0" / "Accompaniment.wav", accompaniment)
    write(tmp_path / "t0" / "MIXTURE.wav", vocals + accompaniment)  # not summed into the accompaniment
    (track,) = load_tracks(tmp_path)
    assert track.name == "t0"
    np.testing.assert_array_equal(track.sources["vocals"], vocals)
    np.testing.assert_array_equal(track.sources["accompaniment"], accompaniment)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: None, "does not exist"),
        (lambda root: (root / "notes.txt").parent.mkdir() or (root / "notes.txt").write_text("x"), "neither a MIR-1K"),
        (lambda root: write(root / "amy_1_01.wav", noise(1, 100, 0)), "must be stereo"),
        (lambda root: write(root / "t" / "vocals.wav", noise(2, 100, 0)), "no accompaniment"),
        (lambda root: (write(root / "t" / "vocals.wav", noise(2, 100, 0)),
                       write(root / "t" / "bass.wav", noise(2, 90, 0))), "differ in sample rate, channels or length"),
        (lambda root: write(root / "amy_1_01.wav", np.where(np.arange(200) == 7, np.nan, noise(2, 200, 0)).astype(np.float32)),
         "amy_1_01.wav: has NaN or infinite samples"),
        (lambda root: (write(root / "t" / "vocals.wav", noise(2, 100, 0)),
                       write(root / "t" / "bass.wav", np.full((2, 100), np.inf, np.float32))), "bass.wav: has NaN or infinite"),
        (lambda root: (write(root / "t" / "Accompaniment.wav", noise(2, 100, 0)),
                       write(root / "t" / "voice.wav", noise(2, 100, 1))), "stem files .*Accompaniment.wav.* no vocals stem"),
        (lambda root: (write(root / "a" / "vocals.wav", noise(2, 100, 0)), write(root / "a" / "bass.wav", noise(2, 100, 1)),
                       write(root / "b" / "drums.wav", noise(2, 100, 2))), r"data/b: no vocals stem \(vocals.wav\) among drums"),
    ],
)
def test_unusable_folders_are_clear_errors(tmp_path: Path, make, message: str) -> None:
    root = tmp_path / "data"
    make(root)
    with pytest.raises(SeparationError, match=message):
        load_tracks(root)


@pytest.mark.parametrize("sample_rate", [None, 8000])
def test_stems_at_different_rates_are_refused_for_training_as_for_evaluation(tmp_path: Path, sample_rate: int | None) -> None:
    write(tmp_path / "t" / "vocals.wav", noise(2, 16000, 0), rate=16000)
    write(tmp_path / "t" / "bass.wav", noise(2, 22050, 1), rate=22050)
    with pytest.raises(SeparationError, match=r"differ in sample rate.*vocals: 2 channel\(s\), 16000 samples at 16000 Hz; "
                                              r"bass: 2 channel\(s\), 22050 samples at 22050 Hz"):
        load_tracks(tmp_path, sample_rate=sample_rate)


def test_summed_stems_are_resampled_together(tmp_path: Path) -> None:
    stems = {name: noise(1, 16000, seed) for seed, name in enumerate(("vocals", "drums", "bass"))}
    for name, audio in stems.items():
        write(tmp_path / "t" / f"{name}.wav", audio)
    (track,) = load_tracks(tmp_path, sample_rate=8000)
    (native,) = load_tracks(tmp_path)
    assert track.sample_rate == 8000 and track.sources["accompaniment"].shape == (1, 8000)
    np.testing.assert_allclose(track.sources["accompaniment"],
                               resample(native.sources["accompaniment"], 16000, 8000), atol=1e-6)


def test_a_link_to_a_missing_file_is_named_not_skipped(tmp_path: Path) -> None:
    write(tmp_path / "amy_1_01.wav", noise(2, 3000, 0))
    (tmp_path / "amy_2_01.wav").symlink_to(tmp_path / "moved" / "amy_2_01.wav")
    with pytest.raises(SeparationError, match=r"amy_2_01\.wav: no such file"):
        load_tracks(tmp_path)
