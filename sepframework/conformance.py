"""Conformance checks any separator plugin can run on itself.

One call runs every check and reports all failures at once::

    from sepframework.conformance import check_separator
    check_separator(MyModel.load(args, weights))   # raises ConformanceError

In pytest, subclass :class:`SeparatorConformance` to get one test per check::

    from sepframework.conformance import SeparatorConformance

    class TestMyModel(SeparatorConformance):
        def make_model(self):
            return MyModel.load({}, None)

The checks: attributes (sample rate, sources, context), block output (keys, shapes,
float32), shapes and rates through :meth:`Separator.separate` (mono and stereo, several
input rates), very short inputs, determinism, chunked output through the engine's
:func:`~sepframework.engine.separate_stream` equal to whole-signal output, and finite
output for silence and clipped input.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sepframework.engine import plan_segments, separate_stream
from sepframework.interfaces import SeparationError, Separator, attribute_problem, stems_problem

#: Input rates :func:`check_shapes_and_rates` tries besides the model's own.
OTHER_RATES = (44100, 22050)
#: Lengths (samples) :func:`check_short_inputs` tries.
SHORT_LENGTHS = (1, 31, 1000)
#: Samples per block fed to the chunked engine.
STREAM_BLOCK = 4096
#: Largest difference between a ``residual_source`` and the mixture minus the other
#: sources (float32 rounding of a song-like signal peaking near 0.6).
RESIDUAL_TOLERANCE = 1e-5


class ConformanceError(AssertionError):
    """A separator breaks the plugin contract."""


def song_like_signal(channels: int, samples: int, rate: int, seed: int = 0) -> np.ndarray:
    """A deterministic song-like float32 signal (channels, samples): a gliding voice-like
    tone, a repeating chord, and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / rate
    voice = 0.3 * np.sin(2 * np.pi * (300 * t + 40 * np.sin(2 * np.pi * 0.5 * t)))
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) * (1 + np.sign(np.sin(2 * np.pi * 2 * t))) for f in (110, 165, 220))
    mono = voice + chord
    audio = np.stack([mono * (1 - 0.3 * c) for c in range(channels)]) + 0.01 * rng.standard_normal((channels, samples))
    return audio.astype(np.float32)


def _check_stems(stems: object, model: Separator, shape: tuple[int, ...], context: str) -> None:
    if isinstance(stems, dict) and set(stems) - set(model.sources):
        raise ConformanceError(f"{context}: expected the sources {list(model.sources)}, got {sorted(stems)}")
    problem = stems_problem(stems, model.sources, shape)
    if problem is not None:
        raise ConformanceError(f"{context}: {problem}")


def check_attributes(model: Separator) -> None:
    """``sample_rate`` an int of at least 1000 (Hz), ``sources`` a non-empty tuple of distinct names,
    ``context_samples`` a non-negative int, ``residual_source`` None or one of the sources,
    ``segment_seconds`` a positive number, long enough for twice ``context_samples`` and
    the shortest crossfade (what ``sep run`` uses)."""
    problem = attribute_problem(model)
    if problem is not None:
        raise ConformanceError(problem)
    try:
        plan_segments(model, None)
    except SeparationError as error:
        raise ConformanceError(str(error)) from None


def check_block_output(model: Separator) -> None:
    """``separate_block`` returns every source as float32 with the input's shape, leaves
    ``residual_source`` (if any) the mixture minus the other sources."""
    audio = song_like_signal(2, model.sample_rate, model.sample_rate)
    stems = model.separate_block(audio.copy())
    _check_stems(stems, model, audio.shape, "separate_block on 1 s of stereo")
    for name, stem in stems.items():
        if stem.dtype != np.float32:
            raise ConformanceError(f"separate_block: '{name}' is {stem.dtype}, not float32")
    residual = model.residual_source
    if residual is not None:
        others = np.sum([stem for name, stem in stems.items() if name != residual], axis=0)
        error = float(np.max(np.abs(stems[residual] - (audio - others))))
        if error > RESIDUAL_TOLERANCE:
            raise ConformanceError(f"separate_block: residual_source '{residual}' differs from the mixture minus the "
                                   f"other sources by up to {error:.2e}; set residual_source = None if it is not one")


def check_shapes_and_rates(model: Separator) -> None:
    """``separate`` gives every source at the input's shape for mono and stereo input at
    the model's rate and at other rates."""
    for rate in dict.fromkeys((model.sample_rate, *OTHER_RATES)):
        for channels in (1, 2):
            audio = song_like_signal(channels, int(0.75 * rate) + 7, rate)
            stems = model.separate(audio, rate)
            _check_stems(stems, model, audio.shape, f"separate on {channels} channel(s) at {rate} Hz")


def check_short_inputs(model: Separator) -> None:
    """Inputs of a few samples (the engine's last segment can be that short) work."""
    for length in SHORT_LENGTHS:
        audio = song_like_signal(2, length, model.sample_rate)
        _check_stems(model.separate_block(audio), model, audio.shape, f"separate_block on {length} sample(s)")


