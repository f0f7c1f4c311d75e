"""Running torch CPU work on one intra-op thread."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch CPU ops on one intra-op thread inside the block, then restore the count.

    Small sequential operations (a GRU step, small LAPACK calls) gain little from a second
    thread and lose badly when the cores are shared: threads spin-wait for each other.
    Switching costs about a millisecond, so wrap whole segments, not tiny blocks.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
