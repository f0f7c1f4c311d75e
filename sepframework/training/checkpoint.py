"""Resumable checkpoints: model, optimizer, best model, history and every RNG state.

Written atomically (temporary file, then rename) after every epoch, so an interrupted
run resumes from its last finished epoch and continues exactly as if never stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from sepframework.files import atomic_path
from sepframework.interfaces import SeparationError

CHECKPOINT_NAME = "checkpoint.pt"


def rng_states() -> dict[str, Any]:
    """Torch's CPU (and CUDA, when present) generator states."""
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore states from :func:`rng_states`."""
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(folder: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``folder/checkpoint.pt`` (creating ``folder``); the sampler state is stored as JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CHECKPOINT_NAME
    state = {**state, "sampler": json.dumps(state["sampler"])}
    with atomic_path(path) as temporary:
        torch.save(state, temporary)
    return path


def checkpoint_path(folder: Path) -> Path:
    """``folder/checkpoint.pt``; a clear error where there is none to resume."""
    path = folder / CHECKPOINT_NAME
    if not path.is_file():
        raise SeparationError(f"--resume: no checkpoint at {path}")
    return path


def load_checkpoint(folder: Path) -> dict[str, Any]:
    """The state written by :func:`save_checkpoint` (tensors only, no pickled code)."""
    path = checkpoint_path(folder)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state["sampler"] = json.loads(state["sampler"])
    except Exception as error:  # torch raises many kinds for a cut or foreign file (KeyError, RuntimeError, ...)
        raise SeparationError(f"--resume: {path} is not a readable checkpoint ({type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else 'no detail'}); start over with "
                              "--overwrite") from None
    return state