def check_determinism(model: Separator) -> None:
    """The same input gives the same output."""
    audio = song_like_signal(2, model.sample_rate // 2, model.sample_rate, seed=1)
    first, second = model.separate_block(audio.copy()), model.separate_block(audio.copy())
    for stems in (first, second):
        _check_stems(stems, model, audio.shape, "separate_block on 0.5 s of stereo")
    for name in model.sources:
        if not np.array_equal(first[name], second[name], equal_nan=True):
            raise ConformanceError(f"two runs on the same input differ for '{name}'")


def check_chunked_matches_whole(model: Separator, local: bool = True, tolerance: float = 1e-4) -> None:
    """Separating in segments through the engine gives the whole-signal output.

    For a ``local`` model (output at a sample depends on at most ``context_samples`` of
    input each side), chunked and whole outputs must agree within ``tolerance`` (absolute,
    for input peaking near 0.6). A model using the whole signal (``local=False``) must
    still give finite output of the right length.
    """
    rate = model.sample_rate
    segment, overlap = plan_segments(model, max(1.0, 8 * (2 * model.context_samples + 1) / rate))
    length = 2 * segment + segment // 2
    audio = song_like_signal(2, length, rate, seed=2)
    blocks = (audio[:, start:start + STREAM_BLOCK] for start in range(0, length, STREAM_BLOCK))
    pieces: dict[str, list[np.ndarray]] = {name: [] for name in model.sources}
    for output in separate_stream(model, blocks, segment, overlap):
        for name in model.sources:
            pieces[name].append(output[name])
    chunked = {name: np.concatenate(parts, axis=1) for name, parts in pieces.items()}
    _check_stems(chunked, model, audio.shape, f"chunked separation ({segment}-sample segments)")
    if not local:
        return
    whole = model.separate_block(audio)
    for name in model.sources:
        error = float(np.max(np.abs(chunked[name] - whole[name])))
        if error > tolerance:
            raise ConformanceError(
                f"chunked output of '{name}' differs from whole-signal output by up to {error:.2e} "
                f"(tolerance {tolerance:.0e}); is context_samples ({model.context_samples}) large enough?"
            )


def check_extreme_inputs(model: Separator) -> None:
    """Silence and clipped (full-scale square wave) input give finite output."""
    rate = model.sample_rate
    t = np.arange(rate // 2) / rate
    square = np.sign(np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    inputs = {"silence": np.zeros((2, rate // 2), np.float32), "clipped input": np.stack([square, -square])}
    for label, audio in inputs.items():
        _check_stems(model.separate_block(audio), model, audio.shape, label)


#: Every check, in the order :func:`check_separator` runs them.
CHECKS: tuple[Callable[..., None], ...] = (
    check_attributes,
    check_block_output,
    check_shapes_and_rates,
    check_short_inputs,
    check_determinism,
    check_chunked_matches_whole,
    check_extreme_inputs,
)


def check_separator(model: Separator, *, local: bool = True, tolerance: float = 1e-4) -> None:
    """Run every check; raise :class:`ConformanceError` listing all that fail.

    ``local`` and ``tolerance`` are those of :func:`check_chunked_matches_whole`.
    """
    failures = []
    for check in CHECKS:
        kwargs = {"local": local, "tolerance": tolerance} if check is check_chunked_matches_whole else {}
        try:
            check(model, **kwargs)
        except ConformanceError as error:
            failures.append(f"{check.__name__}: {error}")
        except Exception as error:  # a crash inside the model is a failure to report
            failures.append(f"{check.__name__}: raised {type(error).__name__}: {error}")
    if failures:
        raise ConformanceError(f"{type(model).__name__} fails {len(failures)} check(s):\n  " + "\n  ".join(failures))


class SeparatorConformance:
    """Base of a pytest class running each check as its own test.

    Subclass it as ``class TestMyModel(SeparatorConformance)`` and define
    :meth:`make_model`; set :attr:`local` and :attr:`tolerance` if needed.
    """

    #: See :func:`check_chunked_matches_whole`.
    local = True
    tolerance = 1e-4

    def make_model(self) -> Separator:
        """The separator to check (called once per test)."""
        raise NotImplementedError

    def test_attributes(self) -> None:
        check_attributes(self.make_model())

    def test_block_output(self) -> None:
        check_block_output(self.make_model())

    def test_shapes_and_rates(self) -> None:
        check_shapes_and_rates(self.make_model())

    def test_short_inputs(self) -> None:
        check_short_inputs(self.make_model())

    def test_determinism(self) -> None:
        check_determinism(self.make_model())

    def test_chunked_matches_whole(self) -> None:
        check_chunked_matches_whole(self.make_model(), self.local, self.tolerance)

    def test_extreme_inputs(self) -> None:
        check_extreme_inputs(self.make_model())
