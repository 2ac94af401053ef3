"""`profile`: what one model variant costs to run (issue 14 item 3's memory-speed table).

    python -m mlx_instruct.deploy profile --model <model dir> [--run <run dir>] \\
        --prompts data/test.jsonl [--n 8] [--max-tokens 32] [--batch-size B] [--repeats 2] \\
        --out profile.jsonl

Why separate from the efficiency suite: the table compares exported variants (fused, q8,
q4) and unfused adapter forms on the study's own test prompts, and needs what only
`mlx_lm.stream_generate` reports per request (time to first token, prompt-processing and
decode speed). Rows (suite "profile"):

- benchmark "batch1", item "<prompt id>-r<k>": ttft_s (wall time until the first token,
  prompt processing included), prompt_tokens_per_s and decode_tokens_per_s (mlx_lm's
  `prompt_tps` / `generation_tps` of the last response), peak_memory_gb
- benchmark f"batch{B}", item "r<k>": tokens_per_s (generated tokens / wall seconds of the
  batched call `evaluate.generation.generate`), peak_memory_gb; the prompts are cycled to at
  least B so the batch is full
- benchmark "model", item "model": size_on_disk_gb (the model's safetensors, plus the
  run's adapters: `efficiency.disk_sizes`), parameters (`efficiency.count_parameters`)

Greedy, after one warm-up of each path; OpenBLAS gets every usable core (speed only).
The `.json` beside the rows holds the median of each metric per benchmark and the machine's
load average before and after: on a shared CPU the speeds scale with the neighbours' load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import deque
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mlx_instruct.deploy.cli import check_counts_and_out
from mlx_instruct.deploy.speculative import SpeculativeError, read_prompts
from mlx_instruct.evaluate.adherence import row

SUITE = "profile"
WARMUP_TOKENS = 4


class ProfileError(ValueError):
    """Bad input for the profile CLI; the message names the flag or file."""


def check_dirs(model_dir: Path, run: Path | None) -> None:
    """Refuse a model or run directory that cannot load, before loading anything."""
    from mlx_instruct.train.outputs import ADAPTER_CONFIG

    if not (model_dir / "config.json").is_file():
        raise ProfileError(f"--model {model_dir}: not a model directory (no config.json)")
    if run is not None and not any((run / f).is_file() for f in (ADAPTER_CONFIG, "config.json")):
        raise ProfileError(
            f"--run {run}: neither {ADAPTER_CONFIG} (adapters) nor config.json (full model)"
        )


def batch1(model: Any, tokenizer: Any, ids: list[int], max_tokens: int) -> dict[str, float]:
    """One greedy stream_generate call: ttft, mlx_lm's prompt/decode speeds, peak memory."""
    import mlx.core as mx
    from mlx_lm.generate import stream_generate

    from mlx_instruct.evaluate.efficiency import GB

    mx.clear_cache()
    mx.reset_peak_memory()
    start = time.perf_counter()
    stream = stream_generate(model, tokenizer, ids, max_tokens=max_tokens)
    first = next(stream)
    ttft = time.perf_counter() - start
    response = (deque(stream, maxlen=1) or [first])[-1]  # the last one carries the speeds
    return {
        "ttft_s": ttft,
        "prompt_tokens_per_s": float(response.prompt_tps),
        "decode_tokens_per_s": float(response.generation_tps),
        "peak_memory_gb": mx.get_peak_memory() / GB,
    }


def batched(
    model: Any, tokenizer: Any, prompts: list[list[int]], max_tokens: int, batch_size: int
) -> dict[str, float]:
    """One call of the evaluators' batched generator: generated tokens / wall s, peak memory."""
    import mlx.core as mx

    from mlx_instruct.evaluate.efficiency import GB
    from mlx_instruct.evaluate.generation import generate

    mx.clear_cache()
    mx.reset_peak_memory()
    start = time.perf_counter()
    gens = generate(model, tokenizer, prompts, max_tokens=max_tokens, batch_size=batch_size)
    wall = time.perf_counter() - start
    return {
        "tokens_per_s": sum(g.generated_tokens for g in gens) / wall,
        "peak_memory_gb": mx.get_peak_memory() / GB,
    }


