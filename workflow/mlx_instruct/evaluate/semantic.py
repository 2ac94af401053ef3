"""The `semantic` suite: response quality against references (seed 12.1 level 3, 12.3).

Why: constraint checks say nothing about *what* a free-form answer says. For n held-out
items with a reference answer the suite measures (benchmark "heldout" = data/test.jsonl,
"alpaca" = the vendored resources/data/alpaca_5000.json):

- semsim         cosine similarity of the response's and the reference's all-MiniLM-L6-v2
                 embeddings (SemScore, Aynetdinov & Akbik 2024), in [-1, 1]; an empty
                 response scores 0 (a failure, not the embedding of an empty string).
- reference_nll  mean negative log-likelihood per token of the reference answer given the
                 prompt (nats; exp() of it is the reference perplexity): the seed's
                 "fluency (perplexity)" measured on fixed text, so it is comparable across
                 models and does not reward short or repetitive answers.
- quality        composite, 0-100:
                     quality = 100 * (0.5 * clip(semsim, 0, 1) + 0.5 * clip(1 - nll / ln V, 0, 1))
                 V = the tokenizer's vocabulary size: ln V is the per-token NLL of a uniform
                 guess, so the fluency half is 1 when the reference is certain and 0 when
                 the model does no better than chance. Models of one study share the
                 tokenizer, so the composite compares them on one scale.

Items: n in total, half from each source (the rest from the other if one runs short). Alpaca items whose (instruction, input) appear in the study's
train/valid/test data are dropped (no scoring of trained-on items); they are drawn with a
fixed seed (the study seed), so every model of a study sees the same items.
"""

from __future__ import annotations

import json
import math
import random
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mlx_instruct.evaluate.adherence import balanced, prompt_of, read_records, row, safe_generate
from mlx_instruct.evaluate.context import EvalDataError
from mlx_instruct.evaluate.scoring import split_context
from mlx_instruct.resources import data_file

SUITE = "semantic"
SEMSIM_WEIGHT = 0.5


def _key(instruction: Any, input: Any) -> str:
    return re.sub(r"\s+", " ", f"{instruction}\x1f{input or ''}".lower()).strip()


def quality_score(
    semsim: float, nll: float, vocab_size: int, weight: float = SEMSIM_WEIGHT
) -> float:
    """The documented composite (0-100) of semantic similarity and reference fluency."""
    s = min(max(semsim, 0.0), 1.0) if math.isfinite(semsim) else 0.0
    chance = math.log(max(int(vocab_size), 2))
    f = min(max(1.0 - nll / chance, 0.0), 1.0) if math.isfinite(nll) else 0.0
    return 100.0 * (weight * s + (1.0 - weight) * f)


def _alpaca_items(ctx: Any, k: int, seen: set[str]) -> list[dict]:
    if k <= 0:
        return []
    path = data_file("alpaca")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise EvalDataError(f"{path}: unreadable ({error})") from None
    pool = [
        {"id": f"alpaca-{i}", "instruction": r["instruction"], "input": r.get("input", "") or "", "output": r["output"]}
        for i, r in enumerate(data)
        if isinstance(r, dict) and r.get("instruction") and str(r.get("output", "")).strip()
        and _key(r["instruction"], r.get("input")) not in seen
    ]  # fmt: skip
    seed = int((getattr(ctx, "config", {}) or {}).get("seed", 0))
    return random.Random(f"semantic/{seed}").sample(pool, min(k, len(pool)))


