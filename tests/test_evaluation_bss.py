"""The fast BSS Eval against museval on real music (MUSDB18 sample, MIR-1K clips)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
import soundfile as sf

from sepframework.evaluation.bss_fast import BssEval, _SymmetricSolver
from sepframework.evaluation.bss_museval import MusevalBssEval
from sepframework.evaluation.correlation import Tiling, accumulate
from sepframework.interfaces import SeparationError
from tests.conftest import mir1k_dir

TOLERANCE_DB = 0.01


def musdb_references(seconds: float) -> tuple[np.ndarray, int]:
    """(vocals, accompaniment) references, (2, 2, samples) float32, from the start of the
    7-s MUSDB18 sample shipped with stempeg (looped when ``seconds`` is longer), and its rate."""
    stempeg = pytest.importorskip("stempeg")
    stems, rate = stempeg.read_stems(stempeg.example_stem_path())
    stems = stems.transpose(0, 2, 1)
    samples = int(seconds * rate)
    stems = np.tile(stems, -(-samples // stems.shape[-1]))[..., :samples]
    return np.stack([stems[4], stems[1] + stems[2] + stems[3]]).astype(np.float32), rate


@pytest.fixture(scope="module")
def musdb_sample() -> tuple[np.ndarray, int]:
    """The first 4 s of the MUSDB18 sample; the vocals are nearly silent from 2 to 3.5 s."""
    return musdb_references(4)


@pytest.fixture(scope="module")
def mir1k_clip() -> np.ndarray:
    """One MIR-1K clip as mono (vocals, accompaniment) references, (2, 1, samples)."""
    path = mir1k_dir() / "train" / "abjones_2_01.flac"
    if not path.is_file():
        pytest.skip(f"MIR-1K data not found at {path.parent} (set SEP_MIR1K)")
    audio, _ = sf.read(path, dtype="float32", always_2d=True)
    return np.stack([audio[:, 1:].T, audio[:, :1].T])


def leaky_estimate(references: np.ndarray, rate: int, seed: int = 0) -> np.ndarray:
    """A realistic imperfect separation: vocals with 20 % low-passed accompaniment leaking in
    and a little noise; accompaniment = mixture - vocals estimate."""
    vocals, accompaniment = references.astype(np.float64)
    b, a = scipy.signal.butter(4, 3000 / (rate / 2))
    leak = scipy.signal.lfilter(b, a, accompaniment, axis=-1)
    noise = 0.01 * np.random.default_rng(seed).standard_normal(vocals.shape)
    vocal_estimate = 0.9 * vocals + 0.2 * leak + noise
    return np.stack([vocal_estimate, vocals + accompaniment - vocal_estimate])


def masked_estimate(references: np.ndarray) -> np.ndarray:
    """A mixture-scaled (soft-mask) separation, as a spectrogram model makes: the mixture STFT
    weighted by smoothed power ratios of the sources."""
    _, _, spectra = scipy.signal.stft(references.astype(np.float64), nperseg=1024)
    power = scipy.ndimage.uniform_filter(np.abs(spectra) ** 2, size=(1, 1, 5, 5))
    masks = power / (power.sum(axis=0, keepdims=True) + 1e-12)
    _, estimates = scipy.signal.istft(masks * spectra.sum(axis=0), nperseg=1024)
    return estimates[..., : references.shape[-1]]


def assert_agree(fast: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> None:
    assert fast.keys() == reference.keys()
    for metric in reference:
        np.testing.assert_array_equal(np.isnan(fast[metric]), np.isnan(reference[metric]), err_msg=metric)
        assert np.nanmax(np.abs(fast[metric] - reference[metric])) < TOLERANCE_DB, metric


@pytest.mark.parametrize("window_hop", [(1.0, 1.0), (1.5, 0.75)], ids=["1s", "1.5s-overlap"])
def test_v4_agrees_with_museval_on_music(musdb_sample, window_hop):
    references, rate = musdb_sample
    estimates = leaky_estimate(references, rate)
    window, hop = int(window_hop[0] * rate), int(window_hop[1] * rate)
    fast = BssEval(references).images(estimates, window, hop)
    reference = MusevalBssEval(references).images(estimates, window, hop)
    assert fast["SDR"].shape == (2, (references.shape[-1] - window + hop) // hop)
    assert_agree(fast, reference)
    # the leak makes the vocals' interference worst where they are quiet (2 to 3.5 s)
    assert fast["SIR"][0].min() < fast["SIR"][0].max() - 10


def test_v4_silent_windows_are_nan_as_in_museval(musdb_sample):
    references, rate = musdb_sample
    references = references.copy()
    references[0, :, rate : 2 * rate] = 0  # the vocals stop for the second window
    estimates = leaky_estimate(references, rate)
    fast = BssEval(references).images(estimates, rate, rate)
    reference = MusevalBssEval(references).images(estimates, rate, rate)
    assert np.isnan(fast["SDR"][:, 1]).all() and not np.isnan(np.delete(fast["SDR"], 1, axis=1)).any()
    assert_agree(fast, reference)


def test_v3_sources_agree_with_museval_on_stereo_music(musdb_sample):
    references, rate = musdb_sample
    estimates = leaky_estimate(references, rate)
    assert_agree(BssEval(references).sources(estimates), MusevalBssEval(references).sources(estimates))


def test_v3_sources_agree_with_museval_on_mir1k(mir1k_clip):
    fast, reference = BssEval(mir1k_clip), MusevalBssEval(mir1k_clip)
    estimates = masked_estimate(mir1k_clip)
    assert_agree(fast.sources(estimates), reference.sources(estimates))
    mixture = np.broadcast_to(mir1k_clip.sum(axis=0), mir1k_clip.shape)  # the NSDR baseline
    fast_mixture, reference_mixture = fast.sources(mixture), reference.sources(mixture)
    assert np.abs(fast_mixture["SDR"] - reference_mixture["SDR"]).max() < TOLERANCE_DB
    assert np.abs(fast_mixture["SIR"] - reference_mixture["SIR"]).max() < TOLERANCE_DB


def test_v4_agrees_with_museval_on_mir1k(mir1k_clip):
    estimates = masked_estimate(mir1k_clip)
    assert_agree(BssEval(mir1k_clip).images(estimates, 16000, 16000), MusevalBssEval(mir1k_clip).images(estimates, 16000, 16000))


def test_perfect_estimate_scores_very_high(musdb_sample):
    references, rate = musdb_sample
    evaluator = BssEval(references[..., : 2 * rate])
    assert np.all(evaluator.images(references[..., : 2 * rate], rate, rate)["SDR"] > 100)
    assert np.all(evaluator.sources(references[..., : 2 * rate])["SDR"] > 100)


def test_estimates_must_match_the_references():
    rng = np.random.default_rng(0)
    evaluator = BssEval(rng.standard_normal((2, 1, 4000)))
    with pytest.raises(SeparationError, match="shape"):
        evaluator.sources(rng.standard_normal((2, 1, 3999)))
    with pytest.raises(SeparationError, match="shape"):
        BssEval(rng.standard_normal((2, 4000)))


@pytest.mark.parametrize("n_samples", [300, 15_000, 40_000])
def test_tiled_correlations_equal_direct_sums(n_samples):
    rng = np.random.default_rng(n_samples)
    signals, references = rng.standard_normal((2, n_samples)), rng.standard_normal((3, n_samples))
    max_lag = 511
    tiling = Tiling.plan(n_samples, max_lag)
    cross = np.zeros((2, 3, tiling.n_fft // 2 + 1), dtype=np.complex128)
    for tiles in tiling.chunks(5):
        accumulate(tiling.spectra(signals, tiles), tiling.spectra(references, tiles), cross)
    got = tiling.lags(cross, signals, references)
    for d in range(-max_lag, max_lag + 1):  # sum_n signals[n] references[n + d]
        overlap = max(n_samples - abs(d), 0)
        x = signals[:, max(-d, 0) : max(-d, 0) + overlap]
        r = references[:, max(d, 0) : max(d, 0) + overlap]
        np.testing.assert_allclose(got[:, :, d + max_lag], x @ r.T, atol=1e-9 * n_samples)


def test_gram_matrices_that_rounding_made_indefinite_are_solved_by_least_squares():
    matrix = np.array([[1.0, 1.0], [1.0, 1.0 - 1e-9]])  # Cholesky fails
    solution = _SymmetricSolver.of(matrix)(np.array([[2.0], [2.0]]))
    np.testing.assert_allclose(matrix @ solution, [[2.0], [2.0]], atol=1e-6)


def test_stems_with_identical_channels_agree_with_museval():
    """Dual-mono stems (centred vocals, mono mixes) make the Gram matrices singular: the
    directions at the rounding floor must not spoil SIR and SAR."""
    rng = np.random.default_rng(0)
    rate, n = 8000, 8000 * 3
    mono = 0.1 * rng.standard_normal((2, 1, n))  # vocals, accompaniment
    mono_estimates = mono + 0.3 * mono[::-1] + 0.05 * rng.standard_normal(mono.shape)
    references, estimates = np.repeat(mono, 2, axis=1), np.repeat(mono_estimates, 2, axis=1)
    assert_agree(BssEval(references).images(estimates, rate, rate), MusevalBssEval(references).images(estimates, rate, rate))
    assert_agree(BssEval(references).sources(estimates), MusevalBssEval(references).sources(estimates))
