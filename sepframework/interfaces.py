"""The framework's abstract interfaces, Separator, Transform and Evaluator, and the contract
around them: the error and warning types, the checks that tell a plugin author what a
separator or its output got wrong (``check_*``, ``*_problem``, :func:`checked_block`), and
the guard that runs plugin code (:func:`model_code`).

Audio everywhere is a float32 NumPy array shaped ``(channels, samples)``.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
import sys
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from sepframework.evaluation.aggregate import Accumulator


class SeparationError(Exception):
    """A user-facing error: the message is shown as one line, without a traceback."""


class SeparationWarning(UserWarning):
    """A user-facing warning: the ``sep`` command shows it as one ``warning:`` line."""


#: Most channels the framework takes (the 64 of a MADI link): ``sep stream --channels``'s
#: limit, and why :meth:`Separator.separate` reads an array with more rows and at most
#: this many columns as (samples, channels) by mistake.
MAX_CHANNELS = 64
#: Lowest input rate accepted (Hz), as by ``sep stream``.
MIN_SAMPLE_RATE = 1000


class Separator(ABC):
    """A model that splits a mixture into named sources.

    Subclasses set ``sample_rate`` and ``sources`` and implement :meth:`separate_block`,
    which works at the model's own rate. :meth:`separate` adds validation and resampling
    so callers may pass audio at any rate.

    Plugins expose a Separator subclass through the ``sepframework.models`` entry-point
    group and build instances with :meth:`load`.
    """

    #: Rate (Hz) the model works at.
    sample_rate: int
    #: Names of the sources it returns, e.g. ``("vocals", "accompaniment")``.
    sources: tuple[str, ...]
    #: Samples at the model rate each side of a segment that the chunked engine should
    #: overlap so segment edges do not matter (the model's useful context).
    context_samples: ClassVar[int] = 0
    #: A source that is the mixture minus the others (e.g. ``"accompaniment"``), or ``None``.
    #: When the input's rate differs from the model's, it is computed at the input's rate
    #: from the mixture, so it keeps what the model's rate cannot represent
    #: (see :mod:`sepframework.residual`).
    residual_source: ClassVar[str | None] = None
    #: Seconds of audio the chunked engine separates per segment when the caller does not
    #: choose (``sep run --segment``): memory against per-call overhead. A call of
    #: :meth:`separate_block` gets at most a segment plus its overlap with the next.
    segment_seconds: float = 30.0

    #: Where the model runs (see :meth:`to`).
    device: str = "cpu"

    @classmethod
    @abstractmethod
    def load(
        cls, args: Mapping[str, Any], weights: Mapping[str, Any] | None, device: str = "cpu"
    ) -> Separator:
        """Build a ready-to-use separator.

        ``args`` are the constructor arguments recorded in the model's ``config.json``;
        ``weights`` maps file names of the registry entry (e.g. ``"model.safetensors"``) to
        local paths, or is ``None`` for models that need no weights.
        """

    @abstractmethod
    def separate_block(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        """Separate ``audio`` (channels, samples) already at :attr:`sample_rate`.

        Returns one float array per source, each with the input's shape. ``audio`` is the
        model's to use: callers do not read it afterwards, so it may be changed in place.
        """

    def to(self, device: str) -> Separator:
        """Move the model to ``device`` (``"cpu"``, ``"cuda"`` or ``"cuda:N"``; a
        :class:`SeparationError` when there is no such device); returns ``self``. Overrides
        move their tensors after :func:`~sepframework.loading.resolve_device` and call this."""
        from sepframework.loading import resolve_device

        self.device = resolve_device(device)
        return self

    def separate(self, audio: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        """Separate float ``audio`` (channels, samples), or mono (samples,), recorded at ``sample_rate``.

        The result has the input's shape and rate for every source in :attr:`sources`.
        Integer samples and (samples, channels) arrays, as ``soundfile.read`` returns
        them, are refused with a hint rather than separated wrongly.
        """
        from sepframework.audio import resample

        audio = np.asarray(audio)
        check_sample_rate(sample_rate)
        check_float_samples(audio)
        if audio.ndim == 1:
            return {name: stem[0] for name, stem in self.separate(audio[None, :], sample_rate).items()}
        check_layout(audio)
        audio = audio.astype(np.float32, copy=False)
        length = audio.shape[1]
        if length == 0:
            return {name: audio.copy() for name in self.sources}
        at_model_rate = resample(audio, sample_rate, self.sample_rate)
        if at_model_rate is audio or np.shares_memory(at_model_rate, audio):
            at_model_rate = at_model_rate.copy()  # separate_block may change its input; the caller's stays as it is
        stems = checked_block(self, at_model_rate, self.sources)
        residual = self.residual_source if sample_rate != self.sample_rate else None
        result = {}
        for name in self.sources:
            if name != residual:
                result[name] = fit_length(resample(stems[name], self.sample_rate, sample_rate), length)
        if residual is not None:
            result[residual] = audio - np.sum([result[name] for name in result], axis=0, dtype=np.float32)
        return {name: result[name] for name in self.sources}


def is_finite_number(value: object) -> bool:
    """Whether ``value`` is a finite real number (Python's or NumPy's; not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_sample_rate(sample_rate: object) -> None:
    """A :class:`SeparationError` unless ``sample_rate`` is a finite number of Hz of at
    least :data:`MIN_SAMPLE_RATE` (a wrong rate would resample to absurd lengths)."""
    if not (is_finite_number(sample_rate) and sample_rate >= MIN_SAMPLE_RATE):
        raise SeparationError(f"sample_rate must be a number of Hz, at least {MIN_SAMPLE_RATE}, got {sample_rate!r}")


def check_float_samples(audio: np.ndarray) -> None:
    """A :class:`SeparationError` with a hint unless ``audio`` holds float samples."""
    if not np.issubdtype(audio.dtype, np.floating):
        bits = 8 * audio.dtype.itemsize
        hint = (f"; divide {bits}-bit PCM by {2 ** (bits - 1)}"
                if np.issubdtype(audio.dtype, np.signedinteger) else "")
        raise SeparationError(f"audio must hold float samples (full scale ±1.0), got {audio.dtype}{hint}")


def check_layout(audio: np.ndarray, label: str = "audio") -> None:
    """A :class:`SeparationError` unless ``audio`` is 2-D and not evidently (samples,
    channels), the layout ``soundfile.read`` returns, which would be read wrongly."""
    if audio.ndim != 2 or audio.shape[0] == 0:
        raise SeparationError(f"{label} must be shaped (channels, samples), got an array of shape {audio.shape}")
    if audio.shape[0] > MAX_CHANNELS >= audio.shape[1]:
        raise SeparationError(f"{label} shaped {audio.shape} looks like (samples, channels); pass its "
                              "transpose (.T), shaped (channels, samples)")


def class_attribute(model: Separator | type[Separator], name: str, default: object = None) -> object:
    """``model.name``, or ``default`` where it is unset or a property (whose value exists on
    instances only)."""
    if hasattr(inspect.getattr_static(model, name, None), "__get__"):
        return default
    return getattr(model, name, default)


def attribute_problem(model: Separator | type[Separator], set_only: bool = False) -> str | None:
    """What is wrong with a separator's ``sample_rate``, ``sources``, ``context_samples``,
    ``residual_source`` and ``segment_seconds``, or ``None`` when they keep the contract.

    ``set_only`` checks only the attributes that are set, for a class whose instances may
    set the others in ``__init__``.
    """
    missing = object()

    def value(name: str, default: object = missing) -> object:
        return class_attribute(model, name, default) if set_only else getattr(model, name, default)

    rate, sources = value("sample_rate"), value("sources")
    for name, found in (("sample_rate", rate), ("sources", sources)):
        if found is missing and not set_only:
            return f"{name} is not set (set it on the class or in __init__)"
    if rate is not missing and (not isinstance(rate, (int, np.integer)) or isinstance(rate, bool)
                                or rate < MIN_SAMPLE_RATE):
        return f"sample_rate must be an int number of Hz, at least {MIN_SAMPLE_RATE}, got {rate!r}"
    if sources is not missing and (
        not isinstance(sources, tuple) or not sources or len(set(sources)) != len(sources)
        or not all(isinstance(name, str) and name for name in sources)
    ):
        return f"sources must be a non-empty tuple of distinct names, got {sources!r}"
    context = value("context_samples", 0)
    if not isinstance(context, (int, np.integer)) or isinstance(context, bool) or context < 0:
        return f"context_samples must be a non-negative int, got {context!r}"
    residual = value("residual_source", None)
    if residual is not None and isinstance(sources, tuple) and residual not in sources:
        return f"residual_source must be None or one of the sources {list(sources)}, got {residual!r}"
    segment = value("segment_seconds", 1.0)
    if not (is_finite_number(segment) and segment > 0):
        return f"segment_seconds must be a positive number, got {segment!r}"
    return None


def stems_problem(stems: object, sources: Collection[str], shape: tuple[int, ...], spectra: bool = False) -> str | None:
    """What is wrong with ``separate_block``'s result for the ``sources`` wanted from a
    block of ``shape``, or ``None``: a dict holding each as a finite float array of that
    shape (complex, with ``spectra``, for a frame processor's result)."""
    if not isinstance(stems, Mapping):
        return f"returned {type(stems).__name__}, not a dict of sources"
    missing = [name for name in sources if name not in stems]
    if missing:
        return f"returned the sources {list(stems)}, without {', '.join(repr(name) for name in missing)}"
    for name in sources:
        stem = stems[name]
        if not isinstance(stem, np.ndarray) or stem.shape != shape:
            got = f"shaped {stem.shape}" if isinstance(stem, np.ndarray) else f"a {type(stem).__name__}"
            return f"returned '{name}' {got} for a block shaped {shape}"
        wanted = np.complexfloating if spectra else np.floating
        if not np.issubdtype(stem.dtype, wanted):
            return f"returned '{name}' as {stem.dtype} values, not {'complex' if spectra else 'float'}"
        if not np.isfinite(stem).all():
            return f"returned NaN or infinite samples in '{name}'"
    return None


def checked_block(model: Separator, audio: np.ndarray, sources: Collection[str]) -> dict[str, np.ndarray]:
    """``model.separate_block(audio)``, with a :class:`SeparationError` when its result
    breaks the contract for ``sources``: blamed on the input when that holds NaN or
    infinite samples, on the model (a plugin bug) otherwise. Input is not checked on its
    own, to keep it off the hot path; callers that must refuse NaN input check it first."""
    with plugin_output_to_stderr():
        stems = model.separate_block(audio)
    problem = stems_problem(stems, sources, audio.shape)
    if problem is None:
        return stems  # type: ignore[return-value]  # checked to be a mapping of arrays
    if not np.isfinite(audio).all():
        raise SeparationError("the input contains NaN or infinite samples")
    model_class = f"{type(model).__module__}.{type(model).__qualname__}"
    raise SeparationError(f"the model is broken: {model_class}.separate_block {problem}")


def plugin_output_to_stderr() -> contextlib.AbstractContextManager[object]:
    """Send what plugin code prints to standard error: standard output may be the
    commands' data (``sep stream --vocals -``, ``sep models list --json``)."""
    return contextlib.redirect_stdout(sys.stderr)


@contextlib.contextmanager
def model_code(model: object, call: str) -> Iterator[None]:
    """Run ``call`` into a model's own code: what it prints goes to standard error, and
    its failures (``sys.exit`` included; running out of memory aside) are one
    :class:`SeparationError` naming the model's class."""
    try:
        with plugin_output_to_stderr():
            yield
    except (SeparationError, MemoryError):
        raise
    except (Exception, SystemExit) as error:
        model_class = f"{type(model).__module__}.{type(model).__qualname__}"
        raise SeparationError(f"the model is broken: {model_class}.{call} raised {type(error).__name__}: {error}") from error


def fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    """``audio`` cropped or zero-padded along time to exactly ``length`` samples."""
    if audio.shape[-1] >= length:
        return np.ascontiguousarray(audio[..., :length])
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, length - audio.shape[-1])]
    return np.pad(audio, pad)


