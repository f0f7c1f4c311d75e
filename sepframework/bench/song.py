"""A deterministic, song-like test signal for speed measurements.

Four-on-the-floor drums (kick, snare, hi-hat), a bass line and a stereo chord pad
(A minor - F - C - G at 120 BPM) under a sung melody with harmonics, formants and vibrato
that rests one bar in four. The same ``seconds`` and ``seed`` always give the same samples,
so every model and every run separates exactly the same file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sepframework.audio import AudioWriter
from sepframework.interfaces import SeparationError

#: Rate and channel count of the generated file (a CD-quality song).
SONG_RATE = 44100
SONG_CHANNELS = 2
BEAT_SECONDS = 0.5  # 120 BPM
BEATS_PER_BAR = 4
#: Chord roots (Hz) and triads (semitones above the root) of the four-bar progression.
PROGRESSION = ((110.0, (0, 3, 7)), (87.31, (0, 4, 7)), (130.81, (0, 4, 7)), (98.0, (0, 4, 7)))
#: A minor pentatonic, the notes the melody picks from (Hz).
MELODY_NOTES = (220.0, 261.63, 293.66, 329.63, 392.0, 440.0, 523.25)
#: Gain of the whole mix, leaving headroom below full scale.
MASTER_GAIN = 0.6
#: Samples generated and written at once.
BLOCK_SECONDS = 10.0


@dataclass(frozen=True)
class _Event:
    """One note or drum hit: where it starts and how to render its (channels, n) samples."""

    onset: int
    length: int
    render: Callable[[np.ndarray, np.random.Generator], np.ndarray]
    seed: tuple[int, ...]


def _stereo(mono: np.ndarray, left: float, right: float) -> np.ndarray:
    return np.stack([left * mono, right * mono])


def _kick(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    phase = 2 * np.pi * (50 * t + 70 / 25 * (1 - np.exp(-25 * t)))  # pitch falls from 120 to 50 Hz
    return _stereo(0.5 * np.sin(phase) * np.exp(-12 * t), 1.0, 1.0)


def _snare(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    body = 0.3 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 185 * t)
    return _stereo(0.35 * body * np.exp(-22 * t), 0.9, 1.0)


def _hat(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = np.diff(rng.standard_normal(t.size + 1))  # first difference: a crude high-pass
    return _stereo(0.06 * noise * np.exp(-70 * t), 0.7, 1.0)


def _bass(frequency: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    def render(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        tone = sum(np.sin(2 * np.pi * k * frequency * t) / k for k in (1, 2, 3))
        return _stereo(0.25 * tone * np.exp(-3 * t) * np.minimum(t / 0.005, 1), 1.0, 1.0)

    return render


def _pad(frequencies: tuple[float, ...]) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    def render(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        envelope = np.minimum(t / 0.08, 1) * np.minimum((t[-1] - t) / 0.1, 1)
        left = sum(np.sin(2 * np.pi * k * f * t) / k**1.5 for f in frequencies[::2] for k in range(1, 5))
        right = sum(np.sin(2 * np.pi * k * f * t) / k**1.5 for f in frequencies[1::2] for k in range(1, 5))
        return 0.05 * envelope * np.stack([left + 0.5 * right, right + 0.5 * left])

    return render


def _voice(frequency: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """A sung note: 12 harmonics shaped by two formants, delayed vibrato, a little breath."""

    def render(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        depth = 0.015 * np.minimum(t / 0.15, 1)
        wobble = depth * (1 - np.cos(2 * np.pi * 5.5 * t)) / (2 * np.pi * 5.5)
        phase = 2 * np.pi * frequency * (t + wobble)
        voice = np.zeros_like(t)
        for k in range(1, 13):
            f = k * frequency
            formants = np.exp(-(((f - 650) / 250) ** 2)) + 0.6 * np.exp(-(((f - 1900) / 400) ** 2))
            voice += (0.15 + formants) / k * np.sin(k * phase)
        breath = 0.02 * rng.standard_normal(t.size)
        envelope = np.minimum(t / 0.03, 1) * np.minimum((t[-1] - t) / 0.05, 1)
        return _stereo(0.3 * envelope * (voice + breath), 1.0, 1.0)

    return render


def _events(seconds: float, seed: int) -> list[_Event]:
    """Every note and hit of a ``seconds``-long song, by onset."""
    rng = np.random.default_rng(seed)
    beat = int(BEAT_SECONDS * SONG_RATE)
    events = []
    for index in range(int(np.ceil(seconds / BEAT_SECONDS))):
        onset, bar, beat_in_bar = index * beat, index // BEATS_PER_BAR, index % BEATS_PER_BAR
        root, triad = PROGRESSION[bar % len(PROGRESSION)]
        events.append(_Event(onset, beat // 2, _kick, (seed, index, 0)))
        events.append(_Event(onset, beat // 2, _bass(root), (seed, index, 1)))
        for half in (0, beat // 2):
            events.append(_Event(onset + half, beat // 5, _hat, (seed, index, 2, half)))
        if beat_in_bar in (1, 3):
            events.append(_Event(onset, beat // 2, _snare, (seed, index, 3)))
        if beat_in_bar == 0:
            chord = tuple(2 * root * 2 ** (step / 12) for step in triad)
            events.append(_Event(onset, beat * BEATS_PER_BAR, _pad(chord), (seed, index, 4)))
        if bar % 4 != 3:  # the singer rests every fourth bar
            note = MELODY_NOTES[rng.integers(len(MELODY_NOTES))]
            events.append(_Event(onset, int(beat * 0.95), _voice(note), (seed, index, 5)))
    return events


def _render(start: int, stop: int, events: list[_Event]) -> np.ndarray:
    """Samples ``start:stop`` of the song made of ``events``, (channels, stop - start) float32."""
    block = np.zeros((SONG_CHANNELS, stop - start), dtype=np.float64)
    for event in events:
        begin, end = max(event.onset, start), min(event.onset + event.length, stop)
        if begin < end:  # whole events are rendered, so a note cut by a block edge matches on both sides
            samples = event.render(np.arange(event.length) / SONG_RATE, np.random.default_rng(event.seed))
            block[:, begin - start : end - start] += samples[:, begin - event.onset : end - event.onset]
    return (MASTER_GAIN * block).astype(np.float32)


def write_song(path: str | Path, seconds: float, seed: int = 0) -> Path:
    """Write a ``seconds``-long 44.1 kHz stereo 16-bit WAV song to ``path``, block by block."""
    if seconds <= 0:
        raise SeparationError(f"the test song must last a positive time, got {seconds} s")
    events = _events(seconds, seed)
    total, step = int(round(seconds * SONG_RATE)), int(BLOCK_SECONDS * SONG_RATE)
    with AudioWriter(Path(path), SONG_RATE, SONG_CHANNELS, format="wav", subtype="PCM_16", overwrite=True) as writer:
        for start in range(0, total, step):
            writer.write(_render(start, min(start + step, total), events))
    return Path(path)
