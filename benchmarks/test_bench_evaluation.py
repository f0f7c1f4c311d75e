"""BSS Eval of 30 s of real stereo music at 44.1 kHz: the fast implementation vs museval.

The MUSDB18 sample shipped with stempeg (vocals vs accompaniment), looped to 30 s, scored
with a realistic estimate (leaking, noisy vocals). Groups: v4 (1 s windows, as
``museval.evaluate``) and v3 (``bss_eval_sources`` on the whole clip). The museval cases also
check that museval and the fast implementation agree within 0.01 dB. With ``--benchmark-disable`` every case
runs once on 2 s as a smoke test.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from sepframework.evaluation.bss_fast import BssEval
from sepframework.evaluation.bss_museval import MusevalBssEval

SECONDS = 30
SMOKE_SECONDS = 2
ROUNDS = {BssEval: 7, MusevalBssEval: 3}


@pytest.fixture(scope="module")
def music() -> tuple[np.ndarray, int]:
    """(vocals, accompaniment) references of the stempeg sample, looped: (2, 2, samples) float32."""
    stempeg = pytest.importorskip("stempeg")
    stems, rate = stempeg.read_stems(stempeg.example_stem_path())
    stems = np.tile(stems.transpose(0, 2, 1), -(-SECONDS * rate // stems.shape[1]))[..., : SECONDS * rate]
    return np.stack([stems[4], stems[1] + stems[2] + stems[3]]).astype(np.float32), rate


def leaky_estimate(references: np.ndarray, rate: int) -> np.ndarray:
    """Vocals + 20 % low-passed accompaniment + noise; accompaniment = mixture - that."""
    vocals, accompaniment = references.astype(np.float64)
    b, a = scipy.signal.butter(4, 3000 / (rate / 2))
    vocal_estimate = 0.9 * vocals + 0.2 * scipy.signal.lfilter(b, a, accompaniment) + 0.01 * np.random.default_rng(0).standard_normal(vocals.shape)
    return np.stack([vocal_estimate, vocals + accompaniment - vocal_estimate]).astype(np.float32)


def _v4(implementation, references: np.ndarray, estimates: np.ndarray, rate: int) -> dict[str, np.ndarray]:
    return implementation(references).images(estimates, rate, rate)


def _v3(implementation, references: np.ndarray, estimates: np.ndarray, rate: int) -> dict[str, np.ndarray]:
    return implementation(references).sources(estimates)


@pytest.mark.parametrize("version", [_v4, _v3], ids=["v4", "v3"])
@pytest.mark.parametrize("implementation", [BssEval, MusevalBssEval], ids=["fast", "museval"])
def test_bss_eval(benchmark, music, version, implementation):
    references, rate = music
    if benchmark.disabled:
        references = references[..., : SMOKE_SECONDS * rate]
    estimates = leaky_estimate(references, rate)
    benchmark.group = f"bss_eval {version.__name__[1:]}: {references.shape[-1] / rate:g} s stereo 44.1 kHz"
    warmup = 1 if implementation is BssEval else 0  # loads the compiled kernels
    scores = benchmark.pedantic(version, args=(implementation, references, estimates, rate), rounds=ROUNDS[implementation], warmup_rounds=warmup)
    if implementation is MusevalBssEval:
        fast = version(BssEval, references, estimates, rate)
        for metric, values in scores.items():
            assert np.nanmax(np.abs(fast[metric] - values)) < 0.01, metric
