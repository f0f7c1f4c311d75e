"""STFT/iSTFT: round trips, agreement with torch, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sepframework.interfaces import SeparationError
from sepframework.streaming import OverlapAdder
from sepframework.stft import STFT, stft_problem


def _noise(channels: int, length: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((channels, length)).astype(np.float32)


def _torch_stft(audio: np.ndarray, n_fft: int, hop: int, center: bool = True) -> np.ndarray:
    return torch.stft(
        torch.from_numpy(audio),
        n_fft,
        hop,
        window=torch.hann_window(n_fft),
        center=center,
        pad_mode="constant",
        return_complex=True,
    ).numpy()


@pytest.mark.parametrize(
    ("n_fft", "hop"),
    [(1024, 512), (1024, 256), (1024, 128), (1000, 250), (4096, 1024), (15, 5)],
)
@pytest.mark.parametrize("channels", [1, 2])
def test_round_trip_reconstructs(n_fft, hop, channels):
    audio = _noise(channels, 3 * n_fft + 37)
    stft = STFT(n_fft=n_fft, hop_length=hop)
    restored = stft.inverse(stft.forward(audio), audio.shape[1])
    assert restored.dtype == np.float32
    assert restored.shape == audio.shape
    assert np.abs(restored - audio).max() <= 1e-5 * np.abs(audio).max()


@pytest.mark.parametrize(
    ("n_fft", "hop", "length", "center"),
    [
        (1024, 256, 10_001, True),
        (1000, 250, 4_000, True),
        (15, 4, 100, True),
        (64, 16, 1, True),
        (1024, 256, 10_001, False),
        (15, 4, 100, False),
    ],
)
def test_forward_matches_torch(n_fft, hop, length, center):
    audio = _noise(2, length, seed=1)
    stft = STFT(n_fft=n_fft, hop_length=hop, center=center)
    spec = stft.forward(audio)
    expected = _torch_stft(audio, n_fft, hop, center)
    assert spec.dtype == np.complex64
    assert spec.shape == expected.shape == (2, n_fft // 2 + 1, stft.n_frames(length))
    assert np.abs(spec - expected).max() <= 1e-4 * np.abs(expected).max()


@pytest.mark.parametrize(
    ("n_fft", "hop", "length"), [(1024, 256, 9_999), (1000, 250, 4_321), (16, 4, 50)]
)
def test_inverse_matches_torch(n_fft, hop, length):
    rng = np.random.default_rng(2)
    frames = STFT(n_fft=n_fft, hop_length=hop).n_frames(length)
    # An arbitrary spectrogram, not one of a signal, so the overlap-add itself is compared.
    spec = rng.standard_normal((2, n_fft // 2 + 1, frames)) + 1j * rng.standard_normal(
        (2, n_fft // 2 + 1, frames)
    )
    spec = spec.astype(np.complex64)
    expected = torch.istft(
        torch.from_numpy(spec),
        n_fft,
        hop,
        window=torch.hann_window(n_fft),
        center=True,
        length=length,
    ).numpy()
    restored = STFT(n_fft=n_fft, hop_length=hop).inverse(spec, length)
    assert np.abs(restored - expected).max() <= 1e-4 * np.abs(expected).max()


def test_inverse_layout_does_not_change_result():
    stft = STFT(n_fft=256, hop_length=64)
    audio = _noise(2, 2_000)
    spec = stft.forward(audio)
    contiguous = np.ascontiguousarray(spec)
    assert not spec.flags.c_contiguous and contiguous.flags.c_contiguous
    np.testing.assert_array_equal(stft.inverse(contiguous, 2_000), stft.inverse(spec, 2_000))


def test_inverse_leaves_spectrogram_unchanged():
    stft = STFT(n_fft=256, hop_length=64)
    spec = stft.forward(_noise(2, 3_000))
    before = spec.copy()
    stft.inverse(spec, 3_000)
    np.testing.assert_array_equal(spec, before)


@pytest.mark.parametrize("length", [1, 2, 511, 512, 513, 44_101])
def test_n_frames_matches_torch(length):
    stft = STFT(n_fft=1024, hop_length=256)
    expected = _torch_stft(np.zeros((1, length), np.float32), 1024, 256).shape[-1]
    assert stft.n_frames(length) == expected


def test_one_sample_round_trip():
    stft = STFT(n_fft=1024, hop_length=256)
    audio = np.array([[0.5], [-0.25]], dtype=np.float32)
    spec = stft.forward(audio)
    assert spec.shape == (2, 513, 1)
    np.testing.assert_allclose(stft.inverse(spec, 1), audio, rtol=1e-6)


def test_empty_input_gives_zero_frames_and_back():
    stft = STFT(n_fft=1024, hop_length=256)
    spec = stft.forward(np.zeros((2, 0), np.float32))
    assert spec.shape == (2, 513, 0)
    assert stft.inverse(spec, 0).shape == (2, 0)


def test_samples_past_the_last_frame_are_zero():
    stft = STFT(n_fft=64, hop_length=16)
    audio = _noise(1, 200)
    restored = stft.inverse(stft.forward(audio), 300)
    np.testing.assert_allclose(restored[:, :200], audio, atol=1e-5)
    last_covered = (stft.n_frames(200) - 1) * 16 + 64 - 32
    assert np.all(restored[:, last_covered:] == 0)


def test_float64_input_is_accepted_and_not_modified():
    audio = np.random.default_rng(3).standard_normal((2, 5_000))
    before = audio.copy()
    stft = STFT(n_fft=512, hop_length=128)
    spec = stft.forward(audio)
    np.testing.assert_array_equal(audio, before)
    np.testing.assert_allclose(spec, stft.forward(audio.astype(np.float32)))


def test_custom_window_array_matches_named_window():
    audio = _noise(1, 3_000)
    named = STFT(n_fft=256, hop_length=64, window="hamming")
    window = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(256) / 256)
    custom = STFT(n_fft=256, hop_length=64, window=window)
    np.testing.assert_allclose(custom.forward(audio), named.forward(audio), atol=1e-5)
    np.testing.assert_allclose(custom.inverse(custom.forward(audio), 3_000), audio, atol=1e-5)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: STFT(n_fft=1).forward(_noise(1, 10)), "n_fft"),
        (lambda: STFT(n_fft=256, hop_length=512), "hop_length"),
        (lambda: STFT(n_fft=256, hop_length=0), "hop_length"),
        (lambda: STFT(window="no-such-window"), "no-such-window"),
        (lambda: STFT(n_fft=256, hop_length=64, window=np.ones(100)), "window"),
        (lambda: STFT().forward(np.zeros(1000, np.float32)), "(1000,)"),
        (lambda: STFT().inverse(np.zeros((1, 100, 4), np.complex64), 10), "(1, 100, 4)"),
        (lambda: STFT().inverse(np.zeros((1, 513, 4), np.complex64), -1), "-1"),
    ],
)
def test_mistakes_raise_separation_error(make, message):
    with pytest.raises(SeparationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


@pytest.mark.parametrize("n_fft", [16, 17])
def test_every_accepted_centred_hop_reconstructs_every_sample_of_every_length(n_fft):
    accepted = []
    for hop in range(1, n_fft + 1):
        problem = stft_problem(n_fft, hop)
        if problem is not None:
            with pytest.raises(SeparationError) as error:
                STFT(n_fft, hop)
            assert str(error.value) == problem
            continue
        accepted.append(hop)
        stft = STFT(n_fft, hop)
        for length in range(1, 3 * n_fft):
            audio = _noise(1, length, seed=length)
            np.testing.assert_allclose(
                stft.inverse(stft.forward(audio), length), audio, atol=1e-4, err_msg=f"hop {hop}"
            )
    assert accepted == list(range(1, n_fft // 2 + 2))


@pytest.mark.parametrize(
    ("n_fft", "hop", "window", "center", "message"),
    [
        (1024, 768, "hann", True, "hop_length=768 must be at most n_fft // 2 + 1 = 513 for n_fft=1024: "
                                  "a longer hop leaves the last samples of some signals in no frame"),
        (256, 300, "boxcar", False, "hop_length=300 must be at most n_fft=256: a longer hop leaves samples "
                                    "between frames"),
        (1024, 1024, "hann", False, "hop_length=1024 with n_fft=1024 and the 'hann' window cannot be inverted: "
                                    "its squared windows overlap-add to as little as 0 of their largest sum "
                                    "(at least 0.001 is needed)"),
        (64, 63, "hann", False, "hop_length=63 with n_fft=64 and the 'hann' window cannot be inverted: its "
                                "squared windows overlap-add to as little as 5.8e-06 of their largest sum "
                                "(at least 0.001 is needed)"),
        (8, 4, np.array([1, 1, 1, 1e-3, 1, 1, 1, 0]), True,
         "hop_length=4 with n_fft=8 and the given window cannot be inverted: its squared windows "
         "overlap-add to as little as 5e-07 of their largest sum (at least 0.001 is needed)"),
    ],
)
def test_settings_that_cannot_be_inverted_are_refused(n_fft, hop, window, center, message):
    assert stft_problem(n_fft, hop, window, center) == message
    with pytest.raises(SeparationError) as error:
        STFT(n_fft, hop, window, center)
    assert str(error.value) == message


@pytest.mark.parametrize(("n_fft", "hop"), [(1024, 256), (1024, 512), (1024, 1024)])
def test_uncentred_frames_reconstruct_between_their_tapered_edges(n_fft, hop):
    stft = STFT(n_fft, hop, window="boxcar" if hop == n_fft else "hann", center=False)
    audio = _noise(2, 5_375)
    restored = stft.inverse(stft.forward(audio), audio.shape[1])
    end = (stft.n_frames(audio.shape[1]) - 1) * hop + n_fft
    inner = slice(0 if hop == n_fft else 16, end - (0 if hop == n_fft else 16))
    np.testing.assert_allclose(restored[:, inner], audio[:, inner], atol=1e-4)
    assert np.all(restored[:, end:] == 0)


def test_a_scaled_window_inverts_offline_and_streaming_like_the_unscaled_one():
    stft = STFT(256, 64, window=1e-6 * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(256) / 256)))
    audio = _noise(2, 3_000)
    spec = stft.forward(audio)
    np.testing.assert_allclose(stft.inverse(spec, 3_000), audio, atol=1e-4)
    adder = OverlapAdder(stft, channels=2)
    streamed = np.concatenate([adder.push(spec[:, :, :20]), adder.push(spec[:, :, 20:]), adder.finish(3_000)], axis=1)
    np.testing.assert_allclose(streamed, audio, atol=1e-4)
