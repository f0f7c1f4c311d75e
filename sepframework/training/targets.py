"""Names of the training targets, without importing PyTorch (``sep train --help`` lists them).

What each target means: :mod:`sepframework.training.spectra`.
"""

#: Names of the training targets, for ``TrainConfig.target`` and ``sep train --target``.
TARGETS = ("magnitude", "phase-sensitive", "waveform")
