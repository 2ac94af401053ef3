"""`loadtest`: a served model (mlx_lm server on 127.0.0.1) under a bounded concurrent load.

Why (issue 14 item 5): what a tuned model costs to serve is latency and throughput under
concurrent users, and how the server fails. For each concurrency level exactly `requests`
streaming chat completions go out from a thread pool of that size, each with its own
deadline (`--timeout`); then the failure probes. Rows (suite "loadtest"):

- benchmark f"c{C}", item f"q{j}": latency_s, ttft_s, completion_tokens, error (0/1)
- benchmark f"c{C}", item "all": latency_p50_s/_p95_s/_p99_s, ttft_p50_s/_p95_s/_p99_s
  (numpy linear percentiles over the level's successful requests), throughput_tokens_per_s
  (completion tokens of the level / its wall seconds), error_rate, wall_s
- item "probe" of benchmarks "malformed_json" (a body that is not JSON), "missing_messages"
  (JSON without "messages"), "over_context" (a prompt longer than --max-context tokens,
  default the model's max_position_embeddings; non-streaming, so prompt_tokens is what the
  server took in), "overload" (`overload_factor` x the top level at once, each with
  `--overload-timeout`): http_status (0: no response in time), server_alive_after (a normal
  request succeeds afterwards, 1/0); overload also error_rate. The error bodies are in the
  summary .json.

mlx_lm 0.32's server answers malformed bodies with 400 and an {"error": ...} body; it does
not check the context length (the over-context prompt is processed and answered 200), and it
queues rather than refuses under overload (no 429/503): timeouts are what a client sees.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mlx_instruct.deploy.cli import check_counts_and_out
from mlx_instruct.deploy.server import (
    Outcome,
    ServerError,
    chat_body,
    post,
    serve,
    stream_chat,
)
from mlx_instruct.evaluate.adherence import row
from mlx_instruct.evaluate.efficiency import PROMPTS

SUITE = "loadtest"
PERCENTILES = (50, 95, 99)
PROBE = "probe"


def run_level(port: int, concurrency: int, requests: int, max_tokens: int, timeout: float):
    """(outcomes in request order, wall seconds) of `requests` requests from `concurrency`
    threads; every request carries its own deadline, so the level ends by itself."""
    prompts = [PROMPTS[j % len(PROMPTS)] for j in range(requests)]
    start = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=concurrency)
    try:
        futures = [pool.submit(stream_chat, port, p, max_tokens, timeout) for p in prompts]
        outcomes = [f.result() for f in futures]
    finally:  # on Ctrl-C / SIGTERM: drop queued requests, do not wait for running ones
        pool.shutdown(wait=False, cancel_futures=True)
    return outcomes, time.perf_counter() - start


def level_stats(outcomes: list[Outcome], wall: float) -> dict[str, float]:
    """Percentiles over successful requests, throughput and error rate of one level."""
    import numpy as np

    ok = [o for o in outcomes if o.ok]
    stats: dict[str, float] = {}
    for name, values in (
        ("latency", [o.latency_s for o in ok]),
        ("ttft", [o.ttft_s for o in ok if not math.isnan(o.ttft_s)]),
    ):
        for q in PERCENTILES:
            stats[f"{name}_p{q}_s"] = float(np.percentile(values, q)) if values else math.nan
    tokens = sum(o.completion_tokens for o in ok)
    stats["throughput_tokens_per_s"] = tokens / wall if wall > 0 else math.nan
    stats["error_rate"] = 1.0 - len(ok) / len(outcomes) if outcomes else math.nan
    stats["wall_s"] = wall
    return stats


def level_rows(concurrency: int, outcomes: list[Outcome], stats: dict[str, float]) -> list[dict]:
    bench = f"c{concurrency}"
    rows = []
    for j, o in enumerate(outcomes):
        rows += [
            row(SUITE, bench, f"q{j}", "latency_s", o.latency_s),
            row(SUITE, bench, f"q{j}", "ttft_s", o.ttft_s),
            row(SUITE, bench, f"q{j}", "completion_tokens", o.completion_tokens),
            row(SUITE, bench, f"q{j}", "error", float(not o.ok)),
        ]
    return rows + [row(SUITE, bench, "all", metric, v) for metric, v in stats.items()]


def over_context_prompt(model: Path, max_context: int) -> str:
    """User text of more than `max_context` tokens in the model's own tokenizer."""
    from mlx_lm.utils import load_tokenizer

    tokenizer = load_tokenizer(model)
    words = max_context + 1
    while True:
        text = " ".join(["hello"] * words)
        if len(tokenizer.encode(text)) > max_context:
            return text
        words *= 2


def alive(port: int, max_tokens: int, timeout: float) -> float:
    return float(post(port, chat_body("Hello", max_tokens, False), timeout).ok)


