"""What evaluating one model costs on this machine, before any model is trained.

    python -m mlx_instruct.plan_eval --config study.yaml --model DIR --data DIR --out FILE.json

Two measurements on the study's base model, then arithmetic:

1. **What each suite asks the model for.** Every enabled suite runs once with the model
   calls swapped for recorders (`recording()`): `generation.generate` records the prompts'
   token counts (after the same prefix sharing the real call does), `max_tokens` and the batch
   size, and returns empty completions that ran to `max_tokens`; `scoring.loglikelihood`
   records the tokens one forward pass covers. So the items, few-shot prompts, token caps and
   batch sizes are the suites' own (lm-eval's requests included), with no second reading of
   the config. The recording run's wall time per suite is its non-model work (lm-eval's
   request building, the sentence encoder, the sandbox), counted as `overhead_s`.
2. **What the model costs here** (`probe()`): prefill seconds per prompt token and decode
   seconds per step at batch 1 and at the study's generation batch size, from real batched
   generations of the study's test prompts, and forward seconds per scored token.

Each generation call then costs prefill tokens x prefill rate + its waves of `max_tokens`
decode steps (the step time interpolated linearly in the active batch); each scoring call its
tokens x the forward rate. Suites are scheduled as `evaluate` runs them (worker pool, longest
first; timing suites alone afterwards), plus one model load per process.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlx_instruct  # noqa: F401  (OpenBLAS before mlx)
from mlx_instruct.io import write_json

PROBE_NEW_TOKENS = 8  # decode steps timed per probe (after one warm-up generation)
PROBE_PROMPT_TOKENS = 16  # prompt tokens per sequence of the decode-step probe
PROBE_FULL = 8  # whole test prompts timed for prefill, and pairs for scoring
LEFT_OUT = (
    "evaluation estimates assume every generation runs to its max_tokens (an upper bound: "
    "models that stop early take less), decode steps that do not slow as the KV cache grows, "
    "trained models as fast as the base (unfused adapters add a little), pool workers that "
    "do not slow each other, and leave out process start-up and imports"
)


@dataclass
class Calls:
    """What one suite asked the model for."""

    generate: list[dict[str, int]] = field(default_factory=list)  # one per generate() call
    scored_tokens: int = 0  # tokens run through the model by log-likelihood scoring
    scored_pairs: int = 0


def _prefill_tokens(model: Any, encoded: list[list[int]], min_prefix: int) -> int:
    """Prompt tokens generation really prefills: a shared prefix it reuses counts once."""
    from mlx_instruct.evaluate.generation import PREFIX_SHARE_FRACTION
    from mlx_instruct.evaluate.prefix import prefix_clusters

    total = sum(len(ids) for ids in encoded)
    if len(encoded) < 2:
        return total
    for members, prefix_len in prefix_clusters(encoded, min_prefix):
        if prefix_len >= PREFIX_SHARE_FRACTION * min(len(encoded[m]) for m in members):
            total -= prefix_len * (len(members) - 1)
    return total


def _forward_tokens(seqs: list[list[int]], contexts: list[list[int]], min_prefix: int) -> int:
    """Tokens a scoring call runs: a shared context prefix runs once per cluster."""
    from mlx_instruct.evaluate.prefix import prefix_clusters

    total = sum(len(s) for s in seqs)
    for members, prefix_len in prefix_clusters(contexts, min_prefix):
        if prefix_len:
            total -= prefix_len * (len(members) - 1)
    return total


@contextlib.contextmanager
def recording(calls: Callable[[], Calls]) -> Iterator[None]:
    """Swap generation and scoring for recorders; `calls()` is the suite now recording."""
    from mlx_instruct.data.tokenize import encode_prompt
    from mlx_instruct.evaluate import generation, scoring

    real_generate, real_loglikelihood = generation.generate, scoring.loglikelihood

    def fake_generate(model, tokenizer, prompts, *, max_tokens=generation.DEFAULT_MAX_TOKENS,
                      batch_size=generation.DEFAULT_BATCH_SIZE, min_prefix=64, **_: Any):  # fmt: skip
        encoded = [encode_prompt(tokenizer, p) if isinstance(p, str) else list(p) for p in prompts]
        cap = min(int(max_tokens), generation.HARD_MAX_TOKENS)
        calls().generate.append(
            {"prompts": len(encoded), "prefill_tokens": _prefill_tokens(model, encoded, min_prefix),
             "max_tokens": cap, "batch_size": max(1, int(batch_size))}
        )  # fmt: skip
        return [generation.Generation("", len(ids), cap, "length", 0.0) for ids in encoded]

    def fake_loglikelihood(model, tokenizer, pairs, *, max_context=scoring.MAX_CONTEXT,
                           min_prefix=16, **_: Any):  # fmt: skip
        seqs, contexts = [], []
        for context, continuation in pairs:
            if isinstance(context, str):
                ctx, cont = scoring.split_context(tokenizer, context, continuation)
            else:
                ctx, cont = list(context), list(continuation)
            seq = (ctx + cont)[-(max_context + 1) :]  # as scoring.loglikelihood cuts it
            seqs.append(seq)
            contexts.append(seq[: len(seq) - min(len(cont), len(seq) - 1)])
        record = calls()
        record.scored_pairs += len(seqs)
        record.scored_tokens += _forward_tokens(seqs, contexts, min_prefix)
        return [(-1.0, False)] * len(seqs)

    generation.generate, scoring.loglikelihood = fake_generate, fake_loglikelihood
    try:
        yield
    finally:
        generation.generate, scoring.loglikelihood = real_generate, real_loglikelihood


def record_suites(ctx: Any, suites: list[str]) -> tuple[dict[str, Calls], dict[str, float]]:
    """Each suite's model calls and its non-model wall time, from one recorded run each."""
    from mlx_instruct.evaluate.runner import get_suite

    recorded: dict[str, Calls] = {}
    overhead: dict[str, float] = {}
    current: list[str] = [""]
    with recording(lambda: recorded[current[0]]):
        for suite in suites:
            current[0], recorded[suite] = suite, Calls()
            ctx.generations = []
            start = time.perf_counter()
            get_suite(suite)(ctx, ctx.suite_settings(suite))
            overhead[suite] = time.perf_counter() - start
    ctx.generations = []
    return recorded, overhead


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def probe(ctx: Any, batch_size: int) -> dict[str, float]:
    """Seconds per prefill token, per decode step (batch 1 and `batch_size`) and per scored
    token, from real calls (outside `recording`). Decode steps are timed on the study's test
    prompts cut to PROBE_PROMPT_TOKENS (a full batch without a full batch's prefill: the step
    barely depends on the context, see LEFT_OUT); prefill and scoring on PROBE_FULL whole ones."""
    from mlx_instruct.data.tokenize import encode_prompt
    from mlx_instruct.evaluate import generation, scoring
    from mlx_instruct.evaluate.adherence import prompt_of, read_records

    records = read_records(Path(ctx.data_dir) / "test.jsonl")
    if not records:
        raise ValueError(f"{ctx.data_dir}/test.jsonl: no records to time generation on")
    chosen = [records[i % len(records)] for i in range(max(batch_size, PROBE_FULL))]
    prompts = [encode_prompt(ctx.tokenizer, prompt_of(ctx, r)) for r in chosen]
    short = [ids[:PROBE_PROMPT_TOKENS] for ids in prompts[:batch_size]]
    k = PROBE_NEW_TOKENS

    def gen(batch: list[list[int]], tokens: int) -> float:
        return _timed(lambda: generation.generate(
            ctx.model, ctx.tokenizer, batch, max_tokens=tokens, batch_size=len(batch),
            share_prefix=False))  # fmt: skip

    gen(short, 2)  # warm-up: first-call compilation and allocation at the batch's shapes
    step_b = max(gen(short, 1 + k) - gen(short, 1), 0.0) / k
    step_1 = max(gen(short[:1], 1 + k) - gen(short[:1], 1), 0.0) / k
    rates = {"batch_size": batch_size, "decode_step_s_batch1": step_1, "decode_step_s": step_b}
    full = prompts[:PROBE_FULL]
    first_step = step_seconds(rates, len(full))
    rates["prefill_s_per_token"] = max(gen(full, 1) - first_step, 0.0) / sum(map(len, full))
    pairs = [(prompt_of(ctx, r), str(r.get("output") or " ok")) for r in chosen[:PROBE_FULL]]
    tokens = sum(sum(map(len, scoring.split_context(ctx.tokenizer, *p))) for p in pairs)
    score = _timed(lambda: scoring.loglikelihood(ctx.model, ctx.tokenizer, pairs,
                                                 share_prefix=False))  # fmt: skip
    rates["score_s_per_token"] = score / max(tokens, 1)
    return rates


