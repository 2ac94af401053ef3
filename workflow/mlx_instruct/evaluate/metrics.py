"""The evaluation stage's metric vocabulary, which the analysis stage reads.

Why here: the suites name their metrics; what those names mean (which way is better, which
are descriptive, which suites measure retention, how wide "unchanged" is) belongs beside
them, so the analysis (`mlx_instruct.analysis.metrics`, the one consumer) and the suites
agree. The seed's named numbers (adherence, retention, safety drift, improved / unchanged /
regressed counts) are computed once, by the analysis stage's summary, against the study's
own baseline experiment (never a hard-coded name). No I/O, no MLX.
"""

from __future__ import annotations

import re

# The tidy results table (docs/contracts.md).
COLUMNS = (
    "study",
    "experiment",
    "method",
    "rank",
    "seed",
    "suite",
    "benchmark",
    "item_id",
    "metric",
    "value",
)
RETENTION_SUITES = ("benchmarks", "humaneval")
RETENTION_METRICS = ("acc", "exact_match", "mc1", "acc_norm", "pass@1")
# "unchanged" band for continuous metrics, in the metric's own units.
THRESHOLDS = {
    "adherence": 10.0,  # points of the 0-100 score: one of two format/constraint halves ~ 50
    "constraint_score": 0.1,
    "quality": 5.0,
    "semsim": 0.05,  # MiniLM cosine: paraphrases differ by ~0.05-0.1
    "reference_nll": 0.1,  # nats per token
}
RELATIVE_THRESHOLD = 0.05
ABS_FLOOR = 1e-9
# Metrics with no better direction (descriptive): never classified improved/regressed.
NEUTRAL = (
    "response_tokens",
    "generated_tokens",
    "parameters",
    "adapter_parameters",
    "length_tokens",
)
_LOWER = re.compile(
    r"(^|_)(nll|loss|ppl|perplexity|latency|memory|truncated|size|error)($|_)|_s$|_gb$"
)


def is_benign(benchmark: str) -> bool:
    """Safety sets whose prompts should be answered (refusing is over-refusal)."""
    name = str(benchmark).lower()
    return "benign" in name or name.endswith("_safe") or name == "safe"


def direction(benchmark: str, metric: str) -> int:
    """+1 when a higher value is better, -1 when lower is better, 0 when neither (NEUTRAL)."""
    if metric in NEUTRAL:
        return 0
    if metric == "refused":
        return -1 if is_benign(benchmark) else 1
    if metric.endswith("per_s"):
        return 1
    return -1 if _LOWER.search(metric) else 1
