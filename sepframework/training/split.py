"""Honest validation splits: whole songs are held out, the same share for every singer.

MIR-1K clip names are ``singer_song_clip`` (e.g. ``amy_4_03``); clips of one song share
their accompaniment, so holding out single clips would leak it into training. Names
without that pattern count as their own song with no singer grouping.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from sepframework.datasets import Track

_CLIP_NAME = re.compile(r"^(?P<singer>.+)_(?P<song>[^_]+)_(?P<clip>\d+)$")


def song_of(name: str) -> tuple[str, str]:
    """(singer, song) of a track name; ``("", name)`` when it has no clip pattern."""
    match = _CLIP_NAME.match(name)
    if match is None:
        return "", name
    return match["singer"], f"{match['singer']}_{match['song']}"


def split_by_song(tracks: Sequence[Track], fraction: float, seed: int) -> tuple[list[Track], list[Track]]:
    """(train, validation): about ``fraction`` of each singer's tracks held out by whole song.

    For every singer, songs are visited in a seeded random order and one is held out when
    that brings the singer's held-out count closer to its target.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    songs: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for track in tracks:
        singer, song = song_of(track.name)
        songs[singer][song] += 1
    rng = np.random.default_rng(seed)
    held_out: set[str] = set()
    for singer in sorted(songs):
        counts = songs[singer]
        target = fraction * sum(counts.values())
        taken = 0
        for song in rng.permutation(sorted(counts)):
            if abs(taken + counts[song] - target) < abs(taken - target):
                held_out.add(str(song))
                taken += counts[song]
    train = [track for track in tracks if song_of(track.name)[1] not in held_out]
    valid = [track for track in tracks if song_of(track.name)[1] in held_out]
    return train, valid
