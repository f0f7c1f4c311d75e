"""The ``unet`` separator: U-Net soft masks on the STFT magnitude, patch by patch.

One network pass runs on the magnitude of the channel mean; its vocal mask multiplies
every channel's complex STFT (so the mixture phase is kept), and the accompaniment is
the rest of the mixture (mask ``1 - m``): the two stems always sum to the input.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from sepframework.interfaces import SeparationError, Separator
from sepframework.loading import resolve_device
from sepframework.model_files import WEIGHTS_FILE
from sepframework.stft import STFT, stft_problem
from sepframework.weights import load_float32_state
from sep_unet.network import PATCH_MULTIPLE, UNet

#: Model arguments of the shipped configuration (``config.json`` ``args``).
DEFAULT_ARGS: dict[str, Any] = {"sample_rate": 16000, "n_fft": 1024, "hop_length": 256, "patch_frames": 128}
#: Patches per segment of the chunked engine.
PATCHES_PER_SEGMENT = 16
#: Patches per network call (bounds activation memory).
PATCH_BATCH = 16


def check_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """``args`` completed with defaults; a clear error for unknown or unusable values."""
    unknown = set(args) - set(DEFAULT_ARGS)
    if unknown:
        raise SeparationError(f"unknown unet argument(s) {', '.join(sorted(unknown))}; known: {', '.join(DEFAULT_ARGS)}")
    full = {**DEFAULT_ARGS, **args}
    for key, value in full.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise SeparationError(f"unet {key} must be a positive integer, got {value!r}")
    if (full["n_fft"] // 2) % PATCH_MULTIPLE:
        raise SeparationError(f"unet n_fft={full['n_fft']} must give a multiple of {PATCH_MULTIPLE} bins (n_fft / 2)")
    if full["patch_frames"] % PATCH_MULTIPLE:
        raise SeparationError(f"unet patch_frames={full['patch_frames']} must be a multiple of {PATCH_MULTIPLE}")
    problem = stft_problem(full["n_fft"], full["hop_length"])
    if problem is not None:
        raise SeparationError(f"unet {problem}")
    return full


def inference_dtype(device: str) -> torch.dtype:
    """bfloat16 where the hardware computes it natively (validation GNSDR changes by less
    than 0.01 dB), else float32."""
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else torch.float32


def fuse_batch_norm(network: UNet) -> UNet:
    """An inference copy of ``network`` with every batch norm folded into its convolution."""
    fused = copy.deepcopy(network).eval()
    for block in [*fused.encoder, *fused.decoder]:
        conv, norm = block[0], block[1]
        block[0] = fuse_conv_bn_eval(conv, norm, transpose=isinstance(conv, nn.ConvTranspose2d))
        block[1] = nn.Identity()
    return fused


def sub_pixel_convolution(layer: nn.ConvTranspose2d) -> nn.Sequential:
    """A convolution and pixel shuffle computing what the stride-2, 5x5, padding-2 transposed
    convolution ``layer`` computes (output padding 1: twice the input's size).

    Output pixel ``(2m + ry, 2n + rx)`` gathers inputs ``m + dy``, ``n + dx`` (``d`` in -1..1)
    through kernel taps ``(2 + ry - 2 dy, 2 + rx - 2 dx)``; one 3x3 convolution with a channel
    per phase ``(ry, rx)`` computes all four, and the shuffle interleaves them. With few
    output channels this runs several times faster on the CPU than the transposed form.
    """
    if (layer.stride, layer.kernel_size, layer.padding, layer.output_padding) != ((2, 2), (5, 5), (2, 2), (1, 1)):
        raise ValueError(f"sub_pixel_convolution needs a stride-2 5x5 layer with padding 2, not {layer}")
    weight = layer.weight.detach()  # (in, out, 5, 5)
    sub = weight.new_zeros(weight.shape[1], 2, 2, weight.shape[0], 3, 3)  # (out, ry, rx, in, 3, 3)
    for ry, rx, dy, dx in itertools.product(range(2), range(2), range(-1, 2), range(-1, 2)):
        ky, kx = 2 + ry - 2 * dy, 2 + rx - 2 * dx
        if ky <= 4 and kx <= 4:
            sub[:, ry, rx, :, dy + 1, dx + 1] = weight[:, :, ky, kx].T
    conv = nn.Conv2d(weight.shape[0], 4 * weight.shape[1], 3, padding=1)
    conv.weight = nn.Parameter(sub.reshape(conv.weight.shape))
    conv.bias = nn.Parameter(layer.bias.detach().repeat_interleave(4))
    return nn.Sequential(conv, nn.PixelShuffle(2))


def inference_network(network: UNet) -> UNet:
    """An inference copy of ``network``: batch norms folded into the convolutions, and the
    one-channel output layer as a sub-pixel convolution (the same function, faster)."""
    fast = fuse_batch_norm(network)
    fast.output = sub_pixel_convolution(fast.output)
    return fast


def to_patches(magnitude: torch.Tensor, patch_frames: int) -> torch.Tensor:
    """(bins, frames) -> (patches, 1, bins, patch_frames), zero-padding the last patch."""
    bins, frames = magnitude.shape
    count = -(-frames // patch_frames)
    padded = torch.nn.functional.pad(magnitude, (0, count * patch_frames - frames))
    return padded.reshape(bins, count, patch_frames).permute(1, 0, 2).unsqueeze(1)


def from_patches(patches: torch.Tensor, frames: int) -> torch.Tensor:
    """Inverse of :func:`to_patches`: (patches, 1, bins, patch_frames) -> (bins, frames)."""
    count, _, bins, patch_frames = patches.shape
    return patches[:, 0].permute(1, 0, 2).reshape(bins, count * patch_frames)[:, :frames]


class UNetSeparator(Separator):
    """Vocals and accompaniment from a U-Net vocal mask (Jansson et al., 2017)."""

    sources = ("vocals", "accompaniment")
    residual_source = "accompaniment"  # the masks sum to one

    def __init__(self, network: UNet, args: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.args = check_args(args or {})
        self.sample_rate = self.args["sample_rate"]
        self.stft = STFT(self.args["n_fft"], self.args["hop_length"])
        self.patch_frames = self.args["patch_frames"]
        self.segment_seconds = (PATCHES_PER_SEGMENT * self.patch_frames - 1) * self.args["hop_length"] / self.sample_rate
        self.fused = inference_network(network)
        self.to(self.device)

    @classmethod
    def load(cls, args: Mapping[str, Any], weights: Mapping[str, Any] | None, device: str = "cpu") -> UNetSeparator:
        args = check_args(args)
        if not weights or WEIGHTS_FILE not in weights:
            raise SeparationError(f"the unet model needs trained weights ({WEIGHTS_FILE}); "
                                  "use a registry model, e.g. `sep run --model unet`, or train one with `sep train unet`")
        with torch.device("meta"):  # no random initialisation: the weights replace it
            network = UNet()
        state = load_float32_state(weights[WEIGHTS_FILE])
        try:
            network.load_state_dict(state, assign=True)
        except RuntimeError as error:
            raise SeparationError(f"{weights[WEIGHTS_FILE]}: not unet weights ({error})") from None
        return cls(network, args).to(device)

    def to(self, device: str) -> UNetSeparator:
        """Move to ``device``, as a bfloat16 channels-last copy where that is native."""
        device = resolve_device(device)
        self.dtype = inference_dtype(device)
        self.network = copy.deepcopy(self.fused).to(device=device, dtype=self.dtype, memory_format=torch.channels_last)
        return super().to(device)

    def vocal_mask(self, magnitude: np.ndarray) -> np.ndarray:
        """Vocal mask in [0, 1] for a (n_fft // 2 + 1, frames) magnitude, same shape."""
        bins = self.args["n_fft"] // 2
        frames = magnitude.shape[1]
        patches = to_patches(torch.from_numpy(magnitude[:bins]), self.patch_frames)
        patches = patches.to(device=self.device, dtype=self.dtype, memory_format=torch.channels_last)
        with torch.inference_mode():
            masks = torch.cat([self.network(batch) for batch in patches.split(PATCH_BATCH)])
        mask = from_patches(masks, frames).float().cpu().numpy()
        return np.concatenate([mask, mask[-1:]])  # the Nyquist bin takes its neighbour's mask

    def separate_block(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        spec = self.stft.forward(audio)
        mask = self.vocal_mask(np.abs(spec.mean(axis=0)))
        vocals = spec * mask
        length = audio.shape[1]
        vocals_audio = self.stft.inverse(vocals, length)
        return {"vocals": vocals_audio, "accompaniment": audio.astype(np.float32, copy=False) - vocals_audio}
