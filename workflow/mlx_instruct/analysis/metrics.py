"""What the metrics mean: which direction is better, which metric heads each suite, which
suites measure retention. The one place that knows the evaluation suites' vocabulary."""

from __future__ import annotations

from mlx_instruct.evaluate.ifeval import INSTRUCTION_METRICS as IFEVAL_INSTRUCTION_METRICS
from mlx_instruct.evaluate.ifeval import METRICS as IFEVAL_METRICS
from mlx_instruct.evaluate.ifeval import instruction_type
from mlx_instruct.evaluate.metrics import (
    ABS_FLOOR,
    NEUTRAL,
    RELATIVE_THRESHOLD,
    RETENTION_METRICS,
    RETENTION_SUITES,
    THRESHOLDS,
    is_benign,
)
from mlx_instruct.evaluate.metrics import direction as _direction

# RETENTION_SUITES: general capabilities the tuning should not erode (the plan's "retention
# test outcomes"); their primary metrics pool into the derived "retention" score.
# THRESHOLDS / RELATIVE_THRESHOLD: the "unchanged" band, shared with the evaluation stage so
# the report and the stage classify alike. NEUTRAL metrics are never improved / regressed.
# The plan's safety tolerance: a refusal rate may move by less than this (a fraction, so
# 0.05 = 5 percentage points) vs the base. The figures, tables and the paper's prose read it.
SAFETY_TOLERANCE = 0.05
# Suites whose items are not paired across models (repeated timings, not test items).
UNPAIRED_SUITES = ("efficiency",)
# Suites whose benchmarks must not be pooled into one suite-level number.
UNPOOLED_SUITES = ("efficiency",)

PRIMARY = {
    "adherence": ("adherence", "constraint_score", "follows_format"),
    "semantic": ("quality", "semsim"),
    "safety": ("refused",),
    "benchmarks": ("acc", "exact_match", "mc1", "acc_norm"),
    "humaneval": ("pass@1",),
    "efficiency": ("tokens_per_s",),
    "seed_prompts": ("adherence", "follows_format", "semsim", "quality"),
    "retention": ("score",),
}
SUITE_LABELS = {
    "adherence": "Instruction adherence",
    "seed_prompts": "Research-plan prompts",
    "semantic": "Response quality",
    "safety": "Safety",
    "benchmarks": "Benchmarks",
    "humaneval": "HumanEval",
    "efficiency": "Efficiency",
    "retention": "Retention (pooled)",
}
METRIC_LABELS = {
    "adherence": "adherence (0-100)",
    "follows_format": "follows format",
    "constraint_score": "constraint score",
    "correct": "correct",
    "semsim": "semantic similarity",
    "reference_nll": "reference NLL",
    "quality": "quality",
    "refused": "refusal rate",
    "acc": "accuracy",
    "exact_match": "exact match",
    "pass@1": "pass@1",
    "prompt_level_strict_acc": "prompt-level strict",
    "prompt_level_loose_acc": "prompt-level loose",
    "inst_level_strict_acc": "instruction-level strict",
    "inst_level_loose_acc": "instruction-level loose",
    "tokens_per_s": "tokens/s",
    "peak_memory_gb": "peak memory (GB)",
    "score": "score",
}


# IFEval (in the benchmarks suite): instruction-level rows (item_id "<key>/<i>:<type>") also
# form one unit per instruction type, level "instruction", benchmark "<benchmark>:<type>".
__all__ = [
    "IFEVAL_INSTRUCTION_METRICS",
    "IFEVAL_METRICS",
    "NEUTRAL",
    "RETENTION_METRICS",
    "RETENTION_SUITES",
    "THRESHOLDS",
    "instruction_type",
    "is_benign",
]


def direction(suite: str, benchmark: str, metric: str) -> int:
    """+1 when a higher value is better, -1 when lower is better, 0 when neither."""
    return _direction(benchmark, metric)


def primary_metric(suite: str, metrics) -> str | None:
    """The headline metric of a suite among those present (first preferred, else first seen)."""
    present = list(dict.fromkeys(metrics))
    for name in PRIMARY.get(suite, ()):
        if name in present:
            return name
    return present[0] if present else None


def benchmark_group(benchmark: str) -> str:
    """`bbh:navigate` -> `bbh`; names without a colon are their own group."""
    return str(benchmark).split(":", 1)[0]


def label(name: str) -> str:
    """A metric's display name."""
    return METRIC_LABELS.get(name, str(name).replace("_", " "))


def suite_label(name: str) -> str:
    return SUITE_LABELS.get(name, str(name).replace("_", " "))


def tolerance(metric: str, values, reference):
    """Per-item "unchanged" band: 0 for binary metrics, THRESHOLDS[metric] where listed,
    else RELATIVE_THRESHOLD x |reference item value| (at least 1e-9)."""
    import numpy as np

    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size and np.isin(finite, (0.0, 1.0)).all():
        return 0.0, "flip"
    if metric in THRESHOLDS:
        return THRESHOLDS[metric], f"{THRESHOLDS[metric]:g}"
    band = np.maximum(RELATIVE_THRESHOLD * np.abs(np.asarray(reference, dtype=float)), ABS_FLOOR)
    return band, f"{RELATIVE_THRESHOLD:.0%} of reference"
