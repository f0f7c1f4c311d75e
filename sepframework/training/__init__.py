"""Shared training library: plugins provide a :class:`Trainable`, the library does the rest.

>>> from sepframework.training import TrainConfig, train_and_export   # doctest: +SKIP
>>> train_and_export("unet", UNetTrainable(), Path("mir1k"), Path("runs/unet"), TrainConfig())  # doctest: +SKIP

The names below are imported from their modules on first use, so that importing a light
part of the package (``sep train --help`` imports ``sepframework.training.cli``) does not
import PyTorch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the module defining it.
_EXPORTS = {
    "RemixSampler": "sepframework.training.augment",
    "TrainConfig": "sepframework.training.loop",
    "TrainResult": "sepframework.training.loop",
    "Trainable": "sepframework.training.trainable",
    "Validator": "sepframework.training.validation",
    "export_model": "sepframework.training.export",
    "fit": "sepframework.training.loop",
    "split_by_song": "sepframework.training.split",
    "train_and_export": "sepframework.training.run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