def step_seconds(rates: dict[str, float], batch: int) -> float:
    """One decode step with `batch` active sequences: linear between batch 1 and the probe's."""
    s1, sb, b = rates["decode_step_s_batch1"], rates["decode_step_s"], rates["batch_size"]
    if b <= 1:
        return sb
    return max(s1, s1 + (sb - s1) * (batch - 1) / (b - 1))


def model_seconds(calls: Calls, rates: dict[str, float]) -> float:
    """Seconds of model work for one suite's recorded calls at the probed rates."""
    total = calls.scored_tokens * rates["score_s_per_token"]
    for call in calls.generate:
        n, batch = call["prompts"], call["batch_size"]
        waves = math.ceil(n / batch)
        last = n - (waves - 1) * batch
        decode = (waves - 1) * step_seconds(rates, batch) + step_seconds(rates, last)
        total += call["prefill_tokens"] * rates["prefill_s_per_token"]
        total += decode * call["max_tokens"]
    return total


def schedule(suite_s: dict[str, float], workers: int, load_s: float) -> float:
    """Wall seconds for one model, as `evaluate` runs its suites (see evaluate/parallel.py)."""
    from mlx_instruct.evaluate.parallel import split

    pooled, alone = split(list(suite_s), workers)
    loads = [load_s] * min(workers, len(pooled))
    for suite in pooled:  # the queue: each suite goes to the first worker free
        loads[loads.index(min(loads))] += suite_s[suite]
    total = max(loads, default=0.0)
    if alone:
        total += load_s + sum(suite_s[s] for s in alone)
    return total


