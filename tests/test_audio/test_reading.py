"""Reading audio: formats, layouts, streaming in blocks, and one-line errors for bad files."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from matplotlib import image

from sepframework.audio import (
    AUDIO_EXTENSIONS,
    AudioError,
    AudioInfo,
    audio_info,
    open_reader,
    read_audio,
    resampled_length,
)
from tests.test_audio.conftest import best_correlation, music


@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_float_wav_reads_back_exactly_with_its_layout(tmp_path, channels, rate) -> None:
    source = music(0.25, rate, channels)
    path = tmp_path / "song.wav"
    sf.write(path, source.T, rate, subtype="FLOAT")

    audio, read_rate = read_audio(path)

    assert read_rate == rate
    assert audio.dtype == np.float32 and audio.flags.c_contiguous
    np.testing.assert_array_equal(audio, source)
    assert audio_info(path) == AudioInfo(
        path=path, sample_rate=rate, channels=channels, frames=source.shape[1],
        duration=source.shape[1] / rate, format="wav", codec="FLOAT",
    )


def test_16_bit_flac_reads_back_exactly(tmp_path) -> None:
    source = np.round(music(0.5, 44100) * 32768) / 32768
    path = tmp_path / "song.flac"
    sf.write(path, source.T, 44100, subtype="PCM_16")

    audio, _ = read_audio(path)

    np.testing.assert_array_equal(audio, source)
    assert (audio_info(path).format, audio_info(path).codec) == ("flac", "PCM_16")


def test_ogg_vorbis_is_read_with_its_exact_length(tmp_path) -> None:
    source = music(1.0, 44100)
    path = tmp_path / "song.ogg"
    sf.write(path, source.T, 44100, format="OGG", subtype="VORBIS")

    audio, rate = read_audio(path)

    assert rate == 44100 and audio.shape == source.shape
    assert best_correlation(audio, source)[0] > 0.99


MP3 = ["-c:a", "libmp3lame", "-b:a", "192k"]
AAC = ["-c:a", "aac", "-b:a", "192k"]


@pytest.mark.parametrize(
    ("name", "codec", "rate", "channels"),
    [("song.mp3", MP3, 44100, 2), ("song.mp3", MP3, 22050, 1), ("song.m4a", AAC, 44100, 2),
     ("song.m4a", AAC, 48000, 6), ("song.m4a", AAC, 8000, 1), ("song.aac", AAC, 44100, 2)],
)
def test_lossy_files_decode_to_the_source(tmp_path, ffmpeg, name, codec, rate, channels) -> None:
    source = music(1.0, rate, channels)
    sf.write(tmp_path / "source.wav", source.T, rate, subtype="FLOAT")
    path = ffmpeg(tmp_path / name, "-i", tmp_path / "source.wav", *codec)

    audio, read_rate = read_audio(path)
    info = audio_info(path)

    assert read_rate == rate and audio.shape[0] == channels
    assert (info.sample_rate, info.channels, info.frames, info.format) == (rate, channels, None, name.split(".")[1])
    # encoders pad to whole codec frames (1152 or 1024 samples): roughly the right duration
    assert abs(audio.shape[1] - source.shape[1]) <= 2048
    correlation, lag = best_correlation(audio, source)
    assert correlation > 0.9 and abs(lag) <= 2048


def test_stem_mp4_gives_its_first_stream_the_mixture(tmp_path, ffmpeg) -> None:
    mixture, other = music(1.0, 44100, seed=1), music(1.0, 44100, seed=2)[::-1] * 0.5
    mixture[:, 22050:] = 0  # only the mixture is silent in its second half
    for name, audio in (("mixture.wav", mixture), ("other.wav", other)):
        sf.write(tmp_path / name, audio.T, 44100, subtype="FLOAT")
    path = ffmpeg(
        tmp_path / "track.stem.mp4", "-i", tmp_path / "mixture.wav", "-i", tmp_path / "other.wav",
        "-map", "0:a", "-map", "1:a", "-c:a", "aac", "-b:a", "192k",
    )

    audio, rate = read_audio(path)

    assert rate == 44100 and audio_info(path).format == "mp4"
    assert best_correlation(audio, mixture)[0] > 0.9
    assert np.abs(audio[:, 26000:40000]).max() < 0.01


@pytest.mark.parametrize("block_frames", [1, 1000, 4096, 100_000])
@pytest.mark.parametrize("name", ["song.wav", "song.m4a"])
def test_streamed_blocks_concatenate_to_the_whole_file(tmp_path, ffmpeg, name, block_frames) -> None:
    sf.write(tmp_path / "song.wav", music(0.5, 16000).T, 16000, subtype="PCM_16")
    path = tmp_path / name
    if name.endswith(".m4a"):
        ffmpeg(path, "-i", tmp_path / "song.wav", "-c:a", "aac")
    whole, _ = read_audio(path)

    with open_reader(path) as reader:
        assert (reader.sample_rate, reader.channels) == (16000, 2)
        blocks = list(reader.blocks(block_frames))

    assert all(block.shape[1] == block_frames for block in blocks[:-1])
    assert 1 <= blocks[-1].shape[1] <= block_frames
    assert all(block.dtype == np.float32 and block.T.flags.c_contiguous for block in blocks)  # interleaved
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), whole)


def test_a_reader_decodes_its_file_once(tmp_path) -> None:
    path = tmp_path / "song.wav"
    sf.write(path, music(0.1, 8000).T, 8000, subtype="FLOAT")
    with open_reader(path) as reader:
        np.testing.assert_array_equal(reader.read(), music(0.1, 8000))
        with pytest.raises(RuntimeError, match="decodes its file once"):
            next(reader.blocks(100))


def test_read_audio_resamples_when_asked(tmp_path) -> None:
    path = tmp_path / "song.wav"
    sf.write(path, music(1.0, 44100).T, 44100, subtype="FLOAT")

    audio, rate = read_audio(path, sample_rate=16000)

    assert rate == 16000 and audio.shape == (2, resampled_length(44100, 44100, 16000)) == (2, 16000)
    assert audio.dtype == np.float32


def _cut_in_half(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "missing.wav"


def _folder(tmp_path: Path) -> Path:
    (tmp_path / "album.wav").mkdir()
    return tmp_path / "album.wav"


def _zero_bytes(tmp_path: Path) -> Path:
    (tmp_path / "empty.wav").touch()
    return tmp_path / "empty.wav"


def _text(tmp_path: Path) -> Path:
    (tmp_path / "notes.wav").write_text("this is not audio\n" * 20)
    return tmp_path / "notes.wav"


def _png(tmp_path: Path) -> Path:
    image.imsave(tmp_path / "cover.png", np.zeros((8, 8)), format="png")
    return (tmp_path / "cover.png").rename(tmp_path / "cover.wav")


def _no_samples(tmp_path: Path) -> Path:
    sf.write(tmp_path / "silent.wav", np.zeros((0, 2), dtype=np.float32), 44100)
    return tmp_path / "silent.wav"


def _cut(name: str, format: str | None = None) -> Callable[[Path], Path]:
    """A maker of a file ``name`` cut in half (``format``: soundfile's, when not the suffix's)."""
    def make(tmp_path: Path) -> Path:
        sf.write(tmp_path / name, music(1.0, 44100).T, 44100, format=format)
        return _cut_in_half(tmp_path / name)
    return make


def _unknown_codec(tmp_path: Path) -> Path:
    data = bytes(16000)
    fmt = struct.pack("<IHHIIHH", 16, 0x1234, 1, 8000, 16000, 2, 16)  # format tag 0x1234: no such codec
    path = tmp_path / "odd.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + fmt + b"data"
                     + struct.pack("<I", len(data)) + data)
    return path


def _cut_flac(tmp_path: Path) -> Path:
    sf.write(tmp_path / "cut.flac", music(1.0, 44100).T, 44100)
    return _cut_in_half(tmp_path / "cut.flac")


def _ogg_cut_in_its_headers(tmp_path: Path) -> Path:
    path = tmp_path / "cut.ogg"
    sf.write(path, music(1.0, 44100).T, 44100)
    path.write_bytes(path.read_bytes()[:1000])
    return path


def _corrupt_flac(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.flac"
    sf.write(path, music(1.0, 44100).T, 44100)
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4000] = bytes(4000)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_missing, "missing.wav: no such file"),
        (_folder, "album.wav: is a folder, not an audio file"),
        (_zero_bytes, "empty.wav: the file is empty (0 bytes)"),
        (_text, "notes.wav: not a readable audio file (invalid data found when processing input)"),
        (_png, "cover.wav: not an audio file (it has no audio stream)"),
        (_no_samples, "silent.wav: contains no audio samples"),
        (_cut("cut.wav"), "cut.wav: truncated audio: the file ends before its data does"),
        (_cut("cut.aiff"), "cut.aiff: truncated audio: the file ends before its data does"),
        (_cut("cut64.wav", "RF64"), "cut64.wav: truncated audio: the file ends before its data does"),
        (_unknown_codec, "odd.wav: not a readable audio file (its codec is unknown to FFmpeg)"),
        (_cut_flac, "cut.flac: corrupt or truncated audio (flac decoder lost sync)"),
        (_ogg_cut_in_its_headers, "cut.ogg: truncated audio (the file ends unexpectedly)"),
        (_corrupt_flac, "corrupt.flac: corrupt or truncated audio ("),
    ],
)
def test_bad_files_raise_one_line_naming_the_file(tmp_path, make, message) -> None:
    path = make(tmp_path)

    with pytest.raises(AudioError) as raised:
        read_audio(path)

    assert str(raised.value).startswith(f"{tmp_path}/{message}")
    assert "\n" not in str(raised.value)


def test_lossy_streams_cut_between_packets_read_up_to_the_cut(tmp_path) -> None:
    """Ogg (like MP3) states no reliable length, so a cut file reads as a shorter one."""
    sf.write(tmp_path / "cut.ogg", music(2.0, 44100).T, 44100)
    audio, _ = read_audio(_cut_in_half(tmp_path / "cut.ogg"))
    assert 0 < audio.shape[1] < 88200


def test_a_stream_changing_rate_and_channels_midway_is_decoded_at_its_stated_ones(tmp_path, ffmpeg) -> None:
    parts = []
    for rate, channels in ((22050, 1), (44100, 2)):
        source = tmp_path / f"{rate}.wav"
        sf.write(source, music(1.0, rate, channels).T, rate)
        parts.append(tmp_path / f"{rate}.mp3")
        ffmpeg(parts[-1], "-i", source, "-write_xing", "0", "-id3v2_version", "0")
    joined = tmp_path / "joined.mp3"
    joined.write_bytes(b"".join(part.read_bytes() for part in parts))
    audio, rate = read_audio(joined)
    first, _ = read_audio(parts[0], 44100)
    assert rate == 44100 and audio.shape[0] == 2
    assert audio.shape[1] == pytest.approx(first.shape[1] + read_audio(parts[1])[0].shape[1], abs=2048)


def test_a_chained_ogg_file_is_read_whole(tmp_path) -> None:
    parts = []
    for seed in (1, 2):
        parts.append(tmp_path / f"{seed}.ogg")
        sf.write(parts[-1], music(1.0, 44100, seed=seed).T, 44100, format="OGG", subtype="VORBIS")
    chained = tmp_path / "chained.ogg"  # as a recorded radio stream: one Ogg stream after another
    chained.write_bytes(b"".join(part.read_bytes() for part in parts))
    audio, rate = read_audio(chained)
    assert rate == 44100 and audio.shape[1] == pytest.approx(2 * 44100, abs=2048)  # libsndfile read the first only
    with open_reader(chained) as whole, open_reader(parts[0]) as single:  # a single stream: libsndfile, exact
        assert (type(whole).__name__, type(single).__name__) == ("_PyAVReader", "_SoundFileReader")


def test_truncated_m4a_is_an_audio_error(tmp_path, ffmpeg) -> None:
    sf.write(tmp_path / "song.wav", music(1.0, 44100).T, 44100)
    for name, options in (("end.m4a", []), ("faststart.m4a", ["-movflags", "+faststart"])):
        path = _cut_in_half(ffmpeg(tmp_path / name, "-i", tmp_path / "song.wav", "-c:a", "aac", *options))
        with pytest.raises(AudioError, match=rf"^{tmp_path}/{name}: (not a readable|corrupt or truncated) audio"):
            read_audio(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file_is_an_audio_error(tmp_path) -> None:
    path = tmp_path / "locked.wav"
    sf.write(path, music(0.1, 8000).T, 8000)
    path.chmod(0)
    with pytest.raises(AudioError, match=r"locked.wav: cannot be opened \(permission denied\)"):
        read_audio(path)


def test_audio_info_reads_headers_without_decoding(tmp_path) -> None:
    path = _cut_flac(tmp_path)  # only decoding finds the damage
    info = audio_info(path)
    assert (info.frames, info.sample_rate, info.channels, info.duration) == (44100, 44100, 2, 1.0)
    with pytest.raises(AudioError, match=r"missing\.wav: no such file"):
        audio_info(tmp_path / "missing.wav")


def test_audio_extensions_cover_the_readable_formats() -> None:
    assert {".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".mp4"} <= AUDIO_EXTENSIONS
    assert all(suffix == suffix.lower() and suffix.startswith(".") for suffix in AUDIO_EXTENSIONS)
