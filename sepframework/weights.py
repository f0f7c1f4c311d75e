"""Reading stored model weights: safetensors files as float32 state dicts."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file


def load_float32_state(path: Path | str) -> dict[str, torch.Tensor]:
    """The tensors of the safetensors file ``path``, floating ones as float32 (files may
    store float16), others as stored."""
    return {name: tensor.float() if tensor.is_floating_point() else tensor
            for name, tensor in load_file(str(path)).items()}
