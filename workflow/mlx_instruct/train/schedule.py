"""Learning-rate schedules (seed sections 10 and 17) and the AdamW optimizer.

One formula, two implementations that agree exactly: `lr_at` (plain Python, for logs,
tests and the dry run) and `make_schedule` (MLX ops, evaluated inside the compiled update
from the optimizer's own step counter, so a resumed run continues the same curve).

For the optimizer update with 0-based index i of `steps`, warm-up W = round(fraction*steps):
  i <  W : peak * (i + 1) / W                    (reaches the peak exactly at i = W - 1)
  i >= W : p = (i - W + 1) / (steps - W) in (0, 1]
           cosine   min + (peak - min) * (1 + cos(pi p)) / 2
           linear   min + (peak - min) * (1 - p)
           constant peak
so the last update (i = steps - 1) runs at min = peak * min_lr_ratio for cosine and linear.

Why not mlx.optimizers' join_schedules / linear_schedule / cosine_decay (as mlx_lm's
`build_schedule`): composed to this same formula they round differently in float32
(cos((pi / D) * s) against cos(pi * (s / D)), ...), measured at 4 of the default study's 32
updates, 1 of the smoke study's 6 and 161 of mistral-7b's 1000 (up to 6.5e-6 relative), and
every study's results would change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import mlx.core as mx
import mlx.optimizers as optim

from mlx_instruct.config import TrainingSettings

SCHEDULES = ("cosine", "linear", "constant")


def warmup_steps(settings: TrainingSettings) -> int:
    return min(settings.steps, int(round(settings.warmup_fraction * settings.steps)))


def _shape(settings: TrainingSettings) -> tuple[float, int, float, str, int]:
    """(peak, steps, floor, kind, warm-up steps): one reading for both implementations."""
    peak, kind = settings.learning_rate, settings.schedule
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule {kind!r}; expected one of {SCHEDULES}")
    low = peak * settings.min_lr_ratio
    return peak, settings.steps, low, kind, warmup_steps(settings)


def lr_at(settings: TrainingSettings, index: int) -> float:
    """The learning rate of the optimizer update with 0-based index `index`."""
    peak, steps, low, kind, warm = _shape(settings)
    if index < warm:
        return peak * (index + 1) / warm
    if kind == "constant" or steps == warm:
        return peak
    progress = min(1.0, (index - warm + 1) / (steps - warm))
    if kind == "cosine":
        return low + (peak - low) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return low + (peak - low) * (1.0 - progress)


def make_schedule(settings: TrainingSettings | Mapping[str, Any]):
    """The same schedule as an MLX function of the optimizer's step counter."""
    peak, steps, low, kind, warm = _shape(TrainingSettings.of(settings))
    decay = max(1, steps - warm)

    def schedule(step: mx.array) -> mx.array:
        i = step.astype(mx.float32)
        warm_lr = peak * (i + 1.0) / max(warm, 1)
        if kind == "constant" or steps == warm:
            after = mx.array(peak, dtype=mx.float32)
        else:
            progress = mx.minimum((i - warm + 1.0) / decay, 1.0)
            if kind == "cosine":
                after = low + (peak - low) * 0.5 * (1.0 + mx.cos(math.pi * progress))
            else:
                after = low + (peak - low) * (1.0 - progress)
        return mx.where(i < warm, warm_lr, after) if warm > 0 else after

    return schedule


OPTIMIZERS = ("adamw", "adafactor")


def make_optimizer(settings: TrainingSettings) -> optim.Optimizer:
    """The run's optimizer, on the study's learning-rate schedule.

    adamw: betas, eps and decoupled weight decay, bias-corrected; two moments per weight,
    kept in the weights' dtype (MLX creates them with zeros_like). adafactor: no first
    moment and a factored second moment (a row and a column vector per matrix), so its
    state is ~0.03% of the weights'; relative steps and parameter scaling are off so it
    follows the same schedule as adamw, and it keeps its own RMS update clipping at 1.
    """
    name = settings.optimizer
    if name == "adamw":
        return optim.AdamW(
            learning_rate=make_schedule(settings),
            betas=list(settings.betas),
            eps=settings.eps,
            weight_decay=settings.weight_decay,
            bias_correction=True,
        )
    if name == "adafactor":
        return optim.Adafactor(
            learning_rate=make_schedule(settings),
            weight_decay=settings.weight_decay,
            scale_parameter=False,
            relative_step=False,
        )
    raise ValueError(f"optimizer: unknown {name!r}; expected one of {OPTIMIZERS}")
