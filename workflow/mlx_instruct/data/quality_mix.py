"""Section 9.2's metrics for every data source and for the mix, against the plan's targets,
and a composite quality score per example (the formula is in docs/data-quality.md).

Why per source: a mix can meet a target that one of its sources fails (or the reverse),
and the plan's targets are about what the model is trained on, so both are reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlx_instruct.data.quality import format_check, instruction_type, quality_report

MIX = "mix"
LENGTH_BAND = (50.0, 200.0)  # the plan's mean token length band
COMPONENTS = ("format", "length", "novelty", "balance", "safety")
SCORE_EDGES = tuple(round(0.1 * i, 1) for i in range(11))


@dataclass(frozen=True)
class Target:
    """One of the plan's section 9.2 targets: `value op bound`."""

    metric: str
    label: str
    op: str  # ">", "between" or "=="
    bound: float | tuple[float, float]

    def text(self) -> str:
        if self.op == "between":
            return f"{self.bound[0]:g}-{self.bound[1]:g}"
        if self.op == "==":
            return f"exactly {self.bound:g}"
        return f"{self.op} {self.bound:g}"

    def met(self, value: float | None) -> bool | None:
        if value is None or not np.isfinite(value):
            return None
        if self.op == "between":
            return bool(self.bound[0] <= value <= self.bound[1])
        if self.op == "==":
            return bool(value == self.bound)
        return bool(value > self.bound)


TARGETS = (
    Target("unique_trigram_ratio", "unique trigrams", ">", 0.70),
    Target("instruction_type_entropy_bits", "instruction-type entropy (bits)", ">", 2.5),
    Target("mean_tokens", "mean length (tokens)", "between", LENGTH_BAND),
    Target("format_validity_rate", "format-valid share", ">", 0.95),
    Target("contamination_rate", "contaminated share", "==", 0.0),
)


def group_metrics(
    records: Sequence[dict[str, Any]], lengths: Sequence[int], contaminated: set[str],
    template: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The five targeted metrics (and their context) for one group of records."""
    report = quality_report(records, None, template)
    n = len(records)
    return {
        "n": n,
        "unique_trigram_ratio": report.get("unique_trigram_ratio"),
        "instruction_type_entropy_bits": report.get("instruction_type_entropy_bits"),
        "instruction_type_basis": _basis(records),
        "instruction_types": len({instruction_type(r) for r in records}),
        "mean_tokens": round(float(np.mean(lengths)), 3) if n else None,
        "max_tokens": int(max(lengths)) if n else None,
        "format_validity_rate": report.get("format_validity_rate"),
        "contamination_rate": sum(r["id"] in contaminated for r in records) / n if n else None,
    }


def _basis(records: Sequence[dict[str, Any]]) -> str:
    """What an instruction type is here: the task family, the first word, or both."""
    families = {bool(r.get("family")) for r in records}
    return {frozenset({True}): "family", frozenset({False}): "first word"}.get(
        frozenset(families), "family + first word"
    )


def by_source(
    records: Sequence[dict[str, Any]], lengths: Sequence[int], contaminated: set[str],
    template: str | None = None,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """group_metrics for each source (in first-seen order) and for the mix, with targets."""
    groups: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        groups.setdefault(record["source"], []).append(index)
    groups[MIX] = list(range(len(records)))
    out = {}
    for name, indices in groups.items():
        rows = [records[i] for i in indices]
        metrics = group_metrics(rows, [lengths[i] for i in indices], contaminated, template)
        metrics["targets"] = {t.metric: t.met(metrics[t.metric]) for t in TARGETS}
        out[name] = metrics
    return out


def target_rows(groups: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Tidy rows (group, metric, value, target, met) for the metric-vs-target table."""
    return [
        {
            "group": name,
            "metric": t.metric,
            "label": t.label,
            "value": metrics.get(t.metric),
            "target": t.text(),
            "met": metrics["targets"].get(t.metric),
        }
        for name, metrics in groups.items()
        for t in TARGETS
    ]


def length_score(tokens: float) -> float:
    """1 inside the plan's band; below it tokens/50, above it 200/tokens (so in (0, 1])."""
    low, high = LENGTH_BAND
    if tokens <= 0:
        return 0.0
    return 1.0 if low <= tokens <= high else (tokens / low if tokens < low else high / tokens)


def _trigrams(text: str) -> set[tuple[str, ...]]:
    from mlx_instruct.data.quality import _WORD

    words = _WORD.findall(text.casefold())
    return set(zip(words, words[1:], words[2:], strict=False))


def novelty_scores(texts: Sequence[str]) -> np.ndarray:
    """Per text: the share of its distinct word trigrams found in no other text (1.0 for a
    text too short to have one); the per-example face of the unique-trigram ratio."""
    grams = [_trigrams(t) for t in texts]
    frequency = Counter(g for found in grams for g in found)
    return np.array(
        [sum(frequency[g] == 1 for g in found) / len(found) if found else 1.0 for found in grams]
    )


def balance_scores(types: Sequence[str]) -> np.ndarray:
    """Per example: min(1, uniform share / its type's share); below 1 for types that are
    over-represented (the per-example face of the entropy target)."""
    counts = Counter(types)
    n, k = len(types), len(counts)
    return np.array([min(1.0, (n / k) / counts[t]) for t in types]) if n else np.zeros(0)


def example_scores(
    records: Sequence[dict[str, Any]], lengths: Sequence[int], toxicity: Sequence[float],
    contaminated: set[str], template: str | None = None,
) -> pd.DataFrame:  # fmt: skip
    """One row per example: the five components in [0, 1] and their mean, `composite`."""
    texts = [f"{r['instruction']}\n{r.get('input') or ''}\n{r['output']}" for r in records]
    frame = pd.DataFrame(
        {
            "id": [r["id"] for r in records],
            "source": [r["source"] for r in records],
            "tokens": np.asarray(lengths, dtype=int),
            "format": [0.0 if format_check(r, template) else 1.0 for r in records],
            "length": [length_score(n) for n in lengths],
            "novelty": novelty_scores(texts),
            "balance": balance_scores([instruction_type(r) for r in records]),
            "toxicity": np.asarray(toxicity, dtype=float),
            "contaminated": [r["id"] in contaminated for r in records],
        }
    )
    frame["safety"] = (1.0 - frame["toxicity"]) * (~frame["contaminated"])
    frame["composite"] = frame[list(COMPONENTS)].mean(axis=1)
    return frame


def score_summary(scores: pd.DataFrame) -> dict[str, Any]:
    """Per source and for the mix: n, mean, quantiles and a 0.1-wide histogram of the
    composite score, and each component's mean."""
    groups = {name: g for name, g in scores.groupby("source", sort=False)}
    groups[MIX] = scores
    out = {}
    for name, group in groups.items():
        values = group["composite"].to_numpy()
        counts, _ = np.histogram(values, bins=SCORE_EDGES)
        out[name] = {
            "n": len(values),
            "mean": round(float(values.mean()), 4),
            **{f"p{q}": round(float(np.percentile(values, q)), 4) for q in (5, 25, 50, 75, 95)},
            "components": {c: round(float(group[c].mean()), 4) for c in COMPONENTS},
            "histogram": {"edges": list(SCORE_EDGES), "counts": [int(c) for c in counts]},
        }
    return out
