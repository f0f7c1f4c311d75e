"""Shared training library: plugins provide a :class:`Trainable`, the library does the rest.

>>> from sepframework.training import TrainConfig, train_and_export   # doctest: +SKIP
>>> train_and_export("unet", UNetTrainable(), Path("mir1k"), Path("runs/unet"), TrainConfig())  # doctest: +SKIP
"""

from sepframework.training.augment import RemixSampler
from sepframework.training.export import export_model
from sepframework.training.loop import TrainConfig, TrainResult, fit
from sepframework.training.run import train_and_export
from sepframework.training.split import split_by_song
from sepframework.training.trainable import Trainable
from sepframework.training.validation import Validator

__all__ = [
    "RemixSampler",
    "TrainConfig",
    "TrainResult",
    "Trainable",
    "Validator",
    "export_model",
    "fit",
    "split_by_song",
    "train_and_export",
]
