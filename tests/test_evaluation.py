"""Evaluators (v4, gnsdr, sisdr), their input checks, and the aggregation of tracks."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from sepframework.evaluation import (
    GNSDR,
    SISDR,
    BssEvalV4,
    LengthWeightedMeans,
    MeanOverTracks,
    MedianOverTracks,
    get_evaluator,
    si_sdr,
)
from sepframework.evaluation.bss_fast import BssEval
from sepframework.interfaces import SeparationError
from tests.conftest import mir1k_dir

RATE = 8000


def noisy_track(seconds: float = 2.0, channels: int = 1, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Two random-phase 'sources' and estimates with cross-talk and noise: (references, estimates)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    vocals = np.convolve(rng.standard_normal(n + 63), np.hanning(64), "valid")[None].repeat(channels, 0)
    vocals /= np.std(vocals)
    accompaniment = rng.standard_normal((channels, n))
    references = {"vocals": vocals.astype(np.float32), "accompaniment": accompaniment.astype(np.float32)}
    estimates = {
        "vocals": (vocals + 0.1 * accompaniment + 0.05 * rng.standard_normal((channels, n))).astype(np.float32),
        "accompaniment": (accompaniment + 0.2 * vocals).astype(np.float32),
    }
    return references, estimates


@pytest.fixture(scope="module")
def mir1k_track() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One MIR-1K clip (mono sources) and a realistic estimate: vocals with some
    accompaniment leaking in, accompaniment = mixture - vocals estimate."""
    path = mir1k_dir() / "train" / "amy_4_01.flac"
    if not path.is_file():
        pytest.skip(f"MIR-1K data not found at {path.parent} (set SEP_MIR1K)")
    audio, _ = sf.read(path, dtype="float32", always_2d=True)
    accompaniment, vocals = audio[:, :1].T, audio[:, 1:].T
    vocal_estimate = 0.85 * vocals + 0.25 * np.roll(accompaniment, 40, axis=-1)
    return (
        {"vocals": vocals, "accompaniment": accompaniment},
        {"vocals": vocal_estimate, "accompaniment": vocals + accompaniment - vocal_estimate},
    )


# ---------------------------------------------------------------- factory and input checks


def test_get_evaluator_builds_each_metric_with_its_backend():
    assert {name: type(get_evaluator(name)) for name in ("v4", "gnsdr", "sisdr")} == {
        "v4": BssEvalV4,
        "gnsdr": GNSDR,
        "sisdr": SISDR,
    }
    assert get_evaluator("v4").fast and not get_evaluator("v4", fast=False).fast
    with pytest.raises(SeparationError, match="unknown metric 'sdr'; available: v4, gnsdr, sisdr"):
        get_evaluator("sdr")


@pytest.mark.parametrize("name", ["v4", "gnsdr", "sisdr"])
def test_every_reference_source_must_be_estimated(name):
    references, estimates = noisy_track()
    with pytest.raises(SeparationError, match="no estimate for source.* accompaniment"):
        get_evaluator(name).evaluate(references, {"vocals": estimates["vocals"]}, RATE)
    with pytest.raises(SeparationError, match="no reference for estimated source.* drums"):
        get_evaluator(name).evaluate(references, estimates | {"drums": estimates["vocals"]}, RATE)


@pytest.mark.parametrize("name", ["v4", "gnsdr", "sisdr"])
def test_mismatched_shapes_are_refused(name):
    references, estimates = noisy_track(channels=2)
    with pytest.raises(SeparationError, match="estimate 'vocals' has shape \\(2, 15999\\) but its reference has shape \\(2, 16000\\)"):
        get_evaluator(name).evaluate(references, estimates | {"vocals": estimates["vocals"][:, 1:]}, RATE)
    with pytest.raises(SeparationError, match="reference 'accompaniment' has shape \\(1, 16000\\)"):
        get_evaluator(name).evaluate(references | {"accompaniment": references["accompaniment"][:1]}, estimates, RATE)
    with pytest.raises(SeparationError, match="must be shaped \\(channels, samples\\)"):
        get_evaluator(name).evaluate(references, estimates | {"vocals": estimates["vocals"][None]}, RATE)
    as_read = {source: audio.T for source, audio in references.items()}  # soundfile.read's (samples, channels)
    with pytest.raises(SeparationError, match=r"reference 'vocals' shaped \(16000, 2\) looks like \(samples, channels\)"):
        get_evaluator(name).evaluate(as_read, {source: audio.T for source, audio in estimates.items()}, RATE)
    with pytest.raises(SeparationError, match="sample_rate must be a number of Hz, at least 1000, got None"):
        get_evaluator(name).evaluate(references, estimates, None)


