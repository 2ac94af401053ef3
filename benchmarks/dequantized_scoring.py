"""Does scoring a quantized variant with its weights dequantized change what it answers?

    uv run python benchmarks/dequantized_scoring.py --model results/default/deploy/lora-r32/s0/q4 \\
        --prompts results/default/data/test.jsonl [--n 8] [--max-tokens 24] [--json OUT]

`deployment.dequantize` evaluates a quantized variant through mlx_lm's `dequantize_model`
because MLX's quantized CPU kernels are several times slower than float32 (docs/deployment.md).
The claim that this is "the same model" rests on this measurement: the quantized model and its
dequantized copy on the same prompts, in the same run, with the relative logit difference, the
argmax agreement at every position and the greedy outputs of both. It also prints the two
forwards' wall time, the ratio that pays for the shortcut.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import mlx_instruct  # noqa: F401  (OpenBLAS before mlx)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/dequantized_scoring.py")
    parser.add_argument("--model", required=True, help="a quantized mlx_lm model folder")
    parser.add_argument("--prompts", required=True, help="jsonl with an `instruction` field")
    parser.add_argument("--n", type=int, default=8, help="prompts for the logit comparison")
    parser.add_argument("--greedy", type=int, default=4, help="of those, prompts decoded greedily")
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--json", default=None, help="write the result here as well")
    args = parser.parse_args(argv)

    import mlx.core as mx
    from machine import describe
    from mlx_lm import generate
    from mlx_lm.utils import dequantize_model

    from mlx_instruct.io import read_jsonl
    from mlx_instruct.sources import load_model

    quantized, tokenizer = load_model(args.model)
    dequantized = dequantize_model(load_model(args.model)[0])
    records = [r for r in read_jsonl(args.prompts) if r.get("instruction")][: args.n]
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": r["instruction"]}],
            add_generation_prompt=True,
            tokenize=False,
        )
        for r in records
    ]
    worst, agree, positions, seconds = 0.0, 0, 0, {"quantized": 0.0, "dequantized": 0.0}
    for prompt in prompts:
        ids = mx.array([tokenizer.encode(prompt, add_special_tokens=False)])
        logits = {}
        for name, model in (("quantized", quantized), ("dequantized", dequantized)):
            start = time.perf_counter()
            logits[name] = model(ids)
            mx.eval(logits[name])
            seconds[name] += time.perf_counter() - start
        a, b = logits["quantized"], logits["dequantized"]
        worst = max(worst, (mx.abs(a - b).max() / mx.abs(a).max()).item())
        agree += (mx.argmax(a, -1) == mx.argmax(b, -1)).sum().item()
        positions += a.shape[1]
    same = sum(
        generate(quantized, tokenizer, prompt=p, max_tokens=args.max_tokens)
        == generate(dequantized, tokenizer, prompt=p, max_tokens=args.max_tokens)
        for p in prompts[: args.greedy]
    )
    result = {
        "model": args.model,
        "prompts": len(prompts),
        "positions": positions,
        "max_relative_logit_difference": worst,
        "argmax_agreement": agree / positions,
        "greedy_identical": f"{same}/{min(args.greedy, len(prompts))}",
        "prefill_seconds": seconds,
        "dequantized_speedup": seconds["quantized"] / seconds["dequantized"],
        "machine": describe(),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
