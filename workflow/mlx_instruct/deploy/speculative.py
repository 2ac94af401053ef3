"""`speculative`: decode speed-up and acceptance rate of a draft model, with a greedy check.

Why (issue 14 item 4): a draft model (e.g. the 4-bit variant of the same model) proposes K
tokens that the target verifies in one forward pass; whether that pays depends on how often
the target accepts them. Each prompt is decoded greedily by `mlx_lm.stream_generate` without
the draft and with it for every K; rows (suite "speculative", item = prompt id):

- benchmark "no-draft": tokens_per_s, generated_tokens
- benchmark f"k{K}":    tokens_per_s, acceptance (fraction of generated tokens that came
                        from the draft: `from_draft`), identical (1 when the token ids equal
                        the no-draft ones), speedup (tokens_per_s over the no-draft one)

tokens_per_s is mlx_lm's `generation_tps` (decode only: prompt processing is timed apart as
`prompt_tps`). Each mode runs once on the first prompt before timing (compilation, buffers).

What mlx_lm guarantees (`speculative_generate_step`, mlx_lm 0.32): every emitted token is
the target's own greedy choice - a draft token is kept only when it equals the target's
argmax at that position - so the draft's precision (a 4-bit draft included) never changes
the output. What can differ is the target's arithmetic: with a draft it scores K+1 tokens
in one forward pass instead of one at a time, and matrix products of other shapes round
differently. In float32 that is last-bit noise, so a mismatch is a bug and the CLI exits 1;
a bfloat16/float16 or quantized target can flip a near-tie, so a mismatch is recorded (the
`identical` rows) and reported, not fatal.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from mlx_instruct.deploy.cli import check_counts_and_out
from mlx_instruct.evaluate.adherence import row

SUITE = "speculative"
NO_DRAFT = "no-draft"
WARMUP_TOKENS = 8


class SpeculativeError(ValueError):
    """Bad input for the speculative CLI; the message names the file or flag."""


def read_prompts(path: Path, n: int | None, template: str, tokenizer: Any) -> list[tuple[str, str]]:
    """(id, prompt text) of the first n records of a JSON-lines file.

    A record's "prompt" is used as written (the data stage's test.jsonl carries the study's
    formatted prompt); a record without one is formatted from "instruction" (+ "input") with
    `template`, as the evaluate stage does. A record without "id" is named by its line.
    """
    from mlx_instruct.data.templates import format_prompt
    from mlx_instruct.io import iter_jsonl

    if not path.is_file():
        raise SpeculativeError(f"--prompts {path}: file not found")
    prompts: list[tuple[str, str]] = []
    for line, record in iter_jsonl(path, objects=True, error=SpeculativeError):
        if n is not None and len(prompts) >= n:
            break
        text = record.get("prompt")
        if not (isinstance(text, str) and text):
            if not isinstance(record.get("instruction"), str):
                raise SpeculativeError(
                    f"{path}:{line}: expected a non-empty 'prompt' or an 'instruction' string"
                )
            text = format_prompt(record, template, tokenizer)
        prompts.append((str(record.get("id", f"line{line}")), text))
    if not prompts:
        raise SpeculativeError(f"--prompts {path}: no records")
    return prompts


def check_same_vocabulary(target_dir: Path, draft_dir: Path) -> None:
    """Refuse a draft whose token ids mean something else than the target's (before loading
    weights): config vocab_size and the tokenizers' token-to-id maps must be equal."""
    from mlx_lm.utils import load_config, load_tokenizer

    from mlx_instruct.data.tokenize import hf_tokenizer

    for flag, directory in (("--model", target_dir), ("--draft", draft_dir)):
        if not (directory / "config.json").is_file():
            raise SpeculativeError(f"{flag} {directory}: not a model directory (no config.json)")
    sizes = [load_config(d).get("vocab_size") for d in (target_dir, draft_dir)]
    if sizes[0] != sizes[1]:
        raise SpeculativeError(
            f"draft {draft_dir} has vocab_size {sizes[1]} but target {target_dir} has "
            f"{sizes[0]}: a draft must share the target's tokenizer"
        )
    vocabs = [hf_tokenizer(load_tokenizer(d)).get_vocab() for d in (target_dir, draft_dir)]
    if vocabs[0] != vocabs[1]:
        differing = len(set(vocabs[0].items()) ^ set(vocabs[1].items()))
        raise SpeculativeError(
            f"draft {draft_dir} and target {target_dir} have different tokenizers "
            f"({differing} token-id pairs differ): a draft must share the target's tokenizer"
        )


def exact_arithmetic(model: Any) -> bool:
    """True for a target whose floating-point weights are all float32 and none quantized:
    the one case where a greedy mismatch cannot be a near-tie (module docstring)."""
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    if any(isinstance(m, nn.QuantizedLinear | nn.QuantizedEmbedding) for m in model.modules()):
        return False
    return all(
        a.dtype == mx.float32
        for _, a in tree_flatten(model.parameters())
        if mx.issubdtype(a.dtype, mx.floating)
    )


