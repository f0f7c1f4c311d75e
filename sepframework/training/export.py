"""Writing a trained model as registry files: ``model.safetensors`` and ``config.json``."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save

from sepframework.interfaces import SeparationError
from sepframework.model_files import CONFIG_FILE, WEIGHTS_FILE
from sepframework.training.trainable import Trainable


def export_model(trainable: Trainable, model: torch.nn.Module, plugin: str, out: Path) -> dict[str, Path]:
    """Write the weights (floating tensors as float16: half the size, no loss of quality
    measured) and the config.

    Returns ``{file name: path}``, the ``weights`` mapping a Separator's ``load`` takes.
    """
    tensors = {}
    for name, tensor in trainable.export(model).items():
        tensor = tensor.detach().cpu().contiguous()
        tensors[name] = tensor.half() if tensor.is_floating_point() else tensor
        if tensors[name].is_floating_point() and not torch.isfinite(tensors[name]).all():
            if torch.isfinite(tensor).all():
                raise SeparationError(f"weight {name} of the trained model has values beyond ±65504, which float16 "
                                      "weights cannot hold; such weights usually mean an unstable run: train again "
                                      "with a lower --learning-rate")
            raise SeparationError(f"weight {name} of the trained model is NaN or infinite: the training diverged; "
                                  "train again with a lower --learning-rate")
    out.mkdir(parents=True, exist_ok=True)
    weights, config = out / WEIGHTS_FILE, out / CONFIG_FILE
    # written as bytes like the other files, so it gets the usual permissions (save_file's temporary file is 0600)
    weights.write_bytes(save(tensors, metadata={"plugin": plugin}))
    config.write_text(json.dumps({"plugin": plugin, "args": trainable.args}, indent=2) + "\n")
    return {WEIGHTS_FILE: weights, CONFIG_FILE: config}
