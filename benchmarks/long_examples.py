"""Long training examples (960-1020 tokens each by default) from a data directory, for train_benchmark.py.

    uv run python benchmarks/long_examples.py --data FILE.jsonl [FILE.jsonl ...] --model DIR
        --out DIR [--tokens 960] [--max-tokens 1020]

Issue 13 measures the trainer on ~1,000-token examples as well as on Alpaca lengths, where
activations rather than weights dominate memory. The data stage has no such rows (its sources
are short), so each long row keeps one row's prompt and joins the completions of the rows
after it until the prompt + completion reach --tokens under the model's tokenizer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def long_rows(rows: list[dict], count, target: int, limit: int) -> list[dict]:
    """Rows of `target` to `limit` tokens (count(text) -> tokens): a row's prompt, then the
    completions of the rows after it that still fit under `limit`; each row used once."""
    out, pool = [], list(rows)
    while pool:
        head = pool.pop(0)
        prompt, completion = head["prompt"], head["completion"]
        for row in list(pool):
            if count(prompt + completion) >= target:
                break
            joined = completion + "\n\n" + row["completion"]
            if count(prompt + joined) < limit:
                completion = joined
                pool.remove(row)
        if target <= count(prompt + completion) < limit:
            out.append({**head, "id": f"long-{head['id']}", "completion": completion})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, nargs="+", help="the data stage's jsonl files")
    parser.add_argument("--model", required=True, help="model dir (its tokenizer counts)")
    parser.add_argument("--out", required=True, help="writes train.jsonl here")
    parser.add_argument("--tokens", type=int, default=960, help="fewest tokens a row has")
    parser.add_argument("--max-tokens", type=int, default=1020, help="(exclusive) most tokens")
    args = parser.parse_args()

    from mlx_lm.utils import load_tokenizer

    from mlx_instruct.io import read_jsonl, write_jsonl

    tokenizer = load_tokenizer(Path(args.model))
    rows = [row for path in args.data for row in read_jsonl(path)]
    found = long_rows(rows, lambda text: len(tokenizer.encode(text)), args.tokens, args.max_tokens)
    if not found:
        raise SystemExit(f"{args.data}: too little text for {args.tokens}-token rows")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_jsonl(Path(args.out) / "train.jsonl", found)
    print(
        f"{len(found)} rows of {args.tokens}-{args.max_tokens} tokens from {len(rows)} in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
