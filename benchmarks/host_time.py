"""Where a training step's wall time goes on the host (issue 13 item 3).

    uv run python benchmarks/host_time.py --model DIR --data DIR [--max-seq-len 1024]
        [--micro-batch 8] [--steps 10] [--warmup 3] [--rank 32] [--json OUT]

Our trainer's step is synchronous: batch assembly, building the (compiled) step's graph,
then `mx.eval` waits for the device, then the metrics come back (`tolist`) and the logs are
written. While the host assembles, builds or logs, nothing is queued on the device, so those
phases are device idle time on the critical path; only the `mx.eval` wait overlaps host work
(kernel launches) with the device. This wraps the trainer's batch source and step function
(here, not in the trainer) and splits each step into:
  batch_s   plan.next() for the step's micro-batches (padding, host arrays);
  build_s   the step function's call (graph construction; nothing runs yet);
  eval_s    the rest of `_optimizer_step`: mx.eval and the metrics' tolist;
  after_s   the rest of train_step (train_log/layer_log rows, progress, periodic checks);
plus the process's CPU seconds per step (all threads). Same settings as train_benchmark.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

from train_benchmark import load_at_weight_dtype, load_examples, our_trainer

PHASES = ("batch_s", "build_s", "eval_s", "after_s")


def timed(fn, sink: list[float]):
    """fn, adding each call's wall time to sink[-1]."""

    def wrapper(*args, **kwargs):
        tic = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            sink[-1] += time.perf_counter() - tic

    return wrapper


def measure(trainer, steps: int) -> list[dict[str, float]]:
    """Per step: wall, the four phases, CPU seconds."""
    batch, build = [0.0], [0.0]
    trainer.plan.next = timed(trainer.plan.next, batch)
    trainer.fns.train_step = timed(trainer.fns.train_step, build)
    trainer.begin()
    rows = []
    for _ in range(steps):
        batch.append(0.0)
        build.append(0.0)
        cpu, tic = time.process_time(), time.perf_counter()
        row = trainer.train_step()
        wall = time.perf_counter() - tic
        rows.append({
            "wall_s": wall, "batch_s": batch[-1], "build_s": build[-1],
            "eval_s": row["step_time_s"] - batch[-1] - build[-1],
            "after_s": wall - row["step_time_s"], "cpu_s": time.process_time() - cpu,
            "tokens": row["tokens"],
        })  # fmt: skip
    trainer.finish()
    return rows


def summary(rows: list[dict[str, float]], warmup: int) -> dict[str, float]:
    steady = rows[warmup:]
    found = {k: statistics.median(r[k] for r in steady) for k in ("wall_s", "cpu_s", *PHASES)}
    idle = found["batch_s"] + found["build_s"] + found["after_s"]
    found["host_only_share"] = idle / found["wall_s"]
    found["cpu_per_wall"] = found["cpu_s"] / found["wall_s"]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--max-seq-len", type=int, default=1024)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--alpha", type=float, default=16.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from machine import describe, line

    found_machine = describe()
    print(line(found_machine), flush=True)
    model, tokenizer = load_at_weight_dtype(args)
    examples = load_examples(args, tokenizer)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = our_trainer(args, model, tokenizer, examples, tmp, instrument=True)
        rows = measure(trainer, args.steps)
    found = summary(rows, args.warmup)
    print("median per step (s): " + ", ".join(f"{k} {v:.4f}" for k, v in found.items()))
    if args.json:
        from mlx_instruct.io import write_json

        write_json(args.json, {"args": vars(args), "steps": rows, "median": found, **found_machine})
    return 0


if __name__ == "__main__":
    sys.exit(main())
