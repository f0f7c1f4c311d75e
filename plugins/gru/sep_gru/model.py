"""The GRU separator: STFT, one set of masks per frame from the GRU, masked iSTFT.

Stereo: the masks are computed once from the channel-mean magnitude and applied to the
complex STFT of every channel, so the stereo image is kept and the cost does not grow
with the channel count. On the CPU, a separator with loaded weights runs its GRU layers
with ONNX Runtime (:mod:`sep_gru.onnx_gru`), the rest of the network with PyTorch. A
causal (unidirectional) model also streams: see :meth:`GRUSeparator.frame_processor` and
:mod:`sepframework.streaming`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sepframework.interfaces import SeparationError, Separator
from sepframework.loading import resolve_device
from sepframework.model_files import WEIGHTS_FILE
from sepframework.stft import STFT
from sepframework.weights import load_float32_state
from sepframework.streaming import end_padded
from sepframework.cpu_threads import one_cpu_thread

from sep_gru.network import GRUCall, GRUConfig, MaskGRU
from sep_gru.onnx_gru import OnnxGRU

class GRUSeparator(Separator):
    """Vocals/accompaniment separation with a GRU mask network on 16 kHz magnitude frames.

    Offline, long inputs are cut into chunks of ``chunk_frames`` frames, each preceded
    (and, for a bidirectional network, followed) by ``context_frames`` frames of warm-up
    whose masks are discarded; the chunks run through the network as one batch.
    ``network`` wraps an existing (e.g. training) network instead of a fresh one.
    ``chunk_frames=None`` runs the whole input as one sequence, which for a causal
    network is exactly what streaming computes.
    """

    sample_rate = 16000
    sources = ("vocals", "accompaniment")
    residual_source = "accompaniment"  # the masks sum to one
    segment_seconds = 40.0  # three segments in flight (read ahead, separating, writing) stay near 100 MB

    def __init__(
        self,
        config: GRUConfig = GRUConfig(),
        chunk_frames: int | None = 128,
        context_frames: int = 16,
        network: MaskGRU | None = None,
    ) -> None:
        super().__init__()
        if config.n_sources != len(self.sources):
            raise SeparationError(f"a GRU separator needs n_sources={len(self.sources)}, got {config.n_sources}")
        if chunk_frames is not None and chunk_frames < 1:
            raise SeparationError(f"chunk_frames must be positive or None, got {chunk_frames}")
        self.config = config
        self.stft = STFT(config.n_fft, config.hop_length)
        self.network = (network if network is not None else MaskGRU(config)).eval()
        self.chunk_frames = chunk_frames
        self.context_frames = context_frames
        self.context_samples = context_frames * config.hop_length
        #: ONNX Runtime's copy of the GRU layers, made by :meth:`to` ``("cpu")`` after
        #: :meth:`load_weights` from the weights then (the network's own GRU is used otherwise).
        self.onnx_gru: OnnxGRU | None = None
        self._loaded_weights = False

    @classmethod
    def load(
        cls, args: Mapping[str, Any], weights: Mapping[str, Any] | None, device: str = "cpu"
    ) -> GRUSeparator:
        if not weights or WEIGHTS_FILE not in weights:
            raise SeparationError(
                f"the gru plugin needs trained weights ({WEIGHTS_FILE}); load a registry model such as "
                "'gru' or 'gru-stream'"
            )
        separator = cls(GRUConfig.from_args(dict(args)))
        separator.load_weights(Path(weights[WEIGHTS_FILE]))
        return separator.to(device)

    def load_weights(self, path: Path) -> None:
        """Load a safetensors state dict (any float dtype) into the network; the next
        ``to("cpu")`` makes ONNX Runtime's copy of its GRU layers from these weights."""
        state = load_float32_state(path)
        try:
            self.network.load_state_dict(state)
        except RuntimeError as error:
            problems = [line.strip() for line in str(error).splitlines()[1:]]  # the first line only names the class
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise SeparationError(f"{path} does not match the GRU config: {problems[0] if problems else error}{more}") from None
        self.onnx_gru, self._loaded_weights = None, True

    def to(self, device: str) -> GRUSeparator:
        device = resolve_device(device)
        self.network.to(device)
        if device == "cpu" and self._loaded_weights and self.onnx_gru is None:
            self.onnx_gru = OnnxGRU(self.network.gru)
        return super().to(device)

    @property
    def recurrent(self) -> GRUCall:
        """The GRU layers as ``nn.GRU`` is called: ONNX Runtime's on the CPU once made (see
        :attr:`onnx_gru`; same results, faster), otherwise the network's own (a network
        still training, or one on a GPU)."""
        return self.onnx_gru if self.onnx_gru is not None and self.device == "cpu" else self.network.gru

    @property
    def causal(self) -> bool:
        """Whether mask frame ``t`` depends on frames ``0..t`` only (streamable)."""
        return not self.config.bidirectional

    def separate_block(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        with one_cpu_thread():  # the GRU is sequential, and the audio threads use the other cores
            spec = self.stft.forward(end_padded(audio, self.stft))
            magnitude = np.abs(spec).mean(axis=0).T  # (frames, bins), channel mean
            # Masked in place (the mixture spectrogram is not needed again): no second
            # spectrogram and no per-channel copy of the mask in memory. The masks sum to
            # one, so the accompaniment is the rest of the mixture: one iSTFT instead of
            # two (equal to masking it separately up to float rounding).
            spec *= self.vocal_mask(magnitude)[None]
            vocals = self.stft.inverse(spec, audio.shape[1])
        return {"vocals": vocals, "accompaniment": audio.astype(np.float32, copy=False) - vocals}

    def frame_processor(self) -> GRUFrameProcessor:
        """A fresh stateful processor for :class:`sepframework.streaming.Streamer`."""
        if not self.causal:
            raise SeparationError("this GRU model is bidirectional and cannot stream; use the causal model 'gru-stream'")
        return GRUFrameProcessor(self)

    def vocal_mask(self, magnitude: np.ndarray) -> np.ndarray:
        """The vocals mask (bins, frames) of a magnitude sequence (frames, bins), computed
        chunk-wise in one batch (see the class doc)."""
        frames, bins = magnitude.shape
        chunk, left = self.chunk_frames, self.context_frames
        right = 0 if self.causal else left
        network = self.network
        with torch.inference_mode():
            tensor = torch.from_numpy(np.ascontiguousarray(magnitude, dtype=np.float32)).to(self.device)
            if chunk is None or frames <= chunk + left + right:
                return network.first_mask(tensor[None], gru=self.recurrent)[0][0].T.cpu().numpy()
            # The frame-wise encoder and decoder run once per frame; only the GRU runs
            # on the overlapping windows (chunk and context, padded with silent frames).
            encoded = network.encode(tensor)
            silence = network.encode(tensor.new_zeros(1, bins))
            n_chunks = math.ceil(frames / chunk)
            after = n_chunks * chunk - frames + right
            padded = torch.cat([silence.expand(left, -1), encoded, silence.expand(after, -1)])
            windows = padded.unfold(0, left + chunk + right, chunk).transpose(1, 2)  # (chunks, window, hidden)
            recurrent, _ = self.recurrent(windows.contiguous(), None)
            kept = recurrent[:, left : left + chunk].reshape(n_chunks * chunk, -1)[:frames]
            mask = network.decode_first_mask(encoded, kept)
        return mask.T.cpu().numpy()


class GRUFrameProcessor:
    """Separates consecutive STFT frames of a stream, carrying the GRU state between calls."""

    def __init__(self, separator: GRUSeparator) -> None:
        self.separator = separator
        self.state: torch.Tensor | None = None
        with torch.inference_mode():  # once per stream, not per block
            self.mask_layer = separator.network.first_mask_layer()

    def __call__(self, spec: np.ndarray) -> dict[str, np.ndarray]:
        """Source spectrograms {source: (channels, bins, k)} of mixture frames (channels, bins, k).

        As in :meth:`GRUSeparator.separate_block`: every channel is masked with the vocals
        mask of the channel-mean magnitude, and the accompaniment is the rest.
        """
        magnitude = np.abs(spec).mean(axis=0).T
        with torch.inference_mode():
            tensor = torch.from_numpy(np.ascontiguousarray(magnitude, dtype=np.float32)).to(self.separator.device)
            mask, self.state = self.separator.network.first_mask(
                tensor[None], self.state, self.mask_layer, self.separator.recurrent
            )
        vocals = spec * mask[0].T.cpu().numpy()
        return {"vocals": vocals, "accompaniment": spec - vocals}
