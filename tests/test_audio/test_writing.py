"""Writing audio: exact round trips, safe clipping, MP3, and atomic, non-clobbering writes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import soundfile as sf

from sepframework.audio import (
    SUPPORTED_WRITE_FORMATS,
    AudioError,
    AudioWriter,
    ClippingWarning,
    OutputExistsError,
    read_audio,
    write_audio,
)
from tests.test_audio.conftest import best_correlation, music


def test_float_wav_is_the_default_and_keeps_peaks_above_full_scale(tmp_path) -> None:
    source = music(0.5, 44100) * 2.5  # peaks near 1.5, as separated stems can have
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing clipped, nothing to warn about
        path = write_audio(tmp_path / "vocals.wav", source, 44100)

    audio, rate = read_audio(path)

    assert sf.info(path).subtype == "FLOAT" and rate == 44100
    np.testing.assert_array_equal(audio, source)


def test_float_wav_is_plain_header_and_samples_without_a_peak_chunk(tmp_path) -> None:
    source = music(0.5, 44100)
    path = write_audio(tmp_path / "vocals.wav", source, 44100)

    data = path.read_bytes()

    assert b"PEAK" not in data
    # the samples, interleaved little-endian float32, fill the file after the header
    samples = np.ascontiguousarray(source.T).astype("<f4").tobytes()
    assert data.endswith(samples) and len(data) - len(samples) < 100


@pytest.mark.parametrize(("subtype", "full_scale"), [("PCM_16", 1 << 15), ("PCM_24", 1 << 23)])
@pytest.mark.parametrize("format", ["wav", "flac"])
def test_integer_subtypes_round_to_the_nearest_step(tmp_path, format, subtype, full_scale) -> None:
    top = (full_scale - 1) / full_scale  # the largest value an integer sample holds
    source = np.random.default_rng(0).uniform(-1, top, (2, 20000)).astype(np.float32)
    path = write_audio(tmp_path / f"vocals.{format}", source, 44100, subtype=subtype)

    audio, _ = read_audio(path)

    assert sf.info(path).subtype == subtype
    assert np.abs(audio - source).max() <= 0.5 / full_scale
    # content already on the grid comes back exactly
    on_grid = np.round(source * full_scale) / full_scale
    write_audio(path, on_grid, 44100, subtype=subtype, overwrite=True)
    np.testing.assert_array_equal(read_audio(path)[0], on_grid)


def test_flac_defaults_to_24_bit(tmp_path) -> None:
    path = write_audio(tmp_path / "vocals.flac", music(0.1, 8000), 8000)
    assert sf.info(path).subtype == "PCM_24"


@pytest.mark.parametrize("format", ["wav", "flac"])
def test_integer_formats_clip_instead_of_wrapping(tmp_path, format) -> None:
    source = np.array([[1.5, -1.5, 1.0, -1.0, 40000.0, -40000.0]], dtype=np.float32)
    message = rf"loud.{format}: 4 samples beyond full scale were clipped to fit PCM_16, so the stems no longer add up"
    with pytest.warns(ClippingWarning, match=message):
        path = write_audio(tmp_path / f"loud.{format}", source, 8000, subtype="PCM_16")

    audio, _ = read_audio(path)

    top, bottom = 32767 / 32768, -1.0
    np.testing.assert_array_equal(audio, [[top, bottom, top, bottom, top, bottom]])


@pytest.mark.parametrize("backend", ["soundfile", "pyav"])
@pytest.mark.parametrize("channels", [1, 2])
def test_mp3_is_written_at_320_kbps_by_either_encoder(tmp_path, monkeypatch, backend, channels) -> None:
    if backend == "pyav":  # as with a libsndfile built without MPEG support
        monkeypatch.setattr(sf, "available_formats", lambda: {"WAV": "WAV (Microsoft)"})
    source = music(2.0, 44100, channels)
    path = write_audio(tmp_path / "vocals.mp3", source, 44100)

    audio, rate = read_audio(path)

    assert rate == 44100 and audio.shape[0] == channels
    assert abs(audio.shape[1] - source.shape[1]) <= 1152
    correlation, lag = best_correlation(audio, source)
    assert correlation > 0.99 and abs(lag) <= 1152
    bit_rate = path.stat().st_size * 8 / 2.0
    assert 300_000 < bit_rate < 340_000


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"format": "ogg"}, "cannot write format 'ogg'; use wav, flac, mp3"),
        ({"subtype": "PCM_8"}, "subtype 'PCM_8' is not offered for wav output; use FLOAT, PCM_24, PCM_16"),
        ({"format": "flac", "subtype": "FLOAT"}, "subtype 'FLOAT' is not offered for flac output; use PCM_24, PCM_16"),
        ({"format": "mp3", "subtype": "PCM_16"}, "mp3 output takes no subtype, got 'PCM_16'"),
        ({"format": "mp3", "channels": 6}, "mp3 holds at most 2 channels, not 6; use wav"),
        ({"format": "mp3", "sample_rate": 96000}, "mp3 cannot store 96000 Hz (only 8000, 11025, "),
        ({"format": "flac", "channels": 9}, "flac holds at most 8 channels, not 9; use wav"),
    ],
)
def test_unwritable_requests_are_one_line_errors(tmp_path, arguments, message) -> None:
    arguments = {"sample_rate": 44100, "channels": 2, **arguments}
    path = tmp_path / "out" / "vocals.x"

    with pytest.raises(AudioError) as raised, AudioWriter(path, **arguments):
        pass

    assert str(raised.value).startswith(f"{path}: {message}")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_supported_formats_list_their_default_subtype_first() -> None:
    assert dict(SUPPORTED_WRITE_FORMATS) == {"wav": ("FLOAT", "PCM_24", "PCM_16"), "flac": ("PCM_24", "PCM_16"), "mp3": ()}


def test_blocks_written_one_by_one_equal_the_whole(tmp_path) -> None:
    source = music(1.0, 16000, 3)
    path = tmp_path / "deep" / "er" / "vocals.wav"  # parent folders are created

    with AudioWriter(path, 16000, 3) as writer:
        for start, stop in ((0, 0), (0, 1), (1, 5000), (5000, 16000)):
            writer.write(source[:, start:stop])

    np.testing.assert_array_equal(read_audio(path)[0], source)


def test_data_goes_to_a_hidden_temporary_file_until_the_end(tmp_path) -> None:
    path = tmp_path / "vocals.wav"
    with AudioWriter(path, 8000, 1) as writer:
        writer.write(np.zeros((1, 100), dtype=np.float32))
        (temporary,) = tmp_path.iterdir()
        assert re.fullmatch(r"\.vocals\.wav\.[0-9a-f]{8}\.part", temporary.name) and not path.exists()
    assert list(tmp_path.iterdir()) == [path]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd to count open files")
@pytest.mark.parametrize("format", ["wav", "flac", "mp3"])
def test_no_file_descriptor_stays_open(tmp_path, format) -> None:
    """The writer writes through the descriptor that created its temporary file and
    closes it after a write, an interruption, or an encoder that refuses to open."""
    open_before = len(os.listdir("/proc/self/fd"))
    with AudioWriter(tmp_path / f"done.{format}", 44100, 2, format=format) as writer:
        writer.write(music(0.2, 44100))
    with pytest.raises(RuntimeError), AudioWriter(tmp_path / f"interrupted.{format}", 44100, 2, format=format):
        raise RuntimeError("model crashed")
    with pytest.raises(AudioError), AudioWriter(tmp_path / f"refused.{format}", 0, 1, format=format):
        pass

    assert len(os.listdir("/proc/self/fd")) == open_before
    assert [path.name for path in tmp_path.iterdir()] == [f"done.{format}"]


@pytest.mark.parametrize("interruption", [RuntimeError("model crashed"), KeyboardInterrupt()])
def test_an_interrupted_write_leaves_no_file_behind(tmp_path, interruption) -> None:
    with pytest.raises(type(interruption)), AudioWriter(tmp_path / "vocals.flac", 8000, 2, format="flac") as writer:
        writer.write(music(0.5, 8000))
        raise interruption
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_removes_the_folders_it_created_and_only_those(tmp_path) -> None:
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept/other.txt").write_text("not ours")
    for path in (tmp_path / "new/song/vocals.wav", tmp_path / "kept/song/vocals.wav"):
        with pytest.raises(RuntimeError), AudioWriter(path, 8000, 1) as writer:
            writer.write(music(0.1, 8000)[:1])
            raise RuntimeError("model crashed")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["kept", "kept/other.txt"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file size limit")
def test_a_failed_write_names_the_system_cause(tmp_path) -> None:
    script = f"""