def decode(
    model: Any, tokenizer: Any, ids: list[int], max_tokens: int, draft: Any = None, k: int = 0
) -> tuple[list[int], int, float]:
    """Greedy decode: (token ids, tokens from the draft, decode tokens/s)."""
    from mlx_lm.generate import stream_generate

    tokens: list[int] = []
    drafted = 0
    tps = float("nan")
    extra = {"draft_model": draft, "num_draft_tokens": k} if draft is not None else {}
    for response in stream_generate(model, tokenizer, ids, max_tokens=max_tokens, **extra):
        tokens.append(int(response.token))
        drafted += bool(response.from_draft)
        tps = float(response.generation_tps)
    return tokens, drafted, tps


def measure(
    model: Any,
    draft: Any,
    tokenizer: Any,
    prompts: list[tuple[str, list[int]]],
    max_tokens: int,
    num_draft: list[int],
) -> tuple[list[dict], list[str]]:
    """Rows for every prompt and mode, and the "<item> k<K>" pairs whose output differed."""
    first = prompts[0][1]
    decode(model, tokenizer, first, WARMUP_TOKENS)
    for k in num_draft:
        decode(model, tokenizer, first, WARMUP_TOKENS, draft, k)
    rows: list[dict] = []
    mismatches: list[str] = []
    for item, ids in prompts:
        reference, _, base_tps = decode(model, tokenizer, ids, max_tokens)
        rows.append(row(SUITE, NO_DRAFT, item, "tokens_per_s", base_tps))
        rows.append(row(SUITE, NO_DRAFT, item, "generated_tokens", len(reference)))
        for k in num_draft:
            tokens, drafted, tps = decode(model, tokenizer, ids, max_tokens, draft, k)
            same = tokens == reference
            if not same:
                mismatches.append(f"{item} k{k}")
            bench = f"k{k}"
            rows.append(row(SUITE, bench, item, "tokens_per_s", tps))
            rows.append(row(SUITE, bench, item, "acceptance", drafted / max(len(tokens), 1)))
            rows.append(row(SUITE, bench, item, "identical", float(same)))
            rows.append(row(SUITE, bench, item, "speedup", tps / base_tps))
    return rows, mismatches


def summarise(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Mean of each metric per benchmark (the report's one line per K)."""
    import numpy as np

    values: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        values.setdefault(r["benchmark"], {}).setdefault(r["metric"], []).append(r["value"])
    return {
        bench: {metric: float(np.nanmean(v)) for metric, v in metrics.items()}
        for bench, metrics in values.items()
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlx_instruct.deploy speculative")
    parser.add_argument("--model", type=Path, required=True, help="target model dir")
    parser.add_argument("--draft", type=Path, required=True, help="draft model dir")
    parser.add_argument(
        "--prompts", type=Path, required=True, help="JSON lines: the study's data/test.jsonl"
    )
    parser.add_argument("--n", type=int, default=None, help="the first N prompts (default all)")
    parser.add_argument("--template", choices=("chat", "alpaca"), default="chat")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--num-draft", type=int, nargs="+", default=[2, 4], metavar="K")
    parser.add_argument("--out", type=Path, required=True, help="rows .jsonl (+ .json summary)")
    args = parser.parse_args(argv)
    check_counts_and_out(parser, args, "max_tokens", "n", "num_draft")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    from mlx_lm.utils import load_tokenizer

    from mlx_instruct.data.tokenize import encode_prompt
    from mlx_instruct.io import write_json, write_jsonl
    from mlx_instruct.sources import load_model

    try:
        check_same_vocabulary(args.model, args.draft)
        texts = read_prompts(args.prompts, args.n, args.template, load_tokenizer(args.model))
    except SpeculativeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    model, tokenizer = load_model(args.model)
    draft, _ = load_model(args.draft)
    prompts = [(item, encode_prompt(tokenizer, text)) for item, text in texts]
    start = time.perf_counter()
    rows, mismatches = measure(model, draft, tokenizer, prompts, args.max_tokens, args.num_draft)
    exact = exact_arithmetic(model)
    write_jsonl(args.out, rows)
    write_json(
        args.out.with_suffix(".json"),
        {
            "model": str(args.model),
            "draft": str(args.draft),
            "prompts": str(args.prompts),
            "n": len(prompts),
            "max_tokens": args.max_tokens,
            "num_draft": args.num_draft,
            "target_float32": exact,
            "mismatches": mismatches,
            "seconds": round(time.perf_counter() - start, 2),
            "means": summarise(rows),
        },
    )
    if mismatches:
        kind = "float32 target: a bug" if exact else "not float32: near-tie rounding"
        print(f"speculative: greedy output differs ({kind}): {mismatches}", file=sys.stderr)
    return 1 if mismatches and exact else 0


if __name__ == "__main__":
    sys.exit(main())