class Transform(ABC):
    """An invertible transform of audio, such as :class:`~sepframework.stft.STFT`."""

    @abstractmethod
    def forward(self, audio: np.ndarray) -> np.ndarray:
        """Transform ``audio`` shaped (channels, samples)."""

    @abstractmethod
    def inverse(self, data: np.ndarray, length: int) -> np.ndarray:
        """Invert :meth:`forward`, returning (channels, ``length``) samples."""


class Evaluator(ABC):
    """Scores estimated sources against references."""

    #: Short name used on the command line (``--metric``).
    name: ClassVar[str]

    @abstractmethod
    def evaluate(
        self,
        references: Mapping[str, np.ndarray],
        estimates: Mapping[str, np.ndarray],
        sample_rate: int,
    ) -> dict[str, dict[str, float]]:
        """Score one track.

        ``references`` and ``estimates`` map source names to (channels, samples) arrays of
        equal shape. Returns ``{source: {metric: value}}``, e.g.
        ``{"vocals": {"SDR": 9.1, "SIR": 15.0, "SAR": 10.2}}``.
        """

    @abstractmethod
    def accumulator(self) -> Accumulator:
        """A fresh collector of :meth:`evaluate`'s per-track scores into dataset scores
        (e.g. medians over tracks), as the metric's literature aggregates them."""
