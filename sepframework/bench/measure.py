"""Instruments used inside a benchmark worker: a stopwatch, peak RSS and peak GPU memory."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_MIB = 1024 * 1024
#: Per-process memory counters on Linux; ``VmHWM`` is the peak resident set size.
_PROC_STATUS = Path("/proc/self/status")


def peak_rss_mb() -> float:
    """Peak resident memory of this process since it started, in MiB.

    On Linux this is ``VmHWM`` from ``/proc/self/status``: ``getrusage``'s ``ru_maxrss``
    survives ``exec``, so a worker started by a large parent would report at least the
    parent's size. Elsewhere it is ``ru_maxrss`` (bytes on macOS, KiB on other systems).
    """
    if _PROC_STATUS.exists():
        for line in _PROC_STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / _MIB if sys.platform == "darwin" else peak / 1024


def _synchronize(device: str) -> None:
    """Wait for queued GPU work, so a stopwatch stops when the work is done."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def timed(call: Callable[[], T], device: str = "cpu") -> tuple[T, float]:
    """``call()``'s result and its wall-clock duration in seconds (GPU work included)."""
    _synchronize(device)
    start = time.perf_counter()
    result = call()
    _synchronize(device)
    return result, time.perf_counter() - start


def reset_gpu_peak(device: str) -> None:
    """Start a new peak-GPU-memory window on ``device`` (nothing on the CPU)."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats(device)


def gpu_peak_mb(device: str) -> float | None:
    """Most GPU memory held by tensors since :func:`reset_gpu_peak`, in MiB; ``None`` on the CPU."""
    if not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.max_memory_allocated(device) / _MIB


def gpu_name(device: str) -> str | None:
    """The GPU's product name, ``None`` on the CPU."""
    if not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.get_device_name(device)
