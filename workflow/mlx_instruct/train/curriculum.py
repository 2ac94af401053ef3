"""The `base_loss` curriculum's measure: how hard each micro-batch is for the untuned model.

Measured once, before the first update (the model is still the base: LoRA's B starts at
zero, a full fine-tune has not moved), on the micro-batches the run's budget reaches
(`BatchPlan.consumed`), so it costs one forward pass over the examples the run trains on.
Data-parallel ranks each take their rows of every micro-batch and the loss sums are
all-summed, so every rank orders the batches identically. The measure goes into the
checkpoint with the data position, so a resumed run keeps its order rather than measuring
a half-trained model.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx

from mlx_instruct.train import distributed
from mlx_instruct.train.batching import BatchPlan
from mlx_instruct.train.step import StepFunctions


def base_losses(
    fns: StepFunctions, plan: BatchPlan, model: Any, group: Any | None = None
) -> list[float | None]:
    """Per micro-batch of `plan`, the response-token mean loss of `model` as it is now
    (None for micro-batches the run never reaches)."""
    wanted = plan.consumed()
    batches = [plan.collate(plan.batches[b]) for b in wanted]
    model.eval()  # no dropout
    sums = []
    for batch in batches:
        part = distributed.shard(batch, group)
        total = fns.eval_loss(part) if part.tokens.shape[0] else mx.array(0.0)
        mx.eval(total)  # one micro-batch's graph at a time: memory as for validation
        sums.append(total)
    model.train()
    totals = distributed.all_sum(mx.stack(sums).astype(mx.float32), group)
    mx.eval(totals)
    values: list[float | None] = [None] * len(plan.batches)
    for index, total, batch in zip(wanted, totals.tolist(), batches, strict=True):
        values[index] = total / max(batch.n_loss_tokens, 1)
    return values