def select_items(ctx: Any, n: int | None) -> list[tuple[str, dict]]:
    """(benchmark, record) pairs: held-out test records first, then Alpaca ones."""
    data_dir = Path(ctx.data_dir)
    test = [r for r in read_records(data_dir / "test.jsonl") if str(r.get("output", "")).strip()]
    seen = {
        _key(r.get("instruction"), r.get("input"))
        for split in ("train", "valid", "test")
        for r in read_records(data_dir / f"{split}.jsonl")
    }
    total = n if n is not None else len(test)
    probe = _alpaca_items(ctx, total, seen)  # what the Alpaca source can give
    n_test = min(len(test), total - min(len(probe), total // 2))
    held = balanced(test, n_test, key=lambda r: str(r.get("family") or r.get("source")))
    alpaca = probe[: total - len(held)]
    return [("heldout", r) for r in held] + [("alpaca", r) for r in alpaca]


def _token_count(ctx: Any, prompt: str, continuation: str) -> int:
    """Tokens of the continuation as ctx.loglikelihood scores it."""
    return max(1, len(split_context(ctx.tokenizer, prompt, continuation)[1]))


def _vocab_size(tokenizer: Any) -> int:
    for attr in ("vocab_size",):
        value = getattr(tokenizer, attr, None)
        if isinstance(value, int) and value > 1:
            return value
    try:
        return len(tokenizer)
    except TypeError:
        return 32000


def reference_nll(ctx: Any, prompts: list[str], references: list[str]) -> list[float]:
    """Mean NLL per token of each reference given its prompt (NaN where scoring fails)."""
    pairs = list(zip(prompts, references, strict=True))
    try:
        scored = ctx.loglikelihood(pairs)
    except Exception as error:  # fall back to one at a time
        print(
            f"warning: batched loglikelihood failed ({error}); scoring one by one", file=sys.stderr
        )
        scored = []
        for pair in pairs:
            try:
                scored.extend(ctx.loglikelihood([pair]))
            except Exception:
                scored.append((float("nan"), False))
    return [
        -float(lp) / _token_count(ctx, p, r) for (lp, _), (p, r) in zip(scored, pairs, strict=True)
    ]


def load_encoder_or_fail(settings: dict) -> Any:
    """The sentence encoder, or a one-line data error (checked before any generation)."""
    from mlx_instruct.evaluate.context import EvalDataError
    from mlx_instruct.evaluate.embeddings import MODEL_REQUIREMENT, load_encoder

    try:
        return load_encoder(settings.get("embedding_model_dir"), settings.get("cache_dir"))
    except Exception as error:
        raise EvalDataError(
            f"semantic: cannot load the embedding model ({MODEL_REQUIREMENT} from PyPI; "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        ) from None


def response_similarity(encoder: Any, texts_a: list[str], texts_b: list[str]) -> list[float]:
    """Pairwise embedding cosine of two lists of texts (0 where either is empty).

    Also what the seed's "predefined prompts: compare semantic drift" needs: base vs tuned
    responses to the same prompts (seed_prompts.generations.jsonl of two runs).
    """
    from mlx_instruct.evaluate.embeddings import paired_cosine

    a, b = encoder.encode(texts_a), encoder.encode(texts_b)
    sims = paired_cosine(a, b)
    empty = np.array(
        [not x.strip() or not y.strip() for x, y in zip(texts_a, texts_b, strict=True)]
    )
    return [float(s) for s in np.where(empty, 0.0, sims)]


def semantic_suite(ctx: Any, settings: dict) -> list[dict]:
    """Generate on n reference items; rows semsim, reference_nll, quality per item."""
    items = select_items(ctx, settings.get("n"))
    if not items:
        print(
            "warning: semantic: no reference items (test.jsonl outputs, alpaca file)",
            file=sys.stderr,
        )
        return []
    encoder = load_encoder_or_fail(settings)
    prompts = [prompt_of(ctx, r) for _, r in items]
    references = [str(r["output"]) for _, r in items]
    gens = safe_generate(ctx, prompts, max_tokens=settings.get("max_tokens"))
    responses = [g.text if isinstance(g.text, str) else "" for g in gens]
    sims = response_similarity(encoder, responses, references)
    nlls = reference_nll(ctx, prompts, references)
    vocab = _vocab_size(ctx.tokenizer)
    rows: list[dict] = []
    for k, ((benchmark, record), prompt) in enumerate(zip(items, prompts, strict=True)):
        item_id = str(record.get("id") or f"{benchmark}-{k}")
        quality = quality_score(sims[k], nlls[k], vocab)
        rows.append(row(SUITE, benchmark, item_id, "semsim", sims[k]))
        rows.append(row(SUITE, benchmark, item_id, "reference_nll", nlls[k]))
        rows.append(row(SUITE, benchmark, item_id, "quality", quality))
        ctx.record_generation(
            item_id, prompt, responses[k], benchmark=benchmark, reference=references[k],
            finish_reason=gens[k].finish_reason, semsim=sims[k],
        )  # fmt: skip
    return rows
