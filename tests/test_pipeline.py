"""Separating files: layout, lengths, rates, overwrite protection, atomic writes."""

from __future__ import annotations

import os
import re
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sepframework.audio import OutputExistsError, read_audio
from sepframework.interfaces import SeparationError
from sepframework.pipeline import OutputSpec, separate_file
from tests.test_engine import FIRSeparator


def read(path: Path) -> tuple[np.ndarray, int]:
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    return data.T, rate


def test_stems_are_written_in_the_default_layout_and_sum_to_the_input(tmp_path, write_wav) -> None:
    song = write_wav("song.wav", seconds=7.3, rate=8000)
    model = FIRSeparator()
    written = separate_file(song, model, OutputSpec(outdir=tmp_path / "out"))
    assert written == {
        "vocals": tmp_path / "out/song/vocals.wav",
        "accompaniment": tmp_path / "out/song/accompaniment.wav",
    }
    mixture, _ = read(song)
    vocals, rate = read(written["vocals"])
    accompaniment, _ = read(written["accompaniment"])
    assert rate == 8000 and vocals.shape == mixture.shape
    np.testing.assert_allclose(vocals + accompaniment, mixture, atol=1e-6)
    np.testing.assert_allclose(vocals, model.separate_block(mixture)["vocals"], atol=1e-5)


def test_other_rates_come_back_at_the_input_rate_and_length(tmp_path, write_wav) -> None:
    song = write_wav("song.wav", seconds=5.01, rate=44100, channels=1)
    model = FIRSeparator()
    written = separate_file(song, model, OutputSpec(outdir=tmp_path), segment_seconds=2.0)
    mixture, _ = read(song)
    vocals, rate = read(written["vocals"])
    assert rate == 44100 and vocals.shape == mixture.shape
    reference = model.separate(mixture, 44100)["vocals"]
    inner = slice(2000, -2000)
    error = vocals[:, inner] - reference[:, inner]
    snr = 10 * np.log10(np.sum(reference[:, inner] ** 2) / np.sum(error**2))
    assert snr > 40


def test_existing_outputs_are_never_overwritten_silently(tmp_path, write_wav) -> None:
    song = write_wav("song.wav", seconds=1.0, rate=8000)
    spec = OutputSpec(outdir=tmp_path)
    separate_file(song, FIRSeparator(), spec)
    vocals = tmp_path / "song/vocals.wav"
    vocals.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match=r"output already exists: .*vocals.wav, .*accompaniment.wav \(use --overwrite"):
        separate_file(song, FIRSeparator(), spec)
    assert vocals.read_bytes() == b"keep me"
    separate_file(song, FIRSeparator(), OutputSpec(outdir=tmp_path, overwrite=True))
    assert read(vocals)[0].shape == (2, 8000)


def test_a_failure_midway_leaves_no_partial_stem(tmp_path, write_wav) -> None:
    class FailsOnSecondSegment(FIRSeparator):
        def separate_block(self, audio):
            if self.calls:
                raise RuntimeError("model crashed")
            return super().separate_block(audio)

    song = write_wav("song.wav", seconds=10.0, rate=8000)
    with pytest.raises(RuntimeError, match="model crashed"):
        separate_file(song, FailsOnSecondSegment(), OutputSpec(outdir=tmp_path / "out"), segment_seconds=2.0)
    assert not (tmp_path / "out").exists()  # nor the folders the run created for its stems


def test_an_input_with_nan_samples_is_an_error_and_leaves_no_stem(tmp_path) -> None:
    audio = np.zeros((8000 * 5, 2), dtype=np.float32)
    audio[8000 * 3, 0] = np.nan
    sf.write(tmp_path / "nan.wav", audio, 8000, subtype="FLOAT")
    with pytest.raises(SeparationError, match="the input contains NaN or infinite samples"):
        separate_file(tmp_path / "nan.wav", FIRSeparator(), OutputSpec(outdir=tmp_path / "out"), segment_seconds=2.0)
    assert not (tmp_path / "out").exists()


