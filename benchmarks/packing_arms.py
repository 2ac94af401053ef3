"""`train_benchmark.py --packing`: our trainer with and without sequence packing, interleaved.

Both arms train the same model on the same data with the same LoRA and settings, every
metric on; `unpacked` batches as mlx_lm does (length-sorted, padded to 1 + a multiple of 32),
`packed` with `data.packing` (train.packing: whole examples in rows of up to max_seq_len
tokens). One step of each, alternating which goes first, in one process, so load from other
processes on a shared machine hits both alike. tokens/s counts the real tokens fed to the
model (padding excluded): a packed step carries more of them, so the arms compare per token.
Tokens per CPU-second (this process's CPU time over the step) is also reported: on a machine
shared with other processes it counts only the time the step ran, not the time it waited.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

ARMS = ("unpacked", "packed")


def epoch_shape(plan: Any) -> dict[str, float]:
    """What one epoch of the plan feeds the model: padding, widths (compiled variants),
    examples per micro-batch."""
    batches = [plan.collate(rows) for rows in plan.batches]
    fed = sum(b.inputs.size for b in batches)
    return {
        "padding_share": 1.0 - sum(b.n_tokens for b in batches) / fed,
        "widths": len({b.tokens.shape[1] for b in batches}),
        "examples_per_micro_batch": sum(len(plan.rows[r]) for b in plan.batches for r in b)
        / len(plan.batches),
        "micro_batches_per_epoch": len(plan.batches),
    }


def interleave(steps: int, warmup: int, make_trainer: Callable[[str], Any]) -> dict[str, Any]:
    """Both arms step by step; per arm its step times, real tokens, peak memory and shape."""
    import mlx.core as mx

    trainers = {arm: make_trainer(arm) for arm in ARMS}
    logs: dict[str, dict[str, Any]] = {
        arm: {"step_times": [], "cpu_times": [], "tokens": [], "peak_memory_gb": 0.0}
        for arm in ARMS
    }
    for trainer in trainers.values():
        trainer.begin()
    for step in range(steps):
        order = list(trainers.items())
        if step % 2:
            order.reverse()
        for arm, trainer in order:
            mx.reset_peak_memory()
            before, cpu = trainer.state.tokens, time.process_time()
            row = trainer.train_step()
            log = logs[arm]
            log["cpu_times"].append(time.process_time() - cpu)
            log["step_times"].append(row["step_time_s"])
            log["tokens"].append(row["tokens"] - before)
            log["peak_memory_gb"] = max(log["peak_memory_gb"], mx.get_peak_memory() / 1e9)
    result = {}
    for arm, trainer in trainers.items():
        trainer.finish()
        times, tokens, cpu = logs[arm]["step_times"], logs[arm]["tokens"], logs[arm]["cpu_times"]
        result[arm] = {
            **logs[arm],
            **epoch_shape(trainer.plan),
            "tokens_per_s": sum(tokens[warmup:]) / sum(times[warmup:]),
            "tokens_per_s_with_compile": sum(tokens) / sum(times),
            "tokens_per_s_step_median": statistics.median(
                n / t for n, t in zip(tokens[warmup:], times[warmup:], strict=True)
            ),
            "tokens_per_cpu_s": sum(tokens[warmup:]) / sum(cpu[warmup:]),
        }
    return result


def report(arms: dict[str, dict[str, Any]], title: str) -> dict[str, float]:
    """Print the table and return the packed / unpacked ratios."""
    print(f"\n{title}")
    print(f"{'arm':>9} {'tokens/s':>9} {'incl. compile':>14} {'step median':>12} {'per CPU-s':>10} "
          f"{'padding':>8} {'widths':>7} {'ex/micro-batch':>15} {'peak GB':>8}")  # fmt: skip
    for arm in ARMS:
        r = arms[arm]
        print(f"{arm:>9} {r['tokens_per_s']:9.1f} {r['tokens_per_s_with_compile']:14.1f} "
              f"{r['tokens_per_s_step_median']:12.1f} {r['tokens_per_cpu_s']:10.1f} "
              f"{r['padding_share']:8.1%} {r['widths']:7d} "
              f"{r['examples_per_micro_batch']:15.1f} {r['peak_memory_gb']:8.3f}")  # fmt: skip
    packed, unpacked = arms["packed"], arms["unpacked"]
    return {
        f"packed / unpacked {key}": packed[key] / unpacked[key]
        for key in (
            "tokens_per_s",
            "tokens_per_s_with_compile",
            "tokens_per_s_step_median",
            "tokens_per_cpu_s",
        )
    }
