"""A step built ahead (`Trainer(overlap=True)`, off by default): the host traces step N+1's
graph while the device still runs step N.

Our step is synchronous because its metrics (loss, norms) are read back and guarded every
step. On the H100 a 7B LoRA step on Alpaca-length batches spent about 0.019 s of its 0.118 s
building the compiled step's graph on the host, with nothing queued on the device meanwhile
(`benchmarks/host_time.py`). Built ahead, that work overlaps the device's: step N+1's graph
is traced (lazily: nothing runs, nothing is allocated) after step N is queued and before
step N's metrics are waited for. It is queued only by the next `train_step`, so one step's
buffers are in flight at a time. Measured on an H100 it showed no gain (0.175 vs 0.154 s
per Alpaca step, 0.474 vs 0.436 s on long rows, each arm alone, but in process orders that
alone moved steps by 10-20%; docs/training.md, "Fifth H100 session"), so it stays opt-in
until `benchmarks/gpu_issue13.sh overlap` (both orders) shows otherwise.

Between two `train_step` calls the trainer reads as after step N: the parameters, optimizer
state and data position the traced step N+1 replaced are put back (`Snapshot` holds
references to arrays, not copies), and the next call swaps N+1's in. A run that stops at N
(guard, early stop, end) simply drops the traced step. The random state is not swapped:
dropout reseeds every micro-batch from its step (`Trainer.micro_seeds`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_map


@dataclass
class Snapshot:
    """The trainable parameters, optimizer state and data position at one moment."""

    params: dict[str, Any]
    optimizer_state: dict[str, Any]
    position: dict[str, Any]


@dataclass
class BuiltStep:
    """One optimizer step's graph: its metrics vector, its work, when its host work began,
    and (built ahead) the state its graph leaves, swapped in when it is queued."""

    step: int
    stats: mx.array
    n_tokens: int
    n_loss_tokens: int
    started: float = field(default_factory=time.perf_counter)
    after: Snapshot | None = None


def snapshot(model: nn.Module, optimizer: Any, plan: Any) -> Snapshot:
    return Snapshot(
        params=model.trainable_parameters(),
        optimizer_state=tree_map(lambda x: x, optimizer.state),
        position=dict(plan.position),
    )


def restore(saved: Snapshot, model: nn.Module, optimizer: Any, plan: Any) -> None:
    """Put back what `saved` holds, in place: the compiled step functions captured these
    very containers (model.state, optimizer.state)."""
    model.update(saved.params)
    _assign(optimizer.state, saved.optimizer_state)
    plan.seek(**saved.position)


def _assign(target: Any, saved: Any) -> None:
    items = saved.items() if isinstance(saved, dict) else enumerate(saved)
    for key, value in items:
        if isinstance(value, (dict, list)):
            _assign(target[key], value)
        else:
            target[key] = value
