"""CPU thread counts of torch and Numba, which share one OpenMP runtime."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numba
import torch


def limit_cpu_threads(threads: int) -> None:
    """Compute on at most ``threads`` CPU threads, in torch and in the Numba kernels alike.

    Both must be set: with Numba's OpenMP threading layer, every parallel kernel launch
    sets the OpenMP thread count of the calling thread to Numba's own, which is also the
    count torch's intra-op parallelism reads. Limiting torch alone is undone by the first
    STFT (measured: a 1-thread training slowed 6x after its first validation, its
    second OpenMP thread spin-waiting in barriers on shared cores).
    """
    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


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


@contextlib.contextmanager
def one_cpu_thread() -> Iterator[None]:
    """Run torch, the Numba kernels and the STFT's FFTs on one thread inside the block,
    then restore both counts.

    For work that shares the cores with other threads, such as a segment separated while
    ``sep run`` decodes and encodes beside it: a kernel split over two threads then waits
    for the one that is descheduled (a GRU's whole block: 4-7 % faster end to end).
    """
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with one_torch_thread():
            yield
    finally:
        numba.set_num_threads(previous)