import resource, signal
import numpy as np
from sepframework.audio import AudioError, AudioWriter
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an over-long write fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
try:
    with AudioWriter({str(tmp_path / "vocals.wav")!r}, 8000, 1) as writer:
        writer.write(np.zeros((1, 80_000), dtype=np.float32))
except AudioError as error:
    print(error)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == f"{tmp_path / 'vocals.wav'}: cannot write (file too large)", result.stderr
    assert list(tmp_path.iterdir()) == []


def test_existing_files_are_kept_unless_overwrite(tmp_path) -> None:
    path = tmp_path / "vocals.wav"
    path.write_bytes(b"keep me")

    with pytest.raises(OutputExistsError) as raised:
        write_audio(path, music(0.1, 8000), 8000)

    assert str(raised.value) == f"{path} already exists (use --overwrite, or overwrite=True in Python, to replace)"
    assert path.read_bytes() == b"keep me"
    write_audio(path, music(0.1, 8000), 8000, overwrite=True)
    assert read_audio(path)[0].shape == (2, 800)


def test_a_file_appearing_during_the_write_is_not_replaced(tmp_path) -> None:
    path = tmp_path / "vocals.wav"
    with pytest.raises(OutputExistsError, match=r"vocals\.wav already exists"), AudioWriter(path, 8000, 1) as writer:
        writer.write(np.zeros((1, 100), dtype=np.float32))
        path.write_bytes(b"written by someone else")
    assert path.read_bytes() == b"written by someone else"
    assert list(tmp_path.iterdir()) == [path]


