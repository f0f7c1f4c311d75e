"""Audio input and output: reading (whole or streamed), resampling and atomic writing.

Audio arrays are float32 NumPy arrays shaped ``(channels, samples)``.
"""

from sepframework.audio.errors import AudioError, ClippingWarning, OutputExistsError
from sepframework.audio.reading import AUDIO_EXTENSIONS, AudioInfo, AudioReader, audio_info, open_reader, read_audio
from sepframework.audio.resampling import StreamResampler, resample, resampled_length
from sepframework.audio.writing import (
    MP3_SAMPLE_RATES,
    SUPPORTED_WRITE_FORMATS,
    AudioWriter,
    checked_subtype,
    write_audio,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "MP3_SAMPLE_RATES",
    "SUPPORTED_WRITE_FORMATS",
    "AudioError",
    "AudioInfo",
    "AudioReader",
    "AudioWriter",
    "ClippingWarning",
    "OutputExistsError",
    "StreamResampler",
    "audio_info",
    "checked_subtype",
    "open_reader",
    "read_audio",
    "resample",
    "resampled_length",
    "write_audio",
]
