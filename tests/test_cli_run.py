"""`sep run` options, globs, failing plugins and termination, in a subprocess as a user runs it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import sepframework
from sepframework.cli import expand_inputs
from tests.test_cli import SEP, sep

FRAGILE_PLUGIN = '''
import sys

import numpy as np
from sepframework import Separator

print("fragile 1.0 imported")  # to stderr: sep's standard output may be data


class Fragile(Separator):
    """Halves its input, but fails on loud input and gives up on silence: a model with bugs."""

    sample_rate = 16000
    sources = ("vocals", "accompaniment")
    context_samples = 0

    @classmethod
    def load(cls, args, weights, device="cpu"):
        return cls()

    def separate_block(self, audio):
        if np.abs(audio).max() > 0.9:
            raise RuntimeError("cannot handle loud input")
        if not audio.any():
            sys.exit("nothing to separate")
        return {"vocals": 0.5 * audio, "accompaniment": 0.5 * audio}
'''


def test_template_format_and_subtype(tmp_path, write_wav) -> None:
    song = write_wav("song.wav", seconds=2.0, rate=16000)
    result = sep("run", "--model", "repet-sim", "-q", "-o", "out", "--format", "flac", "--subtype", "PCM_16",
                 "--template", "{model}/{track}-{source}.{ext}", str(song), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out/repet-sim").iterdir()) == ["song-accompaniment.flac",
                                                                            "song-vocals.flac"]
    info = sf.info(str(tmp_path / "out/repet-sim/song-vocals.flac"))
    assert (info.format, info.subtype, info.samplerate, info.channels, info.frames) == ("FLAC", "PCM_16", 16000, 2, 32000)


def test_mp3_output_has_the_input_rate_and_about_its_length(tmp_path, write_wav) -> None:
    song = write_wav("song.wav", seconds=2.0, rate=44100)
    result = sep("run", "--model", "repet-sim", "-q", "--format", "mp3", "--stems", "vocals", str(song), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / "separated/song").iterdir()] == ["vocals.mp3"]
    vocals, rate = sf.read(tmp_path / "separated/song/vocals.mp3", always_2d=True)
    assert rate == 44100 and vocals.shape[1] == 2
    assert abs(vocals.shape[0] - 2 * 44100) < 2 * 1152  # mp3 frames pad the ends


def test_glob_inputs_take_audio_files_and_a_glob_that_matches_none_is_an_error(tmp_path, write_wav) -> None:
    write_wav("music/a.wav", seconds=1.0, rate=16000)
    write_wav("music/b.wav", seconds=1.0, rate=16000)
    (tmp_path / "music/notes.txt").write_text("lyrics")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/readme.txt").write_text("")
    (tmp_path / "caf").mkdir()  # a format sep reads but does not look for: asked for by its extension
    sf.write(tmp_path / "caf/c.caf", np.zeros((1600, 1), dtype=np.float32) + 0.1, 16000, format="CAF")
    result = sep("run", "--model", "repet-sim", "-q", "-o", "out", "music/*", "other/*.flac", "docs/*", "caf/*.caf",
                 cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["error: other/*.flac: no audio file matches",
                                          "error: docs/*: no audio file matches (1 other file(s) do)", "2 input(s) failed"]
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"a", "b", "c"}


def test_inputs_whose_names_leave_no_track_name_are_reported_and_the_others_kept(tmp_path, write_wav) -> None:
    good = write_wav("music/good.wav", seconds=1.0, rate=16000)
    for name in ("..wav", "...wav"):
        (tmp_path / "music" / name).write_bytes(good.read_bytes())
    files, errors = expand_inputs((str(tmp_path / "music"),))
    assert files == [tmp_path / "music/good.wav"]
    assert errors == [f"{tmp_path / 'music' / name}: its name leaves no track name for its stems; rename it"
                      for name in ("...wav", "..wav")]


def test_a_stem_that_would_replace_a_later_input_is_an_error_before_any_is_separated(tmp_path, write_wav) -> None:
    first = write_wav("a/song.wav", seconds=1.0, rate=16000)
    later = write_wav("out/song/vocals.wav", seconds=1.0, rate=16000)
    before = later.read_bytes()
    result = sep("run", "--model", "repet-sim", "-q", "-o", "out", "--overwrite", "a/song.wav", "out/song/vocals.wav",
                 cwd=tmp_path)
    assert (result.returncode, result.stderr) == (1, "error: a/song.wav's stem out/song/vocals.wav would replace the "
                                                     "input out/song/vocals.wav of this batch; choose another -o or --template\n")
    assert later.read_bytes() == before and first.exists() and not (tmp_path / "out/song/accompaniment.wav").exists()


def test_bad_option_values_are_one_error_line_before_any_input_is_separated(tmp_path, write_wav) -> None:
    songs = [str(write_wav(name, seconds=1.0, rate=16000)) for name in ("a.wav", "b.wav")]
    for args, message in [
        (["--model", "hf://bad name/x"], "'bad name/x' is not a Hub repository id"),
        (["--stems", "drums"], "unknown stem(s) drums; this model gives vocals, accompaniment"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--stems", ","], "--stems ',' names no source; this model gives vocals, accompaniment"),
        (["--stream"], "this model (RepetSim) cannot stream"),
        (["--model", "gru", "--stream"], "this GRU model is bidirectional and cannot stream"),
    ]:
        result = sep("run", "--model", "repet-sim", *args, *songs, cwd=tmp_path)
        assert result.returncode == 1, args
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert not (tmp_path / "separated").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--template", "{nope}.{ext}"], "bad output template '{nope}.{ext}': use the fields {track}, {source}, {ext}, {model}, {parent} and {file}"),
    (["--template", "{track.x}.{ext}"], "bad output template '{track.x}.{ext}': use the fields {track}, {source}, {ext}, {model}, {parent} and {file}"),
    (["--template", "{track!r}/{source}.{ext}"], "bad output template '{track!r}/{source}.{ext}': use the fields {track}, {source}, {ext}, {model}, {parent} and {file}"),
    (["--template", "{track}/{source}.mp3"],
     "output template '{track}/{source}.mp3' does not name .wav files; end it with .{ext}"),
    (["--template", "../up/{track}/{source}.{ext}"],
     "output template '../up/{track}/{source}.{ext}' leads outside the output folder"),
    (["--subtype", "PCM_32"], "subtype 'PCM_32' is not offered for wav output; use FLOAT, PCM_24, PCM_16"),
    (["--model", "gru-stream", "--stream", "--segment", "5"],
     "--segment has no effect with --stream (it processes the input block by block)"),
])
def test_malformed_options_are_usage_errors(tmp_path, write_wav, args: list[str], message: str) -> None:
    song = write_wav("a.wav", seconds=1.0, rate=16000)
    result = sep("run", "--model", "repet-sim", *args, str(song), cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, f"error: {message} (see `sep run --help`)\n")
    assert not (tmp_path / "separated").exists()


@pytest.mark.parametrize(("value", "message"), [
    ("0", "0.0 is not in the range x>=1.0."),
    ("0.001", "0.001 is not in the range x>=1.0."),
    ("nan", "'nan' is not a finite number."),
    ("inf", "'inf' is not a finite number."),
])
def test_a_segment_no_model_can_use_is_a_usage_error(tmp_path, write_wav, value, message) -> None:
    song = write_wav("a.wav", seconds=1.0, rate=16000)
    result = sep("run", "--model", "repet-sim", "--segment", value, song, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (
        2, f"error: Invalid value for '--segment': {message} (see `sep run --help`)\n")


def test_separating_a_folder_again_skips_the_stems_written_inside_it(tmp_path, write_wav) -> None:
    write_wav("music/a.wav", seconds=1.0, rate=16000)
    for _ in range(2):
        result = sep("run", "--model", "repet-sim", "-q", "--overwrite", ".", cwd=tmp_path / "music")
        assert result.returncode == 0, result.stderr
    (tmp_path / "music/link").symlink_to(tmp_path / "music/separated")  # OUTDIR named another way
    result = sep("run", "--model", "repet-sim", "-q", "--overwrite", "-o", "link", ".", cwd=tmp_path / "music")
    assert result.returncode == 0, result.stderr
    written = sorted(str(p.relative_to(tmp_path / "music")) for p in (tmp_path / "music").rglob("*.wav"))
    assert written == ["a.wav", "separated/a/accompaniment.wav", "separated/a/vocals.wav"]
    result = sep("run", "--model", "repet-sim", "-q", "-o", ".", ".", cwd=tmp_path / "music")
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["error: .: folder contains no audio files outside the output folder . (it holds 3)"]


def test_inputs_that_would_write_the_same_stems_are_an_error_before_any_is_separated(tmp_path, write_wav) -> None:
    write_wav("music/x/song.wav", seconds=1.0, rate=16000)
    write_wav("music/y/song.wav", seconds=1.0, rate=16000)
    result = sep("run", "--model", "repet-sim", "-q", "-o", "out", "--overwrite", "music", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: music/x/song.wav and music/y/song.wav would both write out/song/vocals.wav; give each its own "
        "folder with --template '{parent}/{track}/{source}.{ext}', or separate them in two runs with different -o"]
    assert not (tmp_path / "out").exists()

    result = sep("run", "--model", "repet-sim", "-q", "-o", "out", "--template", "{parent}/{track}/{source}.{ext}",
                 "music", "music/x/../x/song.wav", cwd=tmp_path)  # the same file named twice is one input
    assert result.returncode == 0, result.stderr
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.wav")) == [
        "x/song/accompaniment.wav", "x/song/vocals.wav", "y/song/accompaniment.wav", "y/song/vocals.wav"]


def test_one_song_in_two_formats_is_kept_apart_by_its_file_name(tmp_path, write_wav) -> None:
    song = write_wav("music/song.wav", seconds=1.0, rate=16000)
    sf.write(tmp_path / "music/song.flac", sf.read(song)[0], 16000)
    result = sep("run", "--model", "repet-sim", "-q", "-o", "out", "music", cwd=tmp_path)
    assert result.stderr.splitlines() == [
        "error: music/song.flac and music/song.wav would both write out/song/vocals.wav; give each its own "
        "folder with --template '{file}/{source}.{ext}', or separate them in two runs with different -o"]
    result = sep("run", "--model", "repet-sim", "-q", "-o", "out", "--template", "{file}/{source}.{ext}", "music",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.wav") if p.is_file()) == [
        "song.flac/accompaniment.wav", "song.flac/vocals.wav", "song.wav/accompaniment.wav", "song.wav/vocals.wav"]


def test_a_model_folder_is_named_by_its_folder_in_the_outputs(tmp_path, write_wav) -> None:
    registry = Path(__file__).resolve().parents[1] / "registry/gru-stream"
    (tmp_path / "my-model").mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(registry / name, tmp_path / "my-model" / name)
    song = write_wav("song.wav", seconds=1.0, rate=16000)
    result = sep("run", "-m", "./my-model/", "-q", "--template", "{model}/{track}-{source}.{ext}", str(song),
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "separated/my-model").iterdir()) == [
        "song-accompaniment.wav", "song-vocals.wav"]

    written = sepframework.separate_file(song, str(tmp_path / "my-model") + "/", tmp_path / "api",
                                         template="{model}/{track}-{source}.{ext}")
    assert written == {source: tmp_path / f"api/my-model/song-{source}.wav" for source in ("vocals", "accompaniment")}
    loaded = sepframework.load(str(tmp_path / "my-model"), device="cpu")
    for name in (None, "mine"):
        written = sepframework.separate_file(song, loaded, tmp_path / "api", stems="vocals", model_name=name,
                                             template="{model}/{track}-{source}.{ext}")
        assert written == {"vocals": tmp_path / f"api/{name or 'GRUSeparator'}/song-vocals.wav"}


def test_a_failing_model_is_reported_per_file_and_the_batch_goes_on(tmp_path, write_wav) -> None:
    site = tmp_path / "site"
    (site / "sep_fragile-1.0.dist-info").mkdir(parents=True)
    (site / "sep_fragile.py").write_text(FRAGILE_PLUGIN)
    (site / "sep_fragile-1.0.dist-info/METADATA").write_text("Metadata-Version: 2.1\nName: sep-fragile\nVersion: 1.0\n")
    (site / "sep_fragile-1.0.dist-info/entry_points.txt").write_text("[sepframework.models]\nfragile = sep_fragile:Fragile\n")
    quiet = write_wav("music/a.wav", seconds=1.0, rate=16000)
    loud = tmp_path / "music/b.wav"
    sf.write(loud, np.full((16000, 1), 0.95, dtype=np.float32), 16000)
    sf.write(tmp_path / "music/c.wav", np.zeros((16000, 1), dtype=np.float32), 16000)
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = subprocess.run([*SEP, "run", "--model", "fragile", "-q", "-o", "out", "music"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "fragile 1.0 imported",
        "error: music/b.wav: model 'fragile' failed: RuntimeError: cannot handle loud input",
        "error: music/c.wav: model 'fragile' failed: SystemExit: nothing to separate",
        "2 input(s) failed"]
    vocals, _ = sf.read(tmp_path / "out/a/vocals.wav", always_2d=True)
    np.testing.assert_allclose(vocals, 0.5 * sf.read(quiet, always_2d=True)[0], atol=1e-6)
    assert not (tmp_path / "out/b").exists() or not any((tmp_path / "out/b").iterdir())


def test_an_input_with_nan_samples_is_one_error_line_naming_the_file(tmp_path, write_wav) -> None:
    write_wav("music/a.wav", seconds=1.0, rate=16000)
    audio = np.zeros((16000, 2), dtype=np.float32)
    audio[5000, 1] = np.nan
    sf.write(tmp_path / "music/n.wav", audio, 16000, subtype="FLOAT")
    result = sep("run", "--model", "repet-sim", "-q", "-o", "out", "music", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["error: music/n.wav: the input contains NaN or infinite samples",
                                          "1 input(s) failed"]
    assert (tmp_path / "out/a/vocals.wav").exists() and not (tmp_path / "out/n").exists()
    streamed = sep("run", "--model", "gru-stream", "--stream", "-q", "-o", "out2", "music/n.wav", cwd=tmp_path)
    assert streamed.stderr.splitlines()[0] == "error: music/n.wav: the input contains NaN or infinite samples"


def test_clipping_in_an_integer_output_is_one_warning_line_per_stem(tmp_path) -> None:
    full_scale = np.sign(np.random.default_rng(0).standard_normal((32000, 2))).astype(np.float32)
    sf.write(tmp_path / "loud.wav", full_scale, 16000, subtype="FLOAT")
    result = sep("run", "--model", "repet-sim", "-q", "--subtype", "PCM_16", "-o", "out", "loud.wav", cwd=tmp_path)
    assert result.returncode == 0
    warned = result.stderr.splitlines()
    assert warned and all(line.startswith("warning: out/loud/") and " samples beyond full scale were clipped to fit "
                          "PCM_16, so the stems no longer add up to the input there" in line for line in warned)
    float_result = sep("run", "--model", "repet-sim", "-q", "-o", "out2", "loud.wav", cwd=tmp_path)
    assert float_result.stderr == ""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_leaves_no_partial_stem(tmp_path) -> None:
    song = tmp_path / "long.wav"
    rate = 16000
    with sf.SoundFile(song, "w", rate, 1, subtype="PCM_16") as handle:  # 20 minutes of noise
        rng = np.random.default_rng(0)
        for _ in range(120):
            handle.write(0.1 * rng.standard_normal(10 * rate))
    process = subprocess.Popen([*SEP, "run", "--model", "repet-sim", "-q", "-o", "out", str(song)], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any((tmp_path / "out").rglob(".*.part")):  # writing has begun
        assert process.poll() is None and time.monotonic() < deadline, "sep run ended before writing began"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM and stderr.strip() == "interrupted"
    assert not (tmp_path / "out").exists()  # no partial stem, nor the folders made for the stems


def test_offline_runs_bundled_models_and_explains_a_missing_hub_model(tmp_path, write_wav) -> None:
    song = write_wav("song.wav", seconds=1.0, rate=16000)
    env = {**os.environ, "HF_HOME": str(tmp_path / "empty-cache"), "HF_ENDPOINT": "http://127.0.0.1:9"}  # nothing listens
    bundled = subprocess.run([*SEP, "run", "--offline", "--model", "gru-stream", "-q", str(song)], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=300)
    assert (bundled.returncode, bundled.stderr) == (0, "")
    assert sf.info(str(tmp_path / "separated/song/vocals.wav")).frames == 16000
    hub = subprocess.run([*SEP, "run", "--offline", "--model", "hf://someone/sep-foo", str(song)], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert hub.returncode == 1
    assert hub.stderr.startswith("error: model 'hf://someone/sep-foo': offline mode is on and the cache (")
    assert "lacks the model files of 'someone/sep-foo' at revision 'main'" in hub.stderr
    assert "sep models pull" in hub.stderr and len(hub.stderr.strip().splitlines()) == 1


def test_broken_links_are_reported_not_skipped(tmp_path, write_wav, monkeypatch) -> None:
    write_wav("music/a.wav", seconds=0.5, rate=16000)
    (tmp_path / "music/gone.wav").symlink_to(tmp_path / "missing.wav")
    monkeypatch.chdir(tmp_path)
    files, errors = expand_inputs(("music", "music/gone.wav"))
    assert files == [Path("music/a.wav")]
    assert errors == ["music/gone.wav: broken symbolic link"]  # found in the folder and named: one error


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any folder")
def test_unreadable_folders_are_reported_not_skipped(tmp_path, write_wav, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_wav("music/a.wav", seconds=0.5, rate=16000)
    write_wav("music/locked/b.wav", seconds=0.5, rate=16000)
    (tmp_path / "music/locked").chmod(0)
    try:
        files, errors = expand_inputs(("music", "music/locked", "music/locked/*.wav"))
    finally:
        (tmp_path / "music/locked").chmod(0o755)
    assert files == [Path("music/a.wav")]
    assert errors == ["music/locked: cannot read this folder (Permission denied)", "music/locked/*.wav: Permission denied"]
