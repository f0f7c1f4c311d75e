"""Reading stored model weights: safetensors files as float32 state dicts."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from sepframework.interfaces import SeparationError


def load_float32_state(path: Path | str) -> dict[str, torch.Tensor]:
    """The tensors of the safetensors file ``path``, floating ones as float32 (files may
    store float16), others as stored. An unreadable or corrupt file is a ``SeparationError``."""
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise SeparationError(f"{path}: not a readable safetensors file ({error})") from None
    return {name: tensor.float() if tensor.is_floating_point() else tensor for name, tensor in tensors.items()}