def estimate(config: dict[str, Any], model: Path, data: Path) -> dict[str, Any]:
    """Per-suite and per-model evaluation minutes for this study on this machine."""
    from mlx_instruct.evaluate.context import load_context
    from mlx_instruct.study import suites as enabled

    names = enabled(config)
    batch = int(config["evaluation"].get("generation", {}).get("batch_size", 16))
    with tempfile.TemporaryDirectory(prefix="plan-eval-") as scratch:
        start = time.perf_counter()
        ctx = load_context(config, "base", 0, model, None, data, scratch)
        load_s = time.perf_counter() - start
        rates = probe(ctx, batch)
        recorded, overhead = record_suites(ctx, names)
    suite_s = {s: model_seconds(recorded[s], rates) + overhead[s] for s in names}
    workers = int(config["evaluation"].get("workers", 1))
    return {
        "rates": rates,
        "load_s": load_s,
        "workers": workers,
        "suites": {
            s: {"minutes": suite_s[s] / 60, "overhead_s": overhead[s], **asdict(recorded[s])}
            for s in names
        },
        "per_model_min": schedule(suite_s, workers, load_s) / 60,
        "note": LEFT_OUT,
    }


def summary_lines(evaluation: dict[str, Any], markdown: bool) -> list[str]:
    """The per-suite table and the totals, for the plan's printout (text) or plan.md."""
    head = (
        "suite",
        "min per model",
        "generate calls",
        "prompts",
        "max new tokens",
        "scored tokens",
    )
    cells = [head] + [
        (name, f"{s['minutes']:.2f}", str(len(s["generate"])),
         str(sum(c["prompts"] for c in s["generate"])),
         str(max((c["max_tokens"] for c in s["generate"]), default=0)), str(s["scored_tokens"]))
        for name, s in evaluation["suites"].items()
    ]  # fmt: skip
    if markdown:
        table = ["| " + " | ".join(r) + " |" for r in cells]
        table.insert(1, "|" + "---|" * len(head))
    else:
        widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
        table = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    e = evaluation
    return [
        "",
        *table,
        "",
        f"evaluation: {e['per_model_min']:.1f} min per model ({e['workers']} worker(s), "
        f"model load {e['load_s']:.1f} s); all {e['models']} models (every experiment x seed, "
        f"the base included): {e['all_models_min']:.1f} min",
        f"study total: {e['study_total_min']:.1f} min (training {e['train_total_min']:.1f} "
        f"+ evaluation {e['all_models_min']:.1f})",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlx_instruct.plan_eval",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    parser.add_argument("--config", required=True, help="study YAML")
    parser.add_argument("--model", required=True, help="the study's base MLX model dir")
    parser.add_argument("--data", required=True, help="the study's data dir (test.jsonl)")
    parser.add_argument("--out", required=True, help="JSON file for the estimate")
    args = parser.parse_args(argv)
    from mlx_instruct.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    result = estimate(config, Path(args.model), Path(args.data))
    write_json(Path(args.out), result)
    print(f"plan_eval: {result['per_model_min']:.2f} min per model -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
