"""Keeping freed memory for reuse, so that separating segment after segment does not
fault in fresh pages each time.

glibc's malloc gives blocks above a threshold (128 KB at start) their own mappings and
returns them to the system when freed, and trims the top of its heaps; the next segment's
arrays (several MB each) then fault in new pages, which costs system time in every
allocation. Raising both thresholds keeps the memory of one segment for the next.
"""

from __future__ import annotations

import ctypes
import platform

#: Blocks up to this size come from the heap and are reused: a 40 s stereo segment's
#: largest arrays (44.1 kHz float32, 14 MB) fit. glibc's upper limit on 64-bit systems.
MMAP_THRESHOLD_BYTES = 32 << 20
#: Free memory a heap keeps at its top before giving it back to the system.
TRIM_THRESHOLD_BYTES = 256 << 20

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> bool:
    """Make glibc's malloc reuse freed blocks up to 32 MB instead of unmapping them.

    Process-wide and meant for a program whose work is a loop over similar large arrays
    (the ``sep`` command calls it at start). Returns whether the settings took effect:
    False where the C library is not glibc.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
