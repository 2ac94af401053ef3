"""Where a training step's wall time goes on the host, and how much of it the loop's
overlap hides (issue 13 item 3).

    uv run python benchmarks/host_time.py --model DIR --data DIR [--max-seq-len 1024]
        [--micro-batch 8] [--steps 10] [--warmup 3] [--rank 32] [--json OUT]

Runs our trainer twice on fresh copies of the model and the same batches: synchronous
(`Trainer(overlap=False)`), then as shipped (the overlap: step n+1 built and queued on the
device before step n's metrics are read). Wrapping the trainer's batch source, step
function and metric read (here, not in the trainer), each `train_step` call splits into
  batch_s   plan.next() for the micro-batches it builds;
  build_s   the step function's call (host arrays in, graph construction; nothing runs);
  after_s   from the metrics on the host to the call's end (rows, logs, progress, checks);
  wait_s    the rest: blocked on the device (mx.eval, the metrics' tolist);
plus the process's CPU seconds (all threads). Synchronous, nothing is queued on the device
while the host works, so host_only_share = (batch + build + after) / wall is device idle
time on the critical path, and device_s = wall - host work. With the overlap the host
works while the device runs the queued step; what is left on the critical path is
overlap_host_only_share = max(0, wall_overlap - device_s) / wall_overlap (0 when the
loop still waits on the device every step, wait_s > 0).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

from train_benchmark import load_examples, our_trainer, weight_dtype

PHASES = ("batch_s", "build_s", "after_s", "wait_s")


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
    """Per train_step call: wall, the four phases, CPU seconds, tokens so far."""
    batch, build, read = [0.0], [0.0], [0.0]
    trainer.plan.next = timed(trainer.plan.next, batch)
    trainer.fns.train_step = timed(trainer.fns.train_step, build)
    collect = trainer._collect

    def collected(queued):
        found = collect(queued)
        read[-1] = time.perf_counter()
        return found

    trainer._collect = collected
    trainer.begin()
    rows = []
    for _ in range(steps):
        batch.append(0.0)
        build.append(0.0)
        cpu, tic = time.process_time(), time.perf_counter()
        row = trainer.train_step()
        end = time.perf_counter()
        wall, after = end - tic, end - read[-1]
        rows.append({
            "wall_s": wall, "batch_s": batch[-1], "build_s": build[-1], "after_s": after,
            "wait_s": wall - batch[-1] - build[-1] - after,
            "cpu_s": time.process_time() - cpu, "tokens": row["tokens"],
        })  # fmt: skip
    trainer.finish()
    return rows


def summary(rows: list[dict[str, float]], warmup: int) -> dict[str, float]:
    steady = rows[warmup:]
    found = {k: statistics.median(r[k] for r in steady) for k in ("wall_s", "cpu_s", *PHASES)}
    found["host_s"] = found["batch_s"] + found["build_s"] + found["after_s"]
    found["host_only_share"] = found["host_s"] / found["wall_s"]
    found["cpu_per_wall"] = found["cpu_s"] / found["wall_s"]
    return found


def compare(sync: dict[str, float], overlap: dict[str, float]) -> dict[str, float]:
    device = sync["wall_s"] - sync["host_s"]
    return {
        "device_s": device,
        "overlap_host_only_share": max(0.0, overlap["wall_s"] - device) / overlap["wall_s"],
        "speedup (sync wall / overlap wall)": sync["wall_s"] / overlap["wall_s"],
    }


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

    from mlx_instruct.sources.models import load_model

    found_machine = describe()
    print(line(found_machine), flush=True)
    rows, found = {}, {}
    for mode in ("sync", "overlap"):
        model, tokenizer = load_model(args.model)  # fresh weights: the same steps in both
        args.dtype = weight_dtype(model)
        examples = load_examples(args, tokenizer)
        with tempfile.TemporaryDirectory() as tmp:
            trainer = our_trainer(
                args, model, tokenizer, examples, tmp, True, overlap=mode == "overlap"
            )
            rows[mode] = measure(trainer, args.steps)
        del model, trainer
        found[mode] = summary(rows[mode], args.warmup)
        print(f"{mode:>7}, median per step (s): "
              + ", ".join(f"{k} {v:.4f}" for k, v in found[mode].items()), flush=True)  # fmt: skip
    found["compare"] = compare(found["sync"], found["overlap"])
    print(", ".join(f"{k} {v:.4f}" for k, v in found["compare"].items()))
    if args.json:
        from mlx_instruct.io import write_json

        write_json(args.json, {"args": vars(args), "steps": rows, "median": found, **found_machine})
    return 0


if __name__ == "__main__":
    sys.exit(main())
