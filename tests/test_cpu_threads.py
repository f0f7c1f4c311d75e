"""Thread limits hold for torch and Numba together, and are restored."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import torch

from sepframework.cpu_threads import limit_cpu_threads, one_cpu_thread, one_torch_thread
from sepframework.stft import STFT


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads(), numba.get_num_threads()
    yield
    torch.set_num_threads(threads[0])
    numba.set_num_threads(threads[1])


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
def test_limit_survives_a_parallel_numba_kernel(restore_threads) -> None:
    limit_cpu_threads(1)
    assert torch.get_num_threads() == 1  # torch's pool is set up now, as after any torch work
    STFT(n_fft=1024, hop_length=256).forward(np.zeros((2, 16000), dtype=np.float32))  # parallel kernels
    assert torch.get_num_threads() == 1
    assert numba.get_num_threads() == 1


def test_one_torch_thread_restores_the_count(restore_threads) -> None:
    torch.set_num_threads(2)
    with one_torch_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
def test_one_cpu_thread_limits_torch_and_numba_and_restores_both(restore_threads) -> None:
    torch.set_num_threads(2)
    numba.set_num_threads(2)
    with one_cpu_thread():
        STFT(n_fft=1024, hop_length=256).forward(np.zeros((2, 16000), dtype=np.float32))  # parallel kernels
        assert (torch.get_num_threads(), numba.get_num_threads()) == (1, 1)
    assert (torch.get_num_threads(), numba.get_num_threads()) == (2, 2)
