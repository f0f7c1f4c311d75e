"""Ratio masks and their application to mixture spectrograms."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sepframework.interfaces import SeparationError
from sepframework.masks import apply_masks, ratio_masks
from sepframework.stft import STFT


def _magnitudes(sources: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.abs(np.random.default_rng(seed).standard_normal((sources, *shape))).astype(np.float32)


@pytest.mark.parametrize("power", [1.0, 2.0, 1.5])
@pytest.mark.parametrize("sources", [1, 2, 4])
def test_ratio_masks_follow_the_formula_and_sum_to_one(power, sources):
    estimates = _magnitudes(sources, (2, 33, 20))
    eps = 1e-3
    masks = ratio_masks(estimates, power=power, eps=eps)
    weights = estimates.astype(np.float64) ** power + eps
    assert masks.dtype == np.float32 and masks.shape == estimates.shape
    np.testing.assert_allclose(masks, weights / weights.sum(axis=0), rtol=1e-5)
    np.testing.assert_allclose(masks.sum(axis=0), 1.0, rtol=1e-6)


def test_silence_gives_equal_masks_without_nan():
    masks = ratio_masks(np.zeros((4, 3, 5, 7), np.float32))
    assert not np.isnan(masks).any()
    np.testing.assert_allclose(masks, 0.25)


@pytest.mark.parametrize(
    ("magnitude", "dtype", "power"),
    [(1e20, np.float32, 2.0), (3e38, np.float32, 1.0), (1e10, np.float32, 7.5), (1e39, np.float64, 1.0),
     (1e200, np.float64, 2.0)],
)
def test_huge_magnitudes_give_masks_in_the_unit_interval_that_sum_to_one(magnitude, dtype, power):
    shares = np.array([[1.0, 0.5, 0.0, 0.0], [0.25, 1.0, 1.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        masks = ratio_masks((magnitude * shares).astype(dtype), power=power)
    weights = shares**power
    expected = np.where(weights.sum(axis=0) > 0, weights / np.maximum(weights.sum(axis=0), 1e-300), 0.5)
    np.testing.assert_allclose(masks, expected, rtol=1e-6)


def test_the_smallest_eps_gives_equal_masks_on_silence():
    masks = ratio_masks(np.zeros((2, 3), np.float32), eps=float(np.finfo(np.float32).tiny))
    np.testing.assert_array_equal(masks, 0.5)


def test_ratio_masks_keep_the_layout_of_transposed_estimates():
    estimates = _magnitudes(2, (2, 40, 17))
    transposed = np.ascontiguousarray(estimates.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    masks = ratio_masks(transposed, power=2.0)
    assert masks.strides == transposed.strides
    np.testing.assert_array_equal(masks, ratio_masks(estimates, power=2.0))


def test_masks_of_the_mixtures_own_sources_reconstruct_them():
    stft = STFT(n_fft=512, hop_length=128)
    rng = np.random.default_rng(1)
    mixture_audio = rng.standard_normal((2, 8_000)).astype(np.float32)
    mixture = stft.forward(mixture_audio)
    # Sources that split the mixture in every bin, in the shares given by ``shares``.
    shares = rng.uniform(size=(3, *mixture.shape)).astype(np.float32)
    shares /= shares.sum(axis=0)
    sources = shares * mixture
    masks = ratio_masks(np.abs(sources), eps=1e-12)
    separated = apply_masks(mixture, masks)
    assert separated.dtype == np.complex64
    np.testing.assert_allclose(separated, sources, atol=1e-5 * np.abs(mixture).max())
    restored = sum(stft.inverse(source, 8_000) for source in separated)
    np.testing.assert_allclose(restored, mixture_audio, atol=1e-4)


def test_apply_masks_clips_to_unit_interval():
    mixture = np.array([1 + 2j, -3j, 4.0], dtype=np.complex64)
    masks = np.array([[1.5, -0.5, 0.25], [0.5, 2.0, -1.0]], dtype=np.float32)
    expected = np.array([[1 + 2j, 0, 1.0], [0.5 + 1j, -3j, 0]], dtype=np.complex64)
    np.testing.assert_array_equal(apply_masks(mixture, masks), expected)


def test_apply_masks_keeps_the_layout_of_the_mixture():
    mixture = STFT(n_fft=256, hop_length=64).forward(np.ones((2, 3_000), np.float32))
    masks = ratio_masks(_magnitudes(2, mixture.shape))
    separated = apply_masks(mixture, masks)
    assert separated[0].strides == mixture.strides
    np.testing.assert_allclose(separated, masks * mixture[None], rtol=1e-6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ratio_masks(np.ones(5)), r"\(5,\)"),
        (lambda: ratio_masks(np.ones((2, 5)), power=0), "power"),
        (lambda: ratio_masks(np.ones((2, 5)), eps=0), "eps"),
        (lambda: ratio_masks(np.ones((2, 5)), eps=1e-39), r"eps must be a finite number >= 1\.175e-38 "
                                                          r"\(the smallest normal float32\), got 1e-39"),
        (lambda: ratio_masks(np.ones((2, 5)), eps=np.inf), "got inf"),
        (lambda: ratio_masks(np.ones((2, 5), np.complex64)), "complex64"),
        (lambda: apply_masks(np.ones((3, 4), np.complex64), np.ones((2, 4, 3))), r"\(2, 4, 3\)"),
    ],
)
def test_mistakes_raise_separation_error(call, message):
    with pytest.raises(SeparationError, match=message):
        call()