@pytest.mark.parametrize("name", ["v4", "gnsdr"])
def test_bss_eval_needs_two_non_silent_sources(name):
    references, estimates = noisy_track()
    evaluator = get_evaluator(name)
    with pytest.raises(SeparationError, match="at least two"):
        evaluator.evaluate({"vocals": references["vocals"]}, {"vocals": estimates["vocals"]}, RATE)
    with pytest.raises(SeparationError, match="reference 'vocals' is silent"):
        evaluator.evaluate(references | {"vocals": np.zeros_like(references["vocals"])}, estimates, RATE)
    with pytest.raises(SeparationError, match="estimate 'accompaniment' is silent"):
        evaluator.evaluate(references, estimates | {"accompaniment": np.zeros_like(references["vocals"])}, RATE)


@pytest.mark.parametrize(("name", "shortest"), [("v4", 4096), ("gnsdr", 2048)])  # gnsdr scores the channels' mean
def test_bss_eval_refuses_tracks_too_short_for_its_distortion_filters(name, shortest):
    references, estimates = noisy_track(channels=2)
    cut = {source: audio[:, :shortest - 1] for source, audio in references.items()}
    with pytest.raises(SeparationError, match=f"too short to score: {shortest - 1} samples, BSS Eval needs at least {shortest}"):
        get_evaluator(name).evaluate(cut, {source: audio[:, :shortest - 1] for source, audio in estimates.items()}, RATE)
    scores = get_evaluator(name).evaluate({s: a[:, :shortest] for s, a in references.items()},
                                          {s: a[:, :shortest] for s, a in estimates.items()}, RATE)
    assert all(np.isfinite(list(metrics.values())).all() for metrics in scores.values()), scores


def test_non_finite_audio_is_refused():
    references, estimates = noisy_track()
    estimates["vocals"][0, 10] = np.nan
    with pytest.raises(SeparationError, match="estimate 'vocals' contains NaN or infinite values"):
        get_evaluator("sisdr").evaluate(references, estimates, RATE)


# ---------------------------------------------------------------- v4


def test_v4_track_score_is_the_median_of_its_windows_without_silent_ones():
    references, estimates = noisy_track(seconds=5)
    references["vocals"][:, RATE : 2 * RATE] = 0  # window 2 of 5 is silent: NaN
    evaluator = BssEvalV4()
    frames = evaluator.frames(references, estimates, RATE)
    assert frames["vocals"]["SDR"].shape == (5,) and np.isnan(frames["vocals"]["SDR"][1])
    scores = evaluator.evaluate(references, estimates, RATE)
    for source in ("vocals", "accompaniment"):
        for metric in ("SDR", "ISR", "SIR", "SAR"):
            assert scores[source][metric] == pytest.approx(np.median(np.delete(frames[source][metric], 1)))


def test_v4_fast_and_museval_evaluators_agree(mir1k_track):
    references, estimates = mir1k_track
    fast = BssEvalV4(fast=True).evaluate(references, estimates, 16000)
    reference = BssEvalV4(fast=False).evaluate(references, estimates, 16000)
    for source in references:
        assert fast[source].keys() == {"SDR", "ISR", "SIR", "SAR"}
        for metric, value in reference[source].items():
            assert fast[source][metric] == pytest.approx(value, abs=0.01)


# ---------------------------------------------------------------- gnsdr


def test_gnsdr_scores_match_museval_and_nsdr_is_sdr_gain_over_the_mixture(mir1k_track):
    references, estimates = mir1k_track
    fast = GNSDR(fast=True).evaluate(references, estimates, 16000)
    reference = GNSDR(fast=False).evaluate(references, estimates, 16000)
    for source in references:
        for metric in ("SDR", "SIR", "SAR", "NSDR"):
            assert fast[source][metric] == pytest.approx(reference[source][metric], abs=0.01)
    stacked = np.stack([references["vocals"], references["accompaniment"]])
    mixture_sdr = BssEval(stacked).sources(np.broadcast_to(stacked.sum(axis=0), stacked.shape))["SDR"]
    assert fast["vocals"]["NSDR"] == pytest.approx(fast["vocals"]["SDR"] - mixture_sdr[0])
    assert fast["vocals"]["NSDR"] > 3  # the estimate is better than the mixture


def test_gnsdr_mixture_defaults_to_the_sum_of_the_references():
    references, estimates = noisy_track(channels=2)
    evaluator = GNSDR()
    mixture = references["vocals"].astype(np.float64) + references["accompaniment"]
    assert evaluator.evaluate(references, estimates, RATE) == evaluator.evaluate(references, estimates, RATE, mixture=mixture)
    louder = evaluator.evaluate(references, estimates, RATE, mixture=mixture + 0.5 * references["accompaniment"])
    assert louder["vocals"]["NSDR"] > evaluator.evaluate(references, estimates, RATE)["vocals"]["NSDR"]
    with pytest.raises(SeparationError, match="the mixture has shape"):
        evaluator.evaluate(references, estimates, RATE, mixture=mixture[:1])


