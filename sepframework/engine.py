"""Chunked inference: separate arbitrarily long audio in bounded memory.

Audio streams from the reader, is resampled to the model's rate, cut into overlapping
segments, separated segment by segment and joined with linear crossfades whose weights
sum to one (so a model that is exact on each segment stays exact). Memory depends on the
segment length, not on the input's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from sepframework.interfaces import SeparationError, Separator

#: Default segment length in seconds when neither the caller nor the model chooses one.
DEFAULT_SEGMENT_SECONDS = 30.0
#: Default crossfade between segments, in seconds.
DEFAULT_OVERLAP_SECONDS = 1.0


def plan_segments(model: Separator, segment_seconds: float | None) -> tuple[int, int]:
    """Segment and overlap lengths in samples at the model's rate."""
    seconds = segment_seconds or getattr(model, "segment_seconds", DEFAULT_SEGMENT_SECONDS)
    if seconds <= 0:
        raise SeparationError(f"--segment must be positive, got {seconds}")
    segment = int(round(seconds * model.sample_rate))
    overlap = max(int(DEFAULT_OVERLAP_SECONDS * model.sample_rate), 2 * model.context_samples)
    overlap = min(overlap, segment // 2)
    if segment < 2 * max(overlap, 1):
        raise SeparationError(
            f"--segment {seconds} s is too short for model overlap; use at least "
            f"{2 * overlap / model.sample_rate:.2f} s"
        )
    return segment, overlap


def separate_stream(
    model: Separator,
    blocks: Iterable[np.ndarray],
    segment: int,
    overlap: int,
) -> Iterator[dict[str, np.ndarray]]:
    """Separate a stream of (channels, n) blocks at the model rate, in order.

    Yields dicts of finished (channels, m) output blocks, one per source; their
    concatenation has exactly the input's length.
    """
    hop = segment - overlap
    fade_in = ((np.arange(overlap, dtype=np.float32) + 0.5) / overlap) if overlap else None
    pending: list[np.ndarray] = []
    pending_len = 0
    tail: dict[str, np.ndarray] | None = None  # previous segment's last `overlap` samples

    def join(stems: dict[str, np.ndarray], emit: int) -> dict[str, np.ndarray]:
        nonlocal tail
        out = {}
        for name, stem in stems.items():
            stem = stem.astype(np.float32, copy=True)
            if tail is not None and overlap:
                n = min(overlap, stem.shape[1])
                stem[:, :n] = tail[name][:, :n] * (1 - fade_in[:n]) + stem[:, :n] * fade_in[:n]
            out[name] = stem[:, :emit]
        tail = {name: stem[:, emit:] for name, stem in stems.items()}
        return out

    for block in blocks:
        pending.append(block)
        pending_len += block.shape[1]
        while pending_len >= segment + overlap:  # keep one overlap of look-ahead buffered
            buffer = np.concatenate(pending, axis=1)
            stems = model.separate_block(buffer[:, :segment])
            yield join(stems, hop)
            pending, pending_len = [buffer[:, hop:]], buffer.shape[1] - hop
    if pending_len:
        buffer = np.concatenate(pending, axis=1)
        stems = model.separate_block(buffer)
        yield join(stems, buffer.shape[1])
