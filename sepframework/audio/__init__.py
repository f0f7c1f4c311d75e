"""Audio input and output: reading (whole or streamed), resampling and atomic writing.

Audio arrays are float32 NumPy arrays shaped ``(channels, samples)``.
"""

from sepframework.audio.errors import AudioError, OutputExistsError
from sepframework.audio.reading import AUDIO_EXTENSIONS, AudioInfo, AudioReader, audio_info, open_reader, read_audio
from sepframework.audio.resampling import StreamResampler, resample, resampled_length

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioError",
    "AudioInfo",
    "AudioReader",
    "OutputExistsError",
    "StreamResampler",
    "audio_info",
    "open_reader",
    "read_audio",
    "resample",
    "resampled_length",
]