def test_selected_stems_and_templates(tmp_path, write_wav) -> None:
    song = write_wav("my song.wav", seconds=1.0, rate=8000)
    spec = OutputSpec(outdir=tmp_path, template="{model}/{track}_{source}.{ext}", format="flac")
    written = separate_file(song, FIRSeparator(), spec, stems=["vocals"], model_name="fir")
    assert written == {"vocals": tmp_path / "fir/my song_vocals.flac"}
    assert sorted(p.name for p in tmp_path.rglob("*.flac")) == ["my song_vocals.flac"]


@pytest.mark.parametrize(
    ("name", "track"),
    [("Mr. So & So - Skull.stem.mp4", "Mr. So & So - Skull"), ("LOUD.STEM.MP4", "LOUD"), ("a.b.wav", "a.b"),
     ("take.mp4", "take")],
)
def test_the_track_name_drops_the_extension_and_a_stem_mp4_both_suffixes(name: str, track: str) -> None:
    assert OutputSpec().paths(Path(name), ["vocals"], "m") == {"vocals": Path(f"separated/{track}/vocals.wav")}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stems": ["drums"]}, "unknown stem\\(s\\) drums; this model gives vocals, accompaniment"),
        ({"stems": []}, "no stem requested; this model gives vocals, accompaniment \\(None: all of them\\)"),
        ({"format": None}, "cannot write format 'None'; use wav, flac, mp3"),
        ({"template": "same.{ext}"}, "gives every source the same file"),
        ({"template": "../{track}/{source}.{ext}"}, "leads outside the output folder"),
        ({"template": "/tmp/{track}/{source}.{ext}"}, "leads outside the output folder"),
        ({"template": "{track}.{ext}", "stems": ["vocals"], "overwrite": True},
         "the output .*/song.wav is the input itself; choose another -o or --template"),
    ],
)
def test_bad_requests_are_clear_errors(tmp_path, write_wav, kwargs, message) -> None:
    song = write_wav("song.wav", seconds=1.0, rate=8000)
    before = song.read_bytes()
    with pytest.raises(SeparationError, match=message):  # the template is checked as the OutputSpec is made
        output = OutputSpec(outdir=tmp_path, template=kwargs.pop("template", "{track}/{source}.{ext}"),
                            overwrite=kwargs.pop("overwrite", False), format=kwargs.pop("format", "wav"))
        separate_file(song, FIRSeparator(), output=output, **kwargs)
    assert song.read_bytes() == before


@pytest.mark.parametrize("template", ["{song}.{ext}", "{track!r}/{source}.{ext}", "{track.__class__}/{source}.{ext}",
                                      "{track[0]}/{source}.{ext}", "{track/{source}.{ext}", "{track:d}/{source}.{ext}",
                                      "{track:>{source}}.{ext}"])
def test_templates_with_other_fields_or_python_format_syntax_are_refused(template: str) -> None:
    with pytest.raises(SeparationError, match=f"^bad output template '{re.escape(template)}'"):
        OutputSpec(template=template)


def test_the_top_level_api_loads_by_name_and_takes_the_output_options(tmp_path, write_wav) -> None:
    import sepframework

    song = write_wav("song.wav", seconds=1.0, rate=16000)
    paths = sepframework.separate_file(song, model="repet-sim", outdir=tmp_path / "out", format="flac",
                                       subtype="PCM_16", template="{model}/{track}-{source}.{ext}", stems=["vocals"])
    assert paths == {"vocals": tmp_path / "out/repet-sim/song-vocals.flac"}
    info = sf.info(str(paths["vocals"]))
    assert (info.subtype, info.samplerate, info.frames) == ("PCM_16", 16000, 16000)
    with pytest.raises(OutputExistsError):
        sepframework.separate_file(song, model="repet-sim", outdir=tmp_path / "out",
                                   template="{model}/{track}-{source}.{ext}", format="flac", stems="vocals")
    with pytest.raises(SeparationError, match="model must be a name, a folder path or a Separator, not int"):
        sepframework.separate_file(song, model=123)


