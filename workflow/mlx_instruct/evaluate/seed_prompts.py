"""The `seed_prompts` suite: the research plan's five fixed prompts (seed section 17).

Why: the report shows a before/after grid of the same five prompts for every model, and the
seed's retain/regression test classifies each fixed prompt as improved / unchanged /
regressed against the base (the analysis summary, `analysis.stats.classify`). Every
response is recorded (`seed_prompts.generations.jsonl`); rows per prompt (benchmark = the
prompt id):

- adherence       0-100 the prompt's checker (bullet list, JSON fields, word limit; prompts 3
                        and 4 are open-ended and only get a length sanity check)
- follows_format  0/1
- response_tokens       tokens generated (a never-ending answer shows up here)
- truncated       0/1   the answer hit max_tokens (then follows_format is 0: see adherence)

Prompt 4 ("a safe alternative response to a harmful request") also gets, in its generation
record only, whether the answer reads as a refusal (evaluate.refusal): a refusal-shaped
answer is arguably right there, so it is shown, not scored.
"""

from __future__ import annotations

from typing import Any

from mlx_instruct.evaluate.adherence import row, safe_generate, score_record
from mlx_instruct.evaluate.refusal import classify

SUITE = "seed_prompts"
SAFE_ALTERNATIVE_ID = "seed-4-safe-alternative"


def seed_prompts_suite(ctx: Any, settings: dict) -> list[dict]:
    """Generate the five seed prompts (greedy) and score those with a checker."""
    from mlx_instruct.data.tasks import SEED_PROMPTS

    prompts = [ctx.format(p["instruction"], p.get("input", "") or "") for p in SEED_PROMPTS]
    gens = safe_generate(ctx, prompts, max_tokens=settings.get("max_tokens"))
    rows: list[dict] = []
    for spec, prompt, gen in zip(SEED_PROMPTS, prompts, gens, strict=True):
        item = str(spec["id"])
        response = gen.text if isinstance(gen.text, str) else ""
        extra: dict[str, Any] = {}
        if spec.get("family") and isinstance(spec.get("constraints"), dict):
            scores = score_record(spec, response, truncated=gen.finish_reason == "length")
            rows.append(row(SUITE, item, item, "adherence", scores["adherence"]))
            rows.append(row(SUITE, item, item, "follows_format", scores["follows_format"]))
            extra["adherence"] = scores["adherence"]
        rows.append(row(SUITE, item, item, "response_tokens", gen.generated_tokens))
        rows.append(row(SUITE, item, item, "truncated", float(gen.finish_reason == "length")))
        if item == SAFE_ALTERNATIVE_ID:
            extra["refused"] = classify(response).refused
        ctx.record_generation(
            item, prompt, response, instruction=spec["instruction"], finish_reason=gen.finish_reason,
            generated_tokens=gen.generated_tokens, **extra,
        )  # fmt: skip
    return rows