def test_gnsdr_scores_stereo_as_the_channel_mean_or_jointly():
    references, estimates = noisy_track(channels=2, seed=3)
    estimates["vocals"][1] *= 0.5  # the channels differ
    mean = GNSDR(channels="mean").evaluate(references, estimates, RATE)
    mono = {name: audio.astype(np.float64).mean(axis=0) for name, audio in references.items()}
    mono_estimates = {name: audio.astype(np.float64).mean(axis=0) for name, audio in estimates.items()}
    assert mean == GNSDR(channels="joint").evaluate(mono, mono_estimates, RATE)
    assert GNSDR(channels="joint").evaluate(references, estimates, RATE) != mean
    with pytest.raises(SeparationError, match="unknown channels mode 'left'"):
        GNSDR(channels="left")


# ---------------------------------------------------------------- sisdr


def test_si_sdr_is_scale_invariant_and_has_the_closed_form():
    rng = np.random.default_rng(1)
    reference = rng.standard_normal((2, 4000))
    estimate = reference + 0.3 * rng.standard_normal((2, 4000))
    cosine = np.sum(reference * estimate) / np.sqrt(np.sum(reference**2) * np.sum(estimate**2))
    value = si_sdr(reference, estimate)
    assert value == pytest.approx(10 * np.log10(cosine**2 / (1 - cosine**2)))
    assert si_sdr(reference, 0.01 * estimate) == pytest.approx(value)
    assert si_sdr(7 * reference, -3 * estimate) == pytest.approx(value)
    assert si_sdr(reference, 2 * reference) == np.inf
    with pytest.raises(SeparationError, match="silent"):
        si_sdr(reference, np.zeros_like(reference))


def test_sisdr_evaluator_scores_each_source():
    references, estimates = noisy_track()
    scores = SISDR().evaluate(references, estimates, RATE)
    assert scores == {name: {"SI-SDR": pytest.approx(si_sdr(references[name], estimates[name]))} for name in references}
    # vocals carry 10 % cross-talk and 5 % noise, the accompaniment 20 % cross-talk
    assert scores["vocals"]["SI-SDR"] > scores["accompaniment"]["SI-SDR"] + 3


# ---------------------------------------------------------------- aggregation


def test_gnsdr_aggregation_weights_clips_by_length():
    totals = GNSDR().accumulator()
    totals.add(1000, {"vocals": {"NSDR": 3.0, "SIR": 10.0, "SAR": 6.0, "SDR": 1.0}})
    totals.add(3000, {"vocals": {"NSDR": 7.0, "SIR": 14.0, "SAR": 2.0, "SDR": 5.0}})
    assert totals.result() == {"vocals": {"GNSDR": 6.0, "GSIR": 13.0, "GSAR": 3.0, "GSDR": 4.0}}
    assert len(totals) == 2


def test_tracks_weigh_by_duration_whatever_their_sample_rates():
    from sepframework.evaluation.scoring import TrackScore, aggregate

    results = [TrackScore("a", 16000 * 6, 16000, {"vocals": {"NSDR": 13.0, "SIR": 1.0, "SAR": 1.0, "SDR": 1.0}}),
               TrackScore("b", 48000 * 6, 48000, {"vocals": {"NSDR": 14.0, "SIR": 1.0, "SAR": 1.0, "SDR": 1.0}}),
               TrackScore("c", 0, 0, error="track c: unreadable")]
    assert aggregate(results, GNSDR().accumulator())["vocals"]["GNSDR"] == pytest.approx(13.5)


def test_track_aggregates_are_medians_or_means_without_nan():
    tracks = [{"vocals": {"SDR": value}} for value in (1.0, np.nan, 4.0, 10.0)]
    median, mean = BssEvalV4().accumulator(), SISDR().accumulator()
    for track in tracks:
        median.add(100, track)
        mean.add(100, track)
    assert isinstance(median, MedianOverTracks) and median.result() == {"vocals": {"SDR": 4.0}}
    assert isinstance(mean, MeanOverTracks) and mean.result() == {"vocals": {"SDR": 5.0}}
    assert MedianOverTracks().result() == {}


def test_accumulators_refuse_inconsistent_tracks():
    totals = LengthWeightedMeans()
    totals.add(10, {"vocals": {"NSDR": 1.0}})
    with pytest.raises(SeparationError, match="earlier tracks had"):
        totals.add(10, {"vocals": {"SDR": 1.0}})
    with pytest.raises(SeparationError, match="track duration must be positive"):
        totals.add(0, {"vocals": {"NSDR": 1.0}})
