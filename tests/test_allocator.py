"""keep_freed_memory: freed blocks are reused instead of faulting in fresh pages."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc")

#: Allocates, touches and frees two 20 MB blocks five times; prints the page faults of each round.
PROBE = """
import ctypes, resource, sys
from sepframework.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, (ctypes.c_size_t,), (ctypes.c_void_p,)
size, faults = 20 << 20, []
for _ in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    first, second = libc.malloc(size), libc.malloc(size)
    ctypes.memset(first, 1, size)
    ctypes.memset(second, 1, size)
    libc.free(second)
    libc.free(first)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(*faults)
"""


def page_faults_per_round(mode: str) -> list[int]:
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True, timeout=60)
    return [int(count) for count in result.stdout.split()]


def test_freed_blocks_are_reused_without_new_page_faults() -> None:
    pages = 2 * (20 << 20) // 4096
    default, kept = page_faults_per_round("default"), page_faults_per_round("keep")
    assert all(count > pages // 2 for count in default[2:])  # glibc trims them and faults them in again
    assert kept[0] > pages // 2 and all(count < pages // 100 for count in kept[1:])
