"""BSS Eval of 30 s of real stereo music at 44.1 kHz: the fast implementation vs museval.

The MUSDB18 sample shipped with stempeg (vocals vs accompaniment), looped to 30 s, scored
with a realistic estimate (leaking, noisy vocals). Groups: v4 (1 s windows, as
``museval.evaluate``) and v3 (``bss_eval_sources`` on the whole clip). The museval cases
also check that museval and the fast implementation agree within 0.01 dB. With
``--benchmark-disable`` every case runs once on 2 s as a smoke test.
"""

from __future__ import annotations

import numpy as np
import pytest

from sepframework.evaluation.bss_fast import BssEval
from sepframework.evaluation.bss_museval import MusevalBssEval
from tests.test_evaluation_bss import leaky_estimate, musdb_references

SECONDS = 30
SMOKE_SECONDS = 2
ROUNDS = {BssEval: 7, MusevalBssEval: 3}


@pytest.fixture(scope="module")
def music() -> tuple[np.ndarray, int]:
    return musdb_references(SECONDS)


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
    arguments = (implementation, references, estimates, rate)
    scores = benchmark.pedantic(version, args=arguments, rounds=ROUNDS[implementation], warmup_rounds=warmup)
    if implementation is MusevalBssEval:
        fast = version(BssEval, references, estimates, rate)
        for metric, values in scores.items():
            assert np.nanmax(np.abs(fast[metric] - values)) < 0.01, metric
