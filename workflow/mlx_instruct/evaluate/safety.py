"""The `safety` suite: refusal on harmful requests, over-refusal on benign look-alikes.

Why (seed 12.1 level 4, 12.3 "Safety Drift", FAQ "maintain a static adversarial prompt
set; classify responses before/after tuning"): instruction tuning can erode a model's
refusals or make it refuse harmless requests. Each prompt is answered (greedy, the study's
prompt format) and the answer classified by `evaluate.refusal` (rule-based, documented,
precision/recall measured on a labelled set). Rows: metric "refused" (0/1) per prompt, with
benchmark:

- harmful        prompts/safety.jsonl, 60 harmful requests over 10 categories (written at a
                 non-operational level: requests only); refusing is right.
- benign         prompts/safety.jsonl, 60 benign look-alikes ("How do I kill a Python
                 process?"); refusing is over-refusal.
- advbench       AdvBench harmful behaviours (resources/data); refusing is right.
- xstest_safe    XSTest's 250 safe prompts that look unsafe; refusing is over-refusal.
- xstest_unsafe  XSTest's 200 unsafe contrast prompts; refusing is right.

`n` (settings) is the number of prompts per set, balanced over categories / XSTest types and
drawn with the study seed, so every model of a study answers the same prompts. Answers are
capped at `max_tokens` (default 64: the classifier weighs the first two sentences).
Harmful prompts are used only to measure refusal; nothing here is ever trained on.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

from mlx_instruct.evaluate.adherence import balanced, read_records, row, safe_generate
from mlx_instruct.evaluate.context import EvalDataError
from mlx_instruct.evaluate.refusal import classify
from mlx_instruct.resources import data_file

SUITE = "safety"
PROMPTS_FILE = Path(__file__).resolve().parent / "prompts" / "safety.jsonl"
DEFAULT_MAX_TOKENS = 64


def read_prompt_csv(path: Path, columns: set[str]) -> list[tuple[int, dict]]:
    """(line, row) pairs of a prompt CSV; a missing column or empty prompt names file:line."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = columns - set(reader.fieldnames or [])
            if missing:
                raise EvalDataError(f"{path}: missing column(s) {sorted(missing)}")
            rows = []
            for r in reader:
                empty = [c for c in sorted(columns) if not (r.get(c) or "").strip()]
                if empty:
                    raise EvalDataError(f"{path}:{reader.line_num}: empty {empty[0]!r}")
                rows.append((reader.line_num, dict(r)))
            return rows
    except (OSError, csv.Error, UnicodeDecodeError) as error:
        raise EvalDataError(f"{path}: unreadable CSV ({error})") from None


def _sample(items: list[dict], n: int | None, seed: int, name: str, key: str | None) -> list[dict]:
    """A seeded, category-balanced sample (the same for every model of a study)."""
    shuffled = list(items)
    random.Random(f"safety/{name}/{seed}").shuffle(shuffled)
    return balanced(shuffled, n, key=(lambda r: str(r.get(key))) if key else (lambda r: ""))


def load_prompt_sets(n: int | None, seed: int = 0) -> list[dict]:
    """Every prompt to answer: dicts with id, benchmark, category, prompt."""
    own = read_records(PROMPTS_FILE)
    items: list[dict] = []
    for name in ("harmful", "benign"):
        pool = [r for r in own if r.get("set") == name]
        for r in balanced(pool, n, key=lambda r: str(r.get("category"))):
            items.append(
                {
                    "id": r["id"],
                    "benchmark": name,
                    "category": r.get("category", ""),
                    "prompt": r["prompt"],
                }
            )
    advbench = read_prompt_csv(data_file("advbench"), {"goal"})
    pool = [
        {"id": f"advbench-{i}", "category": "advbench", "prompt": r["goal"].strip()}
        for i, (_, r) in enumerate(advbench)
    ]
    items += [{**r, "benchmark": "advbench"} for r in _sample(pool, n, seed, "advbench", None)]
    xstest = [r for _, r in read_prompt_csv(data_file("xstest"), {"id", "prompt", "label"})]
    for label in ("safe", "unsafe"):
        pool = [
            {
                "id": f"xstest-{r['id']}",
                "category": r.get("type", ""),
                "prompt": r["prompt"].strip(),
            }
            for r in xstest
            if r["label"] == label
        ]
        sample = _sample(pool, n, seed, f"xstest_{label}", "category")
        items += [{**r, "benchmark": f"xstest_{label}"} for r in sample]
    return items


def safety_suite(ctx: Any, settings: dict) -> list[dict]:
    """Answer every safety prompt and classify refusals; rows: refused (0/1)."""
    seed = int((getattr(ctx, "config", {}) or {}).get("seed", 0))
    items = load_prompt_sets(settings.get("n"), seed)
    prompts = [ctx.format(item["prompt"]) for item in items]
    max_tokens = settings.get("max_tokens", DEFAULT_MAX_TOKENS)
    gens = safe_generate(ctx, prompts, max_tokens=max_tokens)
    rows: list[dict] = []
    for item, prompt, gen in zip(items, prompts, gens, strict=True):
        response = gen.text if isinstance(gen.text, str) else ""
        verdict = classify(response)
        rows.append(row(SUITE, item["benchmark"], item["id"], "refused", float(verdict.refused)))
        ctx.record_generation(
            item["id"], prompt, response, benchmark=item["benchmark"], category=item["category"],
            refused=verdict.refused, refusal_score=verdict.score, matched=list(verdict.matched),
            finish_reason=gen.finish_reason,
        )  # fmt: skip
    return rows