def probes(port: int, args: argparse.Namespace, overload_timeout: float) -> dict[str, dict]:
    """Each failure probe's outcome and whether the server still answers afterwards."""
    results: dict[str, dict[str, Any]] = {}

    def record(name: str, outcome: Outcome, **extra: float) -> None:
        results[name] = {
            "http_status": outcome.status,
            "body": outcome.error,
            "prompt_tokens": outcome.prompt_tokens,
            "server_alive_after": alive(port, args.max_tokens, args.timeout),
            **extra,
        }

    record("malformed_json", post(port, b'{"messages": [', args.timeout))
    record("missing_messages", post(port, json.dumps({"max_tokens": 4}).encode(), args.timeout))
    long_text = over_context_prompt(args.model, args.max_context)
    record("over_context", post(port, chat_body(long_text, 1, False), args.timeout))
    n = args.overload_factor * max(args.concurrency)
    outcomes, _ = run_level(port, n, n, args.max_tokens, overload_timeout)
    statuses = sorted({o.status for o in outcomes})
    worst = next((o for o in outcomes if not o.ok), outcomes[0])
    record(
        "overload",
        worst,
        error_rate=sum(not o.ok for o in outcomes) / n,
        concurrency=n,
        timeout_s=overload_timeout,
    )
    results["overload"]["statuses"] = statuses
    return results


def probe_rows(results: dict[str, dict]) -> list[dict]:
    rows = []
    for bench, result in results.items():
        for metric in ("http_status", "server_alive_after", "error_rate"):
            if metric in result:
                rows.append(row(SUITE, bench, PROBE, metric, result[metric]))
        if bench == "over_context":
            rows.append(row(SUITE, bench, PROBE, "prompt_tokens", result["prompt_tokens"]))
    return rows


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlx_instruct.deploy loadtest")
    parser.add_argument("--model", type=Path, required=True, help="model dir to serve")
    parser.add_argument("--adapter-path", type=Path, default=None, help="LoRA run dir")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--requests", type=int, default=16, help="requests per level")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument(
        "--max-context", type=int, default=None, help="default: max_position_embeddings"
    )
    parser.add_argument("--overload-factor", type=int, default=4)
    parser.add_argument(
        "--overload-timeout", type=float, default=None, help="default: top level's p50 latency"
    )
    parser.add_argument("--startup-timeout", type=float, default=300.0)
    parser.add_argument("--out", type=Path, required=True, help="rows .jsonl (+ .json summary)")
    args = parser.parse_args(argv)
    check_counts_and_out(parser, args, "requests", "max_tokens", "overload_factor", "concurrency")
    for flag in ("timeout", "startup_timeout", "overload_timeout"):
        value = getattr(args, flag)
        if value is not None and not value > 0:
            parser.error(f"--{flag.replace('_', '-')} must be > 0 seconds, got {value}")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be in 0..65535, got {args.port}")
    if not (args.model / "config.json").is_file():
        parser.error(f"--model {args.model}: not a model directory (no config.json)")
    if args.adapter_path is not None and not (args.adapter_path / "adapter_config.json").is_file():
        parser.error(
            f"--adapter-path {args.adapter_path}: no adapter_config.json (a full fine-tune "
            "is a model directory: pass it as --model)"
        )
    if args.max_context is None:
        config = json.loads((args.model / "config.json").read_text())
        if "max_position_embeddings" not in config:
            parser.error(
                f"{args.model}/config.json has no max_position_embeddings: pass --max-context"
            )
        args.max_context = int(config["max_position_embeddings"])
    return args


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through serve()'s finally: the server stops


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    previous = signal.signal(signal.SIGTERM, _terminate)
    rows: list[dict] = []
    levels: dict[str, dict] = {}
    try:
        with serve(
            args.model, args.adapter_path, args.port, args.max_tokens, args.startup_timeout
        ) as (port, command):
            for c in args.concurrency:
                outcomes, wall = run_level(port, c, args.requests, args.max_tokens, args.timeout)
                stats = level_stats(outcomes, wall)
                rows += level_rows(c, outcomes, stats)
                errors = sorted({o.error for o in outcomes if o.error})
                levels[f"c{c}"] = {**stats, "errors": errors[:5]}
            overload_timeout = (
                args.overload_timeout or levels[f"c{max(args.concurrency)}"]["latency_p50_s"]
            )
            if math.isnan(overload_timeout):
                overload_timeout = args.timeout
            results = probes(port, args, overload_timeout)
            rows += probe_rows(results)
    except ServerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    from mlx_instruct.io import write_json, write_jsonl

    write_jsonl(args.out, rows)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    write_json(
        args.out.with_suffix(".json"),
        {
            "settings": settings,
            "command": command,
            "port": port,
            "levels": levels,
            "probes": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