def test_a_writer_failure_stops_the_run_and_leaves_no_partial_stem(tmp_path, write_wav, monkeypatch) -> None:
    from sepframework.audio.writing import AudioWriter

    written_blocks = []

    def write_then_fail(self, block):
        written_blocks.append(block.shape[1])
        if len(written_blocks) > 2:
            raise OSError("No space left on device")

    monkeypatch.setattr(AudioWriter, "write", write_then_fail)
    song = write_wav("song.wav", seconds=10.0, rate=44100)
    with pytest.raises(OSError, match="No space left"):
        separate_file(song, FIRSeparator(), OutputSpec(outdir=tmp_path / "out"), segment_seconds=2.0)
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []
    assert len(written_blocks) == 3  # the run stopped at the failing write


def test_a_truncated_input_is_an_error_and_leaves_no_partial_stem(tmp_path, write_wav) -> None:
    song = write_wav("song.wav", seconds=10.0, rate=44100)
    data = song.read_bytes()
    song.write_bytes(data[: len(data) // 2])  # the header still states the full length
    with pytest.raises(SeparationError, match="truncated"):
        separate_file(song, FIRSeparator(), OutputSpec(outdir=tmp_path / "out"), segment_seconds=2.0)
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []


def test_an_interrupt_lost_in_a_c_callback_still_stops_the_run(tmp_path, write_wav, monkeypatch) -> None:
    import threading

    from sepframework import interrupts

    monkeypatch.setattr(interrupts, "_requested", threading.Event())
    song = write_wav("song.wav", seconds=10.0, rate=8000)

    class SignalledDuringSecondSegment(FIRSeparator):
        def separate_block(self, audio):
            if len(self.calls) == 1:
                interrupts.request_interrupt()  # as the SIGTERM handler does; its raise got dropped
            return super().separate_block(audio)

    with pytest.raises(KeyboardInterrupt):
        separate_file(song, SignalledDuringSecondSegment(), OutputSpec(outdir=tmp_path / "out"), segment_seconds=2.0)
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []


@pytest.mark.skipif(sys.platform != "linux", reason="file names of arbitrary bytes")
def test_a_file_name_that_is_not_utf8_is_read_and_its_stems_written(tmp_path, write_wav) -> None:
    song = tmp_path / os.fsdecode(b"caf\xe9.wav")  # Latin-1, as old file systems have them
    write_wav("song.wav", seconds=1.0, rate=8000).rename(song)
    paths = separate_file(song, FIRSeparator(), OutputSpec(outdir=tmp_path / "out"))
    assert [path.name for path in paths.values()] == ["vocals.wav", "accompaniment.wav"]
    assert paths["vocals"].parent.name == song.stem and read_audio(paths["vocals"])[0].shape == (2, 8000)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_wav_arriving_through_a_named_pipe_is_read_whole(tmp_path, write_wav) -> None:
    song = write_wav("song.wav", seconds=1.0, rate=8000)
    pipe = tmp_path / "live.wav"
    os.mkfifo(pipe)
    feeder = threading.Thread(target=lambda: pipe.write_bytes(song.read_bytes()))
    feeder.start()
    try:
        paths = separate_file(pipe, FIRSeparator(), OutputSpec(outdir=tmp_path / "out"))
    finally:
        feeder.join(timeout=10)
    vocals, accompaniment = read(paths["vocals"])[0], read(paths["accompaniment"])[0]
    np.testing.assert_allclose(vocals + accompaniment, read(song)[0], atol=1e-6)


def test_a_file_below_1000_hz_is_refused_alike_by_both_ways_of_separating(tmp_path, write_wav) -> None:
    from sepframework.pipeline import separate_file_streaming
    from tests.test_streaming import FixedSplit

    song = write_wav("low.wav", seconds=1.0, rate=800)
    message = "low.wav: its sample rate, 800 Hz, is below the 1000 Hz the framework takes"
    with pytest.raises(SeparationError, match=message):
        separate_file(song, FIRSeparator(), OutputSpec(outdir=tmp_path / "a"))
    with pytest.raises(SeparationError, match=message):
        separate_file_streaming(song, FixedSplit(), OutputSpec(outdir=tmp_path / "b"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
