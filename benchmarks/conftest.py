"""Benchmarks run only with timing on (``make bench``): under the project's default
``--benchmark-disable`` their timing assertions would have nothing to read."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("benchmark_enable") or not config.getoption("benchmark_disable"):
        return
    skip = pytest.mark.skip(reason="timing is disabled: run `make bench` (pytest --benchmark-enable)")
    for item in items:
        if "benchmark" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)
