"""A trained ``nn.GRU`` run by ONNX Runtime: the separator's recurrence on the CPU.

ONNX Runtime's GRU kernel steps through a sequence with less work per step than
PyTorch's CPU ``nn.GRU`` (one fused gate computation instead of a dozen small tensor
operations), which matters for the separator's batches of a few short windows. Its
results equal the module's up to float rounding.

The ONNX graph is built from the module's weights (the safetensors file stays the one
source of the weights) with the ``onnx`` package, whose import alone takes about a
second; so the serialized graph is kept in a cache folder (:func:`cache_folder`), named
by a hash of the weights, and later loads read it from there without importing ``onnx``
(a damaged cache file is built and written again).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from torch import nn

from sepframework.files import write_bytes_atomically

#: ONNX operator set of the graph (the GRU operator is unchanged since 14) and the IR
#: version it is stamped with: the oldest that carries opset 17, so that any ONNX Runtime
#: since 1.14 reads it whatever the installed ``onnx`` would stamp by default.
OPSET = 17
IR_VERSION = 8
#: Part of every cache key: change it when the graph built for the same weights changes.
GRAPH_VERSION = 2
#: Row blocks of PyTorch's gate weights (reset, update, new) in ONNX's order (update, reset, hidden).
_ONNX_GATE_ORDER = (1, 0, 2)


def cache_folder() -> Path:
    """Where built graphs are kept: ``$SEP_CACHE_DIR/onnx``, else
    ``$XDG_CACHE_HOME/sepframework/onnx`` (``XDG_CACHE_HOME`` defaults to ``~/.cache``)."""
    root = os.environ.get("SEP_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "sepframework"
    return Path(root).expanduser() / "onnx"


class OnnxGRU:
    """Runs a snapshot of ``gru``'s weights like ``gru(inputs, state)`` on one CPU thread.

    ``gru`` must be ``batch_first``; later changes to its weights are not seen.
    """

    def __init__(self, gru: nn.GRU) -> None:
        if not gru.batch_first:
            raise ValueError("OnnxGRU needs a batch_first GRU")
        self.layers = gru.num_layers
        self.directions = 2 if gru.bidirectional else 1
        self.hidden_size = gru.hidden_size
        weights = _layer_weights(gru)
        cached = _cache_path(gru, weights)
        try:
            self._session = _session(cached.read_bytes())
        except Exception:  # noqa: BLE001 - not cached (OSError) or damaged (ONNX Runtime's own errors): build it
            graph = _build_graph(gru, weights)
            _store(cached, graph)
            self._session = _session(graph)

    def __call__(self, inputs: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs (batch, frames, directions * hidden) and final state (layers * directions,
        batch, hidden) of float32 CPU ``inputs`` (batch, frames, features), as ``nn.GRU`` returns."""
        if 0 in inputs.shape[:2]:  # ONNX Runtime would abort the process
            raise ValueError(f"OnnxGRU needs at least one sequence of one frame, got inputs shaped {tuple(inputs.shape)}")
        if state is None:
            state = inputs.new_zeros(self.layers * self.directions, inputs.shape[0], self.hidden_size)
        outputs, final = self._session.run(
            None, {"inputs": inputs.detach().contiguous().numpy(), "state": state.detach().contiguous().numpy()}
        )
        return torch.from_numpy(outputs), torch.from_numpy(final)


def _layer_weights(gru: nn.GRU) -> dict[str, np.ndarray]:
    """ONNX's W, R and B inputs of every layer: float32, directions stacked, gates in ONNX's order."""

    def gates(tensor: torch.Tensor) -> np.ndarray:
        blocks = np.split(tensor.detach().cpu().float().numpy(), 3, axis=0)
        return np.concatenate([blocks[i] for i in _ONNX_GATE_ORDER], axis=0)

    suffixes = ("", "_reverse")[: 2 if gru.bidirectional else 1]
    weights = {}
    for layer in range(gru.num_layers):
        weights[f"layer{layer}_W"] = np.stack([gates(getattr(gru, f"weight_ih_l{layer}{s}")) for s in suffixes])
        weights[f"layer{layer}_R"] = np.stack([gates(getattr(gru, f"weight_hh_l{layer}{s}")) for s in suffixes])
        weights[f"layer{layer}_B"] = np.stack(
            [np.concatenate([gates(getattr(gru, f"bias_{kind}_l{layer}{s}")) for kind in ("ih", "hh")]) for s in suffixes]
        )
    return weights


