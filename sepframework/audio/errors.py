"""User-facing errors of audio input and output."""

from __future__ import annotations

import av
import soundfile as sf

from sepframework.interfaces import SeparationError, SeparationWarning


class AudioError(SeparationError):
    """An audio file cannot be read or written; the message names the file."""


class OutputExistsError(SeparationError):
    """An output file exists already and overwriting was not asked for."""


class ClippingWarning(SeparationWarning):
    """Samples beyond full scale were clipped to fit an integer (or MP3) output file."""


def reason(error: Exception) -> str:
    """The short cause of a libsndfile, FFmpeg or file-system error, for an error message."""
    if isinstance(error, sf.LibsndfileError):
        text = error.error_string.removeprefix("Error : ")
    elif isinstance(error, (av.FFmpegError, OSError)):
        text = error.strerror or type(error).__name__
    else:
        text = str(error)
    text = text.rstrip(".")
    return text[:1].lower() + text[1:]
