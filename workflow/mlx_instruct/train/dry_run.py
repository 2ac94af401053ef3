"""The `--dry-run` estimate: one optimizer step on the longest micro-batches (seed section 7)."""

from __future__ import annotations

import time
from typing import Any

import mlx.core as mx

from mlx_instruct.train.instrument import peak_memory_gb
from mlx_instruct.train.methods import grad_checkpointing
from mlx_instruct.train.trainer import Trainer


def dry_run(trainer: Trainer) -> dict[str, Any]:
    """Measure one optimizer step on the longest micro-batches (seed section 7)."""
    worst = trainer.plan.longest()
    batches = [worst] * trainer.accum
    timings = []
    with grad_checkpointing(trainer.model, trainer.settings.grad_checkpoint):
        trainer.model.train()
        for _ in range(2):
            tic = time.perf_counter()
            stats = trainer.fns.train_step(batches, trainer.micro_seeds(1))
            mx.eval(stats, trainer.model.trainable_parameters(), trainer.optimizer.state)
            timings.append(time.perf_counter() - tic)
    mean_len = trainer.plan.mean_row_length()
    worst_len = float(worst.lengths.mean())
    steps = trainer.settings.steps
    return {
        "peak_memory_gb": peak_memory_gb(),
        "first_step_s": timings[0],
        "step_s": timings[1],
        "tokens_per_step": worst.n_tokens * trainer.accum,
        "tokens_per_s": worst.n_tokens * trainer.accum / timings[1],
        "estimated_train_s": steps * timings[1] * mean_len / worst_len,
        "worst_case_train_s": steps * timings[1],
        "loss": stats.tolist()[0],
        "trainable_params": trainer.info.trainable_params,
        "total_params": trainer.info.total_params,
    }
