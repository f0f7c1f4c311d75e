"""Interrupt requests that cannot be lost.

A signal handler that raises ``KeyboardInterrupt`` can fire while the main thread runs a
Python callback from C (llvmlite calls one when Numba loads a cached kernel); Python then
prints the exception and drops it, and the run would go on. So handlers also record the
request here, and long loops call :func:`raise_if_interrupted` between steps.
"""

from __future__ import annotations

import signal
import threading

_requested = threading.Event()
_signal_number = int(signal.SIGINT)


def request_interrupt(signal_number: int = signal.SIGINT) -> None:
    """Record that the process should stop because of ``signal_number`` (call it from a signal handler)."""
    global _signal_number
    _signal_number = int(signal_number)
    _requested.set()


def exit_status() -> int:
    """The exit status of a process stopped by the interrupt: 128 + the signal's number
    (130 for Ctrl-C, 143 for SIGTERM), as shells report it."""
    return 128 + _signal_number


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if an interrupt was requested and got lost on its way."""
    if _requested.is_set():
        raise KeyboardInterrupt
