"""What the training loop carries between steps: its checkpointed counters and the step
it has queued on the device ahead of reading the one before (Trainer.train_step)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx


@dataclass
class LoopState:
    """What a checkpoint stores of the loop (besides weights, optimizer and data position)."""

    step: int = 0
    tokens: int = 0
    train_time_s: float = 0.0
    best_val: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    ema: float | None = None
    min_ema: float | None = None
    recent: list[dict[str, Any]] = field(default_factory=list)
    resumed_at: list[int] = field(default_factory=list)


@dataclass
class Queued:
    """An optimizer step whose graph is built (and maybe launched), its metrics unread.

    `tic`: when the loop began working toward it (its step time runs from there).
    """

    step: int
    stats: mx.array
    n_tokens: int
    n_loss_tokens: int
    tic: float
