"""Audio input and output: reading (whole or streamed), resampling and atomic writing.

Audio arrays are float32 NumPy arrays shaped ``(channels, samples)``.
"""

from sepframework.audio.errors import AudioError, OutputExistsError
from sepframework.audio.resampling import StreamResampler, resample, resampled_length

__all__ = [
    "AudioError",
    "OutputExistsError",
    "StreamResampler",
    "resample",
    "resampled_length",
]
