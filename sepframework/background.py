"""Running the stages of a stream in background threads, so that decoding, resampling
and encoding (which release the GIL) overlap with the network."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
_END = object()
#: Seconds between checks of the stop flag while a queue is full.
_POLL = 0.05


def prefetched(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """The items of ``items``, produced ahead in a background thread.

    At most ``depth`` items wait in between, so memory stays bounded. An exception of the
    producer is raised here, at the position it happened; closing this generator early
    (or an exception in the consumer) stops the producer before it returns.
    """
    waiting: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(depth)
    stop = threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                waiting.put(entry, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            put((_END, error))

    thread = threading.Thread(target=produce, name="sep-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = waiting.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()


class OrderedWorker:
    """Runs submitted calls one after the other in a background thread.

    :meth:`submit` first waits for the previous call to finish and raises its exception
    (so nothing runs after a failed call), then starts the new one: one call runs while
    the caller prepares the next, and memory holds two calls' data at most. :meth:`finish`
    waits for the last call. Use it as a context manager: leaving the block waits for the
    call still running.
    """

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sep-writer")
        self._running: Future[None] | None = None

    def submit(self, call: Callable[..., None], *args: Any) -> None:
        """Run ``call(*args)`` once the previous call has succeeded."""
        self.finish()
        self._running = self._executor.submit(call, *args)

    def finish(self) -> None:
        """Wait for the last submitted call; raises its exception."""
        running, self._running = self._running, None
        if running is not None:
            running.result()

    def __enter__(self) -> OrderedWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._executor.shutdown(wait=True)
