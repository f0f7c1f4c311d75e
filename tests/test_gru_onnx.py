"""The GRU layers run by ONNX Runtime: same results as ``nn.GRU``, and the graph cache."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import sepframework
from sep_gru import onnx_gru
from sep_gru.model import GRUSeparator
from sep_gru.onnx_gru import OnnxGRU, cache_folder


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty graph cache of this test's own."""
    monkeypatch.setenv("SEP_CACHE_DIR", str(tmp_path / "cache"))
    return cache_folder()


def small_gru(layers: int, bidirectional: bool, seed: int = 0) -> torch.nn.GRU:
    torch.manual_seed(seed)
    return torch.nn.GRU(12, 8, layers, batch_first=True, bidirectional=bidirectional).eval()


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_outputs_and_state_equal_nn_gru(cache: Path, layers: int, bidirectional: bool, with_state: bool) -> None:
    gru = small_gru(layers, bidirectional)
    inputs = torch.randn(3, 17, 12)
    state = torch.randn(layers * (1 + bidirectional), 3, 8) if with_state else None
    with torch.inference_mode():
        expected, expected_state = gru(inputs, state)
        outputs, final_state = OnnxGRU(gru)(inputs, state)
    torch.testing.assert_close(outputs, expected, rtol=0, atol=2e-6)
    torch.testing.assert_close(final_state, expected_state, rtol=0, atol=2e-6)


def test_the_graph_is_cached_by_weights_and_read_back_without_building(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gru, other = small_gru(2, True, seed=0), small_gru(2, True, seed=1)
    inputs = torch.randn(2, 9, 12)
    first = OnnxGRU(gru)(inputs)[0]
    assert len(list(cache.glob("gru-*.onnx"))) == 1
    OnnxGRU(other)
    assert len(list(cache.glob("gru-*.onnx"))) == 2  # other weights, another graph

    def no_build(*args: object) -> bytes:
        raise AssertionError("built again instead of read from the cache")

    monkeypatch.setattr(onnx_gru, "_build_graph", no_build)
    torch.testing.assert_close(OnnxGRU(gru)(inputs)[0], first, rtol=0, atol=0)
    assert not list(cache.glob("*.part"))


def test_an_unwritable_cache_only_means_building_each_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("SEP_CACHE_DIR", str(blocked))
    gru, inputs = small_gru(1, False), torch.randn(1, 5, 12)
    with torch.inference_mode():
        torch.testing.assert_close(OnnxGRU(gru)(inputs)[0], gru(inputs)[0], rtol=0, atol=2e-6)


def test_a_gru_without_batch_first_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_first"):
        OnnxGRU(torch.nn.GRU(4, 4))


@pytest.mark.parametrize("shape", [(1, 0, 12), (0, 5, 12)])
def test_empty_inputs_are_an_error_not_an_abort(cache: Path, shape: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match=r"OnnxGRU needs at least one sequence of one frame"):
        OnnxGRU(small_gru(1, False))(torch.zeros(shape))


def test_a_damaged_cache_file_is_built_and_written_again(cache: Path) -> None:
    gru, inputs = small_gru(2, True), torch.randn(2, 9, 12)
    OnnxGRU(gru)
    (cached,) = cache.glob("gru-*.onnx")
    for damage in (b"", cached.read_bytes()[:100]):  # empty (a crash before the write), cut short
        cached.write_bytes(damage)
        with torch.inference_mode():
            torch.testing.assert_close(OnnxGRU(gru)(inputs)[0], gru(inputs)[0], rtol=0, atol=2e-6)
        assert len(cached.read_bytes()) > 1000


def test_the_graph_is_made_on_the_cpu_only_and_from_the_loaded_weights(cache: Path) -> None:
    separator = sepframework.load("gru", device="cpu")
    assert separator.onnx_gru is not None
    separator.device = "cuda"  # as .to("cuda") sets it, without needing a GPU
    assert separator.recurrent is separator.network.gru
    trained = GRUSeparator(separator.config, network=separator.network)  # e.g. validation during training
    assert trained.to("cpu").recurrent is trained.network.gru


def test_a_loaded_model_runs_its_gru_with_onnx_runtime_on_the_cpu_with_the_same_result(cache: Path) -> None:
    separator = sepframework.load("gru", device="cpu")
    assert separator.recurrent is separator.onnx_gru is not None
    audio = (0.1 * np.random.default_rng(0).standard_normal((2, 16000 * 12))).astype(np.float32)  # several windows
    with_onnx = separator.separate_block(audio)["vocals"]
    separator.onnx_gru = None  # the network's own nn.GRU
    with_torch = separator.separate_block(audio)["vocals"]
    np.testing.assert_allclose(with_onnx, with_torch, rtol=0, atol=1e-5)


def test_a_second_load_does_not_import_onnx(cache: Path) -> None:
    """The cache spares later loads the onnx package's import (about a second)."""
    code = "import sys, sepframework; sepframework.load('gru'); print('onnx' in sys.modules)"
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True) for _ in range(2)]
    assert [run.stdout.strip() for run in runs] == ["True", "False"]
