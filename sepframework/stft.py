"""Short-time Fourier transform of (channels, samples) audio.

Framing and overlap-add run in Numba kernels
(:mod:`sepframework.kernels`); the FFTs are ``scipy.fft`` on float32, threaded over as
many workers as Numba uses.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.fft

from sepframework import kernels
from sepframework.interfaces import SeparationError, Transform


#: Smallest ratio of the least to the largest sum of squared windows over a hop (the
#: NOLA condition of :func:`scipy.signal.check_NOLA`, relative): below it the inverse
#: divides by near-zero sums, which blows up any change made to the spectrogram.
NOLA_TOLERANCE = 1e-3


def stft_problem(
    n_fft: int, hop_length: int, window: str | np.ndarray = "hann", center: bool = True
) -> str | None:
    """Why ``STFT(n_fft, hop_length, window, center)`` is refused, or None if it is not.

    For plugins checking their arguments before anything else runs.
    """
    try:
        _checked_window(n_fft, hop_length, window, center)
    except SeparationError as error:
        return str(error)
    return None


class STFT(Transform):
    """STFT with ``torch.stft(..., center=True, pad_mode="constant")`` conventions.

    ``window`` is a :func:`scipy.signal.get_window` name (periodic, e.g. ``"hann"``) or
    an array of ``n_fft`` samples. With ``center=True`` the signal is zero-padded by
    ``n_fft // 2`` on both sides, so frame ``t`` is centred on sample ``t * hop_length``
    and even one-sample inputs give one frame; with ``center=False`` frame ``t`` starts
    at sample ``t * hop_length``. Empty inputs give zero frames.

    The inverse overlap-adds the windowed inverse FFTs and divides by the sum of squared
    windows where that exceeds :attr:`window_sum_floor`. Settings are refused (see
    :func:`stft_problem`) unless over a hop the least such sum is at least
    :data:`NOLA_TOLERANCE` times the largest and, with ``center=True``,
    ``hop_length <= n_fft // 2 + 1``, so that every sample lies in a frame. Then
    ``inverse(forward(x), x.shape[1])`` returns ``x`` up to float32 rounding, except at
    samples that only the tapered edge of a frame covers (rounding errors grow by one over
    the window there, and sums at or below the floor give zeros): with ``center=True``
    possibly the last few samples (appending ``hop_length`` zeros avoids that, as
    :func:`sepframework.streaming.end_padded` does); with ``center=False`` also the first
    ones, and samples after the end of the last frame come back as zeros.
    """

    def __init__(
        self,
        n_fft: int = 1024,
        hop_length: int = 256,
        window: str | np.ndarray = "hann",
        center: bool = True,
    ) -> None:
        self.window = _checked_window(n_fft, hop_length, window, center)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.center = bool(center)
        #: Sums of squared windows at or below this are not divided by.
        self.window_sum_floor = kernels.window_sum_floor(self.window, self.hop_length)

    @property
    def n_bins(self) -> int:
        """Frequency bins per frame: ``n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    @property
    def _pad(self) -> int:
        return self.n_fft // 2 if self.center else 0

    def n_frames(self, length: int) -> int:
        """Frames :meth:`forward` returns for ``length`` samples (0 for an empty input)."""
        padded = length + 2 * self._pad
        if length <= 0 or padded < self.n_fft:
            return 0
        return 1 + (padded - self.n_fft) // self.hop_length

    def forward(self, audio: np.ndarray) -> np.ndarray:
        """Complex64 spectrogram (channels, n_bins, frames) of float32 (channels, samples).

        The result is a transposed view of a C-contiguous (channels, frames, n_bins)
        buffer, as ``torch.stft`` returns; :meth:`inverse` is fastest on that layout.
        """
        audio = np.asarray(audio)
        if audio.ndim != 2:
            raise SeparationError(
                f"audio must be shaped (channels, samples), got an array of shape {audio.shape}"
            )
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        n_frames = self.n_frames(audio.shape[1])
        frames = np.empty((audio.shape[0], n_frames, self.n_fft), dtype=np.float32)
        kernels.frame_signal(audio, self.window, self.hop_length, self._pad, frames)
        spec = scipy.fft.rfft(frames, axis=-1, overwrite_x=True, workers=numba.get_num_threads())
        return spec.transpose(0, 2, 1)

    def inverse(self, data: np.ndarray, length: int) -> np.ndarray:
        """Float32 audio (channels, ``length``) from a (channels, n_bins, frames) spectrogram.

        Samples beyond the last frame are zero.
        """
        spec = np.asarray(data)
        if spec.ndim != 3 or spec.shape[1] != self.n_bins:
            raise SeparationError(
                f"spectrogram must be shaped (channels, {self.n_bins}, frames) for "
                f"n_fft={self.n_fft}, got an array of shape {spec.shape}"
            )
        if int(length) != length or length < 0:
            raise SeparationError(f"length must be a non-negative integer, got {length}")
        by_frame = np.ascontiguousarray(spec.transpose(0, 2, 1), dtype=np.complex64)
        frames = scipy.fft.irfft(by_frame, n=self.n_fft, axis=-1, workers=numba.get_num_threads())
        audio = np.zeros((spec.shape[0], int(length)), dtype=np.float32)
        kernels.overlap_add(frames, self.window, self.hop_length, self._pad, self.window_sum_floor, audio)
        return audio


