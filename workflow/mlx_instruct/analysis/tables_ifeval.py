"""IFEval's tables: the four official metrics per experiment, and accuracy per instruction
type. Both read summary.csv (BCa intervals, paired on the prompt or instruction vs the base),
so every number carries the interval the rest of the report uses."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlx_instruct.analysis import metrics
from mlx_instruct.analysis.report import num
from mlx_instruct.evaluate.ifeval import OFFICIAL_MAX_GEN_TOKS as OFFICIAL_MAX_TOKENS

BENCHMARK = "ifeval"


def ifeval_table(summary: pd.DataFrame, order=None) -> pd.DataFrame:
    """Per official metric and experiment: mean [CI], change vs base [paired CI] (* = CI
    excludes 0), items improved / unchanged / regressed."""
    from mlx_instruct.analysis.tables import estimates_table

    parts = []
    for metric in metrics.IFEVAL_METRICS:
        frame = estimates_table(summary, "benchmarks", metric, BENCHMARK, order=order)
        if not frame.empty:
            frame.insert(0, "metric", [metrics.label(metric)] + [""] * (len(frame) - 1))
            parts.append(frame)
    return pd.concat(parts, ignore_index=True).fillna("") if parts else pd.DataFrame()


def ifeval_types_table(
    summary: pd.DataFrame, order=None, baseline: str | None = None
) -> pd.DataFrame:
    """Instruction-level strict accuracy per instruction type (rows) and experiment
    (columns): the base's rate, each tuned model's rate and (change vs base, * = paired CI
    excludes 0); n = instructions of that type."""
    if summary is None or summary.empty:
        return pd.DataFrame()
    rows = summary[
        (summary["suite"] == "benchmarks")
        & (summary["kind"] == "estimate")
        & (summary["level"] == "instruction")
        & (summary["metric"] == "inst_level_strict_acc")
        & summary["benchmark"].astype(str).str.startswith(f"{BENCHMARK}:")
    ]
    if rows.empty:
        return pd.DataFrame()
    names = [e for e in (order or rows["experiment"].unique()) if e in set(rows["experiment"])]
    out = []
    for benchmark, group in rows.groupby("benchmark", sort=True):
        entry = {"instruction": benchmark.split(":", 1)[1]}
        entry["n"] = int(group["n_items"].max())
        for row in group.set_index("experiment").reindex(names).itertuples():
            text = num(row.mean, 2) if np.isfinite(row.mean) else ""
            if row.Index != baseline and np.isfinite(row.diff):
                mark = "*" if str(row.significant) == "True" else ""
                text += f" ({num(row.diff, 2, True)}{mark})"
            entry[row.Index] = text
        out.append(entry)
    return pd.DataFrame(out)


def ifeval_setup(results: pd.DataFrame, config: dict) -> dict:
    """What the study ran: prompts, instructions and types per model, the generation cap."""
    spec = (config.get("evaluation", {}).get("suites", {}).get("benchmarks") or {}).get(
        BENCHMARK
    ) or {}
    rows = results[(results["suite"] == "benchmarks") & (results["benchmark"] == BENCHMARK)]
    first = rows[rows["experiment"] == rows["experiment"].iloc[0]] if len(rows) else rows
    inst = first[first["metric"] == "inst_level_strict_acc"]["item_id"].drop_duplicates()
    prompts = first.loc[first["metric"] == "prompt_level_strict_acc", "item_id"].nunique()
    return {
        "ran": bool(len(rows)),
        "prompts": int(prompts),
        "instructions": int(len(inst)),
        "types": int(inst.map(metrics.instruction_type).nunique()),
        "max_tokens": int(spec.get("max_tokens") or OFFICIAL_MAX_TOKENS),
        "official_max_tokens": OFFICIAL_MAX_TOKENS,
        "source": spec.get("source") or "local",
    }
