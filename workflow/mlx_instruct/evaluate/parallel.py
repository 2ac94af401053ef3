"""Run one model's suites in worker processes, so a CPU evaluation uses every core.

Why: MLX's CPU backend runs most operations (exp, softmax, norms, the element-wise parts of
every layer) on one thread; only the matrix products use OpenBLAS's threads. One
evaluation process keeps ~1 of 2 cores busy. Measured on the 2-core CPU with SmolLM2-135M,
batch 32 x 64 tokens: one process 123 tokens/s; two processes with one BLAS thread each
96 tokens/s each, 191 together (1.55x). So the suites of one job are shared out over
`workers` processes (each loads the model once and takes the next suite from a queue,
longest first); suites that measure speed (`EXCLUSIVE`) run afterwards, alone, in the
calling process with every core, so their timings are not disturbed.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import sys
import time
from collections.abc import Callable
from typing import Any

# timing suites: never share the machine with another suite
EXCLUSIVE = ("efficiency",)
# The usual cost order (longest first keeps the workers' loads even). Default study on the
# 2-core EPYC, base model: adherence 331 s (160 items), benchmarks 134, semantic 88, safety
# 57, seed prompts 19. With adherence third it started after safety and ended the job at
# 388 s; first, it ends at 331 while the other worker finishes the rest by 298.
LONGEST_FIRST = ("adherence", "benchmarks", "semantic", "safety", "humaneval", "seed_prompts")
POLL_S = 2.0


def split(todo: list[str], workers: int) -> tuple[list[str], list[str]]:
    """(suites for the worker pool in queue order, suites to run alone afterwards)."""
    shared = [s for s in todo if s not in EXCLUSIVE]
    alone = [s for s in todo if s in EXCLUSIVE]
    if workers < 2 or len(shared) < 2:
        return [], todo
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    shared.sort(key=lambda s: rank.get(s, len(rank)))
    return shared, alone


def _worker(load: Callable[[], Any], force: bool, tasks: Any, results: Any) -> None:
    """Load the context once, then run suites from `tasks` until the None sentinel."""
    from mlx_instruct.evaluate.runner import run_suite

    try:
        ctx = load()
    except Exception as error:  # noqa: BLE001  (reported by the parent, named)
        results.put(("<load>", None, 0.0, f"{type(error).__name__}: {error}"))
        return
    while (suite := tasks.get()) is not None:
        start = time.perf_counter()
        try:
            path = run_suite(ctx, suite, force=force)
        except Exception as error:  # noqa: BLE001
            results.put((suite, None, time.perf_counter() - start, f"{error}"))
            continue
        results.put((suite, str(path), time.perf_counter() - start, None))


def run_pool(load: Callable[[], Any], suites: list[str], workers: int, force: bool) -> list[str]:
    """Run `suites` in min(workers, len(suites)) processes; return error messages (empty: ok).

    `load` must be picklable (a functools.partial of a module-level function): each worker
    calls it to build its own EvalContext. Workers get one BLAS thread each.
    """
    spawn = mp.get_context("spawn")  # a fresh interpreter: no MLX state forked from this one
    tasks, results = spawn.Queue(), spawn.Queue()
    count = min(workers, len(suites))
    for suite in suites:
        tasks.put(suite)
    for _ in range(count):
        tasks.put(None)
    saved = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"  # read by each child when OpenBLAS loads
    try:
        procs = [
            spawn.Process(target=_worker, args=(load, force, tasks, results)) for _ in range(count)
        ]
        for proc in procs:
            proc.start()
    finally:
        if saved is None:
            os.environ.pop("OPENBLAS_NUM_THREADS", None)
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = saved
    errors, pending = [], set(suites)
    while pending:
        try:
            suite, path, seconds, error = results.get(timeout=POLL_S)
        except queue.Empty:
            if not any(p.is_alive() for p in procs):
                codes = sorted({p.exitcode for p in procs})
                errors.append(f"worker(s) exited ({codes}) before {sorted(pending)} ran")
                break
            continue
        if suite == "<load>":
            errors.append(f"worker could not load the model: {error}")
            continue
        pending.discard(suite)
        if error is None:
            print(f"evaluate: {suite} -> {path} ({seconds:.1f}s, worker)", flush=True)
        else:
            errors.append(f"{suite}: {error}")
    for proc in procs:
        proc.join(timeout=60)
        if proc.is_alive():
            proc.kill()
    sys.stdout.flush()
    return errors