def measure(
    model: Any,
    tokenizer: Any,
    prompts: list[tuple[str, list[int]]],
    max_tokens: int,
    batch_size: int,
    repeats: int,
) -> list[dict]:
    """The timing rows of the module docstring (warm-ups first, not recorded)."""
    ids = [p for _, p in prompts]
    full = [ids[i % len(ids)] for i in range(max(len(ids), batch_size))]
    batch1(model, tokenizer, ids[0], WARMUP_TOKENS)
    batched(model, tokenizer, full, WARMUP_TOKENS, batch_size)
    rows: list[dict] = []
    for k in range(repeats):
        for item, prompt in prompts:
            for metric, value in batch1(model, tokenizer, prompt, max_tokens).items():
                rows.append(row(SUITE, "batch1", f"{item}-r{k}", metric, value))
        for metric, value in batched(model, tokenizer, full, max_tokens, batch_size).items():
            rows.append(row(SUITE, f"batch{batch_size}", f"r{k}", metric, value))
    return rows


def model_rows(model: Any, model_dir: Path, run: Path | None) -> list[dict]:
    """Size on disk and parameters, counted as the efficiency suite counts them."""
    from mlx_instruct.evaluate.efficiency import count_parameters, disk_sizes

    size_gb, _ = disk_sizes(SimpleNamespace(model_dir=model_dir, adapter_dir=run, method=None))
    return [
        row(SUITE, "model", "model", "size_on_disk_gb", size_gb),
        row(SUITE, "model", "model", "parameters", count_parameters(model)[0]),
    ]


def medians(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Median of each metric per benchmark (NaN values left out)."""
    values: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        if r["value"] == r["value"]:
            values.setdefault(r["benchmark"], {}).setdefault(r["metric"], []).append(r["value"])
    return {
        bench: {metric: statistics.median(v) for metric, v in metrics.items()}
        for bench, metrics in values.items()
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    from mlx_instruct.evaluate.generation import DEFAULT_BATCH_SIZE

    parser = argparse.ArgumentParser(prog="python -m mlx_instruct.deploy profile")
    parser.add_argument("--model", type=Path, required=True, help="model (or base) directory")
    parser.add_argument("--run", type=Path, default=None, help="adapter or full run directory")
    parser.add_argument(
        "--prompts", type=Path, required=True, help="JSON lines: the study's data/test.jsonl"
    )
    parser.add_argument("--n", type=int, default=8, help="the first N prompts")
    parser.add_argument("--template", choices=("chat", "alpaca"), default="chat")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="rows .jsonl (+ .json summary)")
    args = parser.parse_args(argv)
    check_counts_and_out(parser, args, "n", "max_tokens", "batch_size", "repeats")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    from mlx_instruct import blas
    from mlx_instruct.data.tokenize import encode_prompt
    from mlx_instruct.io import write_json, write_jsonl
    from mlx_instruct.train.outputs import load_trained

    try:
        check_dirs(args.model, args.run)
        model, tokenizer = load_trained(args.model, args.run)
        texts = read_prompts(args.prompts, args.n, args.template, tokenizer)
    except (ProfileError, SpeculativeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    blas.set_threads(blas.usable_cores())
    prompts = [(item, encode_prompt(tokenizer, text)) for item, text in texts]
    load_before = os.getloadavg()
    start = time.perf_counter()
    rows = measure(model, tokenizer, prompts, args.max_tokens, args.batch_size, args.repeats)
    rows += model_rows(model, args.model, args.run)
    write_jsonl(args.out, rows)
    summary = {
        "model": str(args.model),
        "run": str(args.run) if args.run is not None else None,
        "prompts": str(args.prompts),
        "n": len(prompts),
        "max_tokens": args.max_tokens,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "blas": blas.describe(),
        "seconds": round(time.perf_counter() - start, 2),
        "load_average": {"before": load_before, "after": os.getloadavg()},  # 1/5/15 min
        "medians": medians(rows),
    }
    write_json(args.out.with_suffix(".json"), summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
