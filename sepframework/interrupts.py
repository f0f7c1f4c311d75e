"""Interrupt requests that cannot be lost.

A signal handler that raises ``KeyboardInterrupt`` can fire while the main thread runs a
Python callback from C (llvmlite calls one when Numba loads a cached kernel); Python then
prints the exception and drops it, and the run would go on. So handlers also record the
request here, and long loops call :func:`raise_if_interrupted` between steps.
"""

from __future__ import annotations

import threading

_requested = threading.Event()


def request_interrupt() -> None:
    """Record that the process should stop (call it from a signal handler)."""
    _requested.set()


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if an interrupt was requested and got lost on its way."""
    if _requested.is_set():
        raise KeyboardInterrupt