def _session(graph: bytes) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session of a serialized graph, on one CPU thread."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def _cache_path(gru: nn.GRU, weights: dict[str, np.ndarray]) -> Path:
    """Where the graph of these weights is cached: named by a hash of them and the graph's layout."""
    key = hashlib.sha256(repr((GRAPH_VERSION, OPSET, IR_VERSION, gru.input_size, gru.hidden_size)).encode())
    for name, array in weights.items():
        key.update(name.encode())
        key.update(array.tobytes())
    return cache_folder() / f"gru-{key.hexdigest()[:40]}.onnx"


def _store(path: Path, graph: bytes) -> None:
    """Write ``graph`` to ``path`` atomically (readers never see a partial file). A cache
    folder that cannot be written only means building again next time."""
    with contextlib.suppress(OSError):
        write_bytes_atomically(path, graph)


def _build_graph(gru: nn.GRU, weights: dict[str, np.ndarray]) -> bytes:
    """One ONNX GRU node per layer (``linear_before_reset``, as PyTorch computes), with the
    layout changes between PyTorch's batch-first tensors and ONNX's sequence-first ones."""
    import onnx  # here, not at the top: only a cache miss pays for its import
    from onnx import TensorProto, helper, numpy_helper

    directions = 2 if gru.bidirectional else 1
    layers, hidden = gru.num_layers, gru.hidden_size
    nodes = [
        helper.make_node("Transpose", ["inputs"], ["layer0_in"], perm=[1, 0, 2]),  # (frames, batch, features)
        helper.make_node("Split", ["state"], [f"layer{i}_state" for i in range(layers)], axis=0),
    ]
    for layer in range(layers):
        names = [f"layer{layer}_{kind}" for kind in ("W", "R", "B")]
        nodes += [
            helper.make_node(
                "GRU", [f"layer{layer}_in", *names, "", f"layer{layer}_state"],
                [f"layer{layer}_out", f"layer{layer}_final"], hidden_size=hidden,
                direction="bidirectional" if directions == 2 else "forward", linear_before_reset=1,
            ),
            # (frames, directions, batch, hidden) -> (frames, batch, directions * hidden)
            helper.make_node("Transpose", [f"layer{layer}_out"], [f"layer{layer}_by_batch"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", [f"layer{layer}_by_batch", "joined_shape"], [f"layer{layer + 1}_in"]),
        ]
    nodes += [
        helper.make_node("Transpose", [f"layer{layers}_in"], ["outputs"], perm=[1, 0, 2]),
        helper.make_node("Concat", [f"layer{i}_final" for i in range(layers)], ["final_state"], axis=0),
    ]
    constants = {**weights, "joined_shape": np.array([0, 0, directions * hidden], dtype=np.int64)}
    state_shape = [layers * directions, "batch", hidden]
    graph = helper.make_graph(
        nodes,
        "gru",
        [helper.make_tensor_value_info("inputs", TensorProto.FLOAT, ["batch", "frames", gru.input_size]),
         helper.make_tensor_value_info("state", TensorProto.FLOAT, state_shape)],
        [helper.make_tensor_value_info("outputs", TensorProto.FLOAT, ["batch", "frames", directions * hidden]),
         helper.make_tensor_value_info("final_state", TensorProto.FLOAT, state_shape)],
        [numpy_helper.from_array(array, name) for name, array in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    return model.SerializeToString()