def _checked_window(
    n_fft: int, hop_length: int, window: str | np.ndarray, center: bool
) -> np.ndarray:
    """The window of usable STFT settings (see :class:`STFT`), else a :class:`SeparationError`."""
    if int(n_fft) != n_fft or n_fft < 2:
        raise SeparationError(f"n_fft must be an integer >= 2, got {n_fft}")
    if int(hop_length) != hop_length or hop_length < 1:
        raise SeparationError(f"hop_length must be a positive integer, got {hop_length}")
    if center and hop_length > n_fft // 2 + 1:
        raise SeparationError(
            f"hop_length={hop_length} must be at most n_fft // 2 + 1 = {n_fft // 2 + 1} for "
            f"n_fft={n_fft}: a longer hop leaves the last samples of some signals in no frame"
        )
    if hop_length > n_fft:
        raise SeparationError(
            f"hop_length={hop_length} must be at most n_fft={n_fft}: a longer hop leaves "
            "samples between frames"
        )
    values = _make_window(window, int(n_fft))
    sums = kernels.window_sums(values, int(hop_length))
    ratio = sums.min() / sums.max() if sums.max() > 0 else 0.0
    if ratio < NOLA_TOLERANCE:
        name = f"the {window!r} window" if isinstance(window, str) else "the given window"
        raise SeparationError(
            f"hop_length={hop_length} with n_fft={n_fft} and {name} cannot be inverted: its "
            f"squared windows overlap-add to as little as {ratio:.2g} of their largest sum "
            f"(at least {NOLA_TOLERANCE:g} is needed)"
        )
    return values


def _make_window(window: str | np.ndarray, n_fft: int) -> np.ndarray:
    """Float32 C-contiguous window of ``n_fft`` samples from a name or an array."""
    if isinstance(window, str):
        values = _named_window(window, n_fft)
    else:
        values = np.asarray(window)
        if values.shape != (n_fft,):
            raise SeparationError(f"window must have shape ({n_fft},), got {values.shape}")
    return np.ascontiguousarray(values, dtype=np.float32)


def _named_window(name: str, n_fft: int) -> np.ndarray:
    """Periodic window ``name`` as :func:`scipy.signal.get_window` makes it."""
    if name == "hann":
        # The default, built here because importing scipy.signal adds ~0.7 s to start-up.
        return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    import scipy.signal

    try:
        return scipy.signal.get_window(name, n_fft, fftbins=True)
    except ValueError as error:
        raise SeparationError(f"unknown window {name!r}: {error}") from None
