"""Chunked inference: separate arbitrarily long audio in bounded memory.

Blocks of audio at the model's rate (read and resampled by :mod:`sepframework.pipeline`)
are cut into overlapping segments, separated segment by segment and joined with crossfades whose weights sum to
one. The crossfade ramps only in the middle of each overlap, leaving the model's
``context_samples`` at either end of a segment out, so a time-invariant model whose
output depends on at most that much context gives exactly its whole-signal output.
Models that are not (an STFT model is time-invariant only by whole hops, a U-Net sees
whole patches, a GRU carries state) give close but not identical output; the ramp
(up to :data:`DEFAULT_OVERLAP_SECONDS`, never under :data:`MIN_RAMP_SECONDS`) hides
where two segments disagree. Memory depends on the segment length, not on the input's.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Iterator

import numpy as np

from sepframework.interfaces import SeparationError, Separator, checked_block, is_finite_number

#: Default crossfade ramp between segments, in seconds (the overlap adds the model's
#: context at either end).
DEFAULT_OVERLAP_SECONDS = 1.0
#: Shortest crossfade ramp: where two segments' outputs disagree, a shorter one is heard
#: as a click.
MIN_RAMP_SECONDS = 0.05
#: Shortest segment a caller may ask for: shorter ones spend more on overlaps and
#: per-call overhead than on the audio itself.
MIN_SEGMENT_SECONDS = 1.0


def plan_segments(model: Separator, segment_seconds: float | None) -> tuple[int, int]:
    """Segment and overlap lengths in samples at the model's rate.

    ``segment_seconds`` is the caller's choice (at least :data:`MIN_SEGMENT_SECONDS`);
    ``None`` takes the model's :attr:`~sepframework.interfaces.Separator.segment_seconds`.
    """
    chosen = segment_seconds is not None
    seconds = segment_seconds if chosen else model.segment_seconds
    named = "--segment (segment_seconds)" if chosen else f"the model's {type(model).__qualname__}.segment_seconds"
    if not (is_finite_number(seconds) and seconds > 0):
        raise SeparationError(f"{named} must be a positive number of seconds, got {seconds!r}")
    if chosen and seconds < MIN_SEGMENT_SECONDS:
        raise SeparationError(f"--segment {seconds} s is too short; use at least {MIN_SEGMENT_SECONDS:g} s")
    rate, context = model.sample_rate, model.context_samples
    segment = int(round(seconds * rate))
    shortest_ramp = math.ceil(MIN_RAMP_SECONDS * rate)
    ramp = int(min(DEFAULT_OVERLAP_SECONDS * rate, max(segment / 4, shortest_ramp)))
    overlap = min(2 * context + ramp, segment // 2)
    if overlap - 2 * context < shortest_ramp:
        shortest = math.ceil(100 * 2 * (2 * context + shortest_ramp) / rate) / 100  # rounded up: it is accepted
        raise SeparationError(
            f"{named} {seconds} s is too short for the model's context ({context / rate:g} s each side of a "
            f"segment) and a crossfade; use at least {shortest:.2f} s"
        )
    return segment, overlap


def crossfade_weights(overlap: int, context: int) -> np.ndarray:
    """Weights of the later segment across an overlap; the earlier one gets ``1 - w``.

    Zero for the first ``context`` samples, one for the last ``context``, a linear ramp
    between them.
    """
    ramp = max(overlap - 2 * context, 1)
    return np.clip((np.arange(overlap, dtype=np.float32) + 0.5 - context) / ramp, 0.0, 1.0)


def separate_stream(
    model: Separator,
    blocks: Iterable[np.ndarray],
    segment: int,
    overlap: int,
    sources: Collection[str] | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Separate a stream of (channels, n) blocks at the model rate, in order.

    Yields dicts of finished (channels, m) output blocks, one per source in ``sources``
    (default: all of the model's); their concatenation has exactly the input's length.
    ``segment`` and ``overlap`` are samples at the model's rate, as :func:`plan_segments`
    gives them.
    """
    if not 0 <= 2 * overlap <= segment or segment < 1:
        raise SeparationError(f"segment and overlap must satisfy 0 <= 2 * overlap <= segment and segment >= 1 "
                              f"(see plan_segments), got {segment} and {overlap}")
    unknown = [name for name in sources or () if name not in model.sources]
    if unknown:
        raise SeparationError(f"unknown source(s) {', '.join(unknown)}; the model gives {', '.join(model.sources)}")
    hop = segment - overlap
    fade_in = crossfade_weights(overlap, model.context_samples)
    kept = [name for name in model.sources if sources is None or name in sources]  # checked in this order
    pending: list[np.ndarray] = []
    pending_len = 0
    tail: dict[str, np.ndarray] | None = None  # previous segment's last `overlap` samples

    def join(separated: dict[str, np.ndarray], emit: int) -> dict[str, np.ndarray]:
        nonlocal tail
        out, rest = {}, {}
        for name in kept:
            stem = separated[name].astype(np.float32, copy=True)  # the model may reuse its buffers
            if tail is not None:
                n = min(overlap, stem.shape[1])
                stem[:, :n] = tail[name][:, :n] * (1 - fade_in[:n]) + stem[:, :n] * fade_in[:n]
            out[name], rest[name] = stem[:, :emit], stem[:, emit:]
        tail = rest
        return out

    for block in blocks:
        pending.append(np.array(block, dtype=np.float32))  # a copy: the caller may reuse its buffer
        pending_len += block.shape[1]
        while pending_len >= segment + overlap:  # keep one overlap of look-ahead buffered
            buffer = np.concatenate(pending, axis=1)
            pending, pending_len = [buffer[:, hop:].copy()], buffer.shape[1] - hop  # the model may change buffer
            yield join(checked_block(model, buffer[:, :segment], kept), hop)
    if pending_len:
        buffer = np.concatenate(pending, axis=1)
        stems = checked_block(model, buffer, kept)
        yield join(stems, buffer.shape[1])
