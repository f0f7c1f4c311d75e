"""Evaluation: BSS Eval v4 (SiSEC/MUSDB18), BSS Eval v3 GNSDR (MIR-1K), SI-SDR.

>>> from sepframework.evaluation import get_evaluator
>>> evaluator = get_evaluator("v4")                       # doctest: +SKIP
>>> scores = evaluator.evaluate(references, estimates, 44100)  # doctest: +SKIP
>>> totals = evaluator.accumulator()                      # doctest: +SKIP
>>> totals.add(seconds, scores); totals.result()          # doctest: +SKIP
"""

from sepframework.evaluation.aggregate import Accumulator, LengthWeightedMeans, MeanOverTracks, MedianOverTracks
from sepframework.evaluation.bss import BssEvalBase
from sepframework.evaluation.evaluators import EVALUATORS, GNSDR, SISDR, BssEvalV4, get_evaluator
from sepframework.evaluation.sisdr import si_sdr

__all__ = [
    "EVALUATORS",
    "GNSDR",
    "SISDR",
    "Accumulator",
    "BssEvalBase",
    "BssEvalV4",
    "LengthWeightedMeans",
    "MeanOverTracks",
    "MedianOverTracks",
    "get_evaluator",
    "si_sdr",
]