def test_a_folder_or_file_in_the_way_is_an_error(tmp_path) -> None:
    (tmp_path / "vocals.wav").mkdir()
    with pytest.raises(AudioError, match=r"vocals.wav: is a folder, cannot write audio there"):
        AudioWriter(tmp_path / "vocals.wav", 8000, 1, overwrite=True)
    (tmp_path / "song").write_bytes(b"")
    with pytest.raises(AudioError) as raised, AudioWriter(tmp_path / "song/vocals.wav", 8000, 1):
        pass
    assert str(raised.value) == f"{tmp_path}/song/vocals.wav: cannot write ({tmp_path}/song is a file, not a folder)"


def test_write_audio_takes_the_format_from_the_suffix(tmp_path) -> None:
    path = write_audio(tmp_path / "mono.FLAC", music(0.1, 8000, 1)[0], 8000)
    assert sf.info(path).format == "FLAC" and sf.info(path).channels == 1
    with pytest.raises(AudioError, match=r"vocals.aiff: cannot tell the audio format from the suffix; use wav, flac, mp3"):
        write_audio(tmp_path / "vocals.aiff", music(0.1, 8000), 8000)


def test_blocks_of_the_wrong_shape_are_refused(tmp_path) -> None:
    expected = r"expected a block shaped \(2, samples\), got \(1, 10\)"
    with AudioWriter(tmp_path / "vocals.wav", 8000, 2) as writer, pytest.raises(ValueError, match=expected):
        writer.write(np.zeros((1, 10)))


@pytest.mark.parametrize("name", ["é" * 120 + "-vocals.wav", "a" + "é" * 120 + "-vocals.wav"])
def test_a_file_name_near_the_longest_allowed_is_written(tmp_path, name: str) -> None:
    path = tmp_path / name  # 251 or 252 bytes: the temporary file's name must stay within 255, and UTF-8
    with AudioWriter(path, 8000, 1) as writer:
        writer.write(np.full((1, 100), 0.25, dtype=np.float32))
        (temporary,) = tmp_path.iterdir()
        assert len(os.fsencode(temporary.name)) <= 255 and temporary.name.encode("utf-8")
    assert os.listdir(tmp_path) == [path.name] and sf.read(path)[0].shape == (100,)
