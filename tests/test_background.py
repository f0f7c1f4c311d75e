"""Background stages: items in order, errors where they happen, producers stopped early."""

from __future__ import annotations

import threading
import time

import pytest

from sepframework.background import OrderedWorker, prefetched


def test_prefetched_yields_every_item_in_order_from_another_thread() -> None:
    producers: set[str] = set()

    def numbers():
        for number in range(100):
            producers.add(threading.current_thread().name)
            yield number

    assert list(prefetched(numbers(), depth=3)) == list(range(100))
    assert producers == {"sep-prefetch"}


def test_a_producer_error_is_raised_after_the_items_before_it() -> None:
    def failing():
        yield 1
        yield 2
        raise ValueError("corrupt block")

    received = []
    with pytest.raises(ValueError, match="corrupt block"):
        for item in prefetched(failing()):
            received.append(item)
    assert received == [1, 2]


def test_closing_early_stops_the_producer_within_its_queue_depth() -> None:
    produced = []

    def endless():
        number = 0
        while True:
            produced.append(number)
            yield number
            number += 1

    items = prefetched(endless(), depth=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    time.sleep(0.2)  # let the producer fill the queue
    items.close()
    count = len(produced)
    assert count <= 3 + 2 + 1  # consumed + queued + the one waiting to be put
    time.sleep(0.2)
    assert len(produced) == count
    assert not any(thread.name == "sep-prefetch" for thread in threading.enumerate())


def test_ordered_worker_runs_calls_in_submission_order_in_one_thread() -> None:
    calls = []
    with OrderedWorker() as worker:
        for number in range(20):
            worker.submit(lambda n: (time.sleep(0.001 * (n % 3)), calls.append((n, threading.current_thread().name))), number)
        worker.finish()
    assert [n for n, _ in calls] == list(range(20))
    assert {name for _, name in calls} != {threading.current_thread().name}


def test_ordered_worker_raises_a_failed_call_and_runs_nothing_after_it() -> None:
    started = []

    def slow_fail(number: int) -> None:
        started.append(number)
        time.sleep(0.05)
        if number == 0:
            raise OSError("disk full")

    with OrderedWorker() as worker, pytest.raises(OSError, match="disk full"):
        for number in range(10):
            worker.submit(slow_fail, number)
        worker.finish()
    assert started == [0]
