"""Fixtures for tests of the registry and the Hub: a local Hub, an empty registry, and
small model folders.

Test modules load them with ``pytest_plugins = ["tests.hub_fixtures"]``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from tests.hub_server import FakeHub

CARD = """---
license: mit
library_name: sepframework
pipeline_tag: audio-to-audio
tags: [sepframework, source-separation]
datasets: [toy-songs]
model-index:
- name: toy
  results:
  - task: {type: audio-source-separation}
    dataset: {type: toy-songs, name: Toy songs}
    metrics:
    - {type: sdr, name: vocals SDR, value: 4.5}
---
# toy

A REPET-SIM configuration used by the tests.

## Details

Nothing more.
"""


def write_model_folder(folder: Path, n_fft: int = 512, seed: int = 0) -> Path:
    """A publishable model folder: config.json (repet-sim), model.safetensors, README.md."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"plugin": "repet-sim", "args": {"n_fft": n_fft, "hop_length": n_fft // 4}}
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    weights = np.random.default_rng(seed).standard_normal((64, 32)).astype(np.float32)
    save_file({"unused": weights}, str(folder / "model.safetensors"))
    (folder / "README.md").write_text(CARD)
    return folder


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A fresh local Hub, with this process's environment pointed at it and an empty cache."""
    from huggingface_hub import constants

    with FakeHub() as server:
        for name, value in server.client_env(tmp_path / "hf-home").items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("HF_HUB_CACHE", raising=False)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # set, not deleted: a test's --offline is undone after it
        # huggingface_hub reads these once, at import (sepframework passes the endpoint and
        # the cache explicitly on each call).
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        yield server


@pytest.fixture
def empty_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty registry folder (``SEP_REGISTRY``) for this test."""
    folder = tmp_path / "registry"
    folder.mkdir()
    monkeypatch.setenv("SEP_REGISTRY", str(folder))
    return folder


@pytest.fixture
def make_model_folder() -> Callable[..., Path]:
    """``make_model_folder(folder, n_fft=512, seed=0)`` writes a publishable model folder."""
    return write_model_folder
