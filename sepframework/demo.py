"""`make run`: separate a bundled real-music example with the default model, offline.

The example is the 7-second MUSDB18 excerpt shipped in the ``stempeg`` wheel (a museval
dependency) with its true stems, so the demo can also score its own output.
"""

from __future__ import annotations

import time
from pathlib import Path

import sepframework
from sepframework.audio import read_audio
from sepframework.datasets import TrackEntry
from sepframework.evaluation import get_evaluator
from sepframework.pipeline import OutputSpec, separate_file

OUTDIR = Path("separated/demo")


def main() -> None:
    """Separate the bundled example with the default model, then print where the stems are and their SDR."""
    import stempeg

    example = stempeg.example_stem_path()
    name = sepframework.registry.default_model_name()
    print(f"Separating the bundled example '{Path(example).name}' with the default model '{name}'...")
    start = time.perf_counter()
    model = sepframework.load(name)
    written = separate_file(example, model, OutputSpec(outdir=OUTDIR, overwrite=True), model_name=name)
    seconds = time.perf_counter() - start

    track = TrackEntry(Path(example).name, Path(example), "stem.mp4").load()  # vocals, accompaniment = drums + bass + other
    references, rate = track.sources, track.sample_rate
    estimates = {source: read_audio(path)[0] for source, path in written.items()}
    length = min(min(a.shape[1] for a in references.values()), min(a.shape[1] for a in estimates.values()))
    scores = get_evaluator("v4").evaluate(
        {s: a[:, :length] for s, a in references.items()},
        {s: estimates[s][:, :length] for s in references},
        rate,
    )
    duration = length / rate
    print(f"Done in {seconds:.1f} s ({duration / seconds:.0f}x real time, model loading included).")
    for source, path in written.items():
        print(f"  {source:14s} {path}   SDR {scores[source]['SDR']:5.1f} dB")
    print("(SDR: BSS Eval v4 against the true stems, median over 1-second frames.)")
    print("Next: sep run --model unet song.mp3   |   sep models   |   sep --help")


if __name__ == "__main__":
    main()
