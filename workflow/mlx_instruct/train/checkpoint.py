"""Atomic checkpoints: trainable weights, optimizer state, data position and loop state.

A checkpoint is one directory, swapped into place atomically, so a run killed at any
moment (SIGKILL included) leaves either the previous checkpoint or the new one, whole.
Randomness needs no saved state: every micro-batch reseeds MLX's generator from
(run seed, step, micro-batch), so a resumed run draws the same dropout masks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten

from mlx_instruct.io import atomic_dir

DIRNAME = "checkpoint"
FORMAT = 1


def checkpoint_dir(out: Path) -> Path:
    return out / DIRNAME


def save(out: Path, model: nn.Module, optimizer: Any, state: dict[str, Any]) -> Path:
    target = checkpoint_dir(out)
    weights = dict(tree_flatten(model.trainable_parameters()))
    opt_state = dict(tree_flatten(optimizer.state))
    with atomic_dir(target) as tmp:
        mx.save_safetensors(str(tmp / "trainable.safetensors"), weights)
        mx.save_safetensors(str(tmp / "optimizer.safetensors"), opt_state)
        (tmp / "state.json").write_text(json.dumps({"format": FORMAT, **state}, indent=2))
    return target


def read_state(out: Path) -> dict[str, Any] | None:
    path = checkpoint_dir(out) / "state.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def restore(out: Path, model: nn.Module, optimizer: Any) -> dict[str, Any]:
    """Load weights and optimizer state into an initialised model/optimizer; return state."""
    folder = checkpoint_dir(out)
    state = read_state(out)
    if state is None:
        raise FileNotFoundError(f"{folder}: no checkpoint")
    weights = mx.load(str(folder / "trainable.safetensors"))
    model.load_weights(list(weights.items()), strict=False)
    opt_state = mx.load(str(folder / "optimizer.safetensors"))
    _assign(optimizer.state, tree_unflatten(list(opt_state.items())))
    mx.eval(model.parameters(), optimizer.state)
    return state


def _assign(target: Any, source: Any) -> None:
    """Copy `source` into the nested dict/list `target` in place (compiled functions hold
    references to the optimizer's state containers, so they must not be replaced)."""
    items = source.items() if isinstance(source, dict) else enumerate(source)
    for key, value in items:
        present = key in target if isinstance(target, dict) else key < len(target)
        if isinstance(value, dict | list) and present:
            _assign(target[key], value)
        else:
            target[key] = value


def remove(out: Path) -> None:
    import shutil

    shutil.rmtree(checkpoint_dir(out), ignore_errors=True)
