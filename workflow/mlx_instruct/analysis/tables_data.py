"""Tables of the data-quality framework (seed section 9.2) from data/quality.json: each
metric against the plan's target per source and for the mix, the toxicity screen's
counts, and the composite quality score's distribution. Empty frames when the study has
no quality.json, so the report's section is skipped cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

PERCENT = {"unique_trigram_ratio", "format_validity_rate", "contamination_rate"}


def load_quality(study_dir: str | Path) -> dict:
    """data/quality.json of a results folder ({} when the data_quality rule has not run)."""
    path = Path(study_dir) / "data" / "quality.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _value(metric: str, value) -> str:
    if value is None:
        return "n/a"
    if metric in PERCENT:
        return f"{value * 100:.1f}%"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _target(target: dict) -> str:
    """The target in the table's units (percent for shares), from its op and bound."""
    op, bound = target.get("op"), target.get("bound")
    if op is None or target["metric"] not in PERCENT:
        return target["target"]
    # "exactly", not "=": a cell starting with "=" is a heading in Typst markup (the PDF)
    return f"{'exactly' if op == '==' else op} {bound * 100:g}%"


def targets_table(quality: dict) -> pd.DataFrame:
    """One row per metric: the plan's target, then each source and the mix as
    `value (met|missed)`."""
    groups = quality.get("groups") or {}
    if not groups:
        return pd.DataFrame()
    rows = []
    for target in quality["targets"]:
        metric = target["metric"]
        row = {"metric": target["label"], "target": _target(target)}
        for name, report in groups.items():
            met = report["targets"].get(metric)
            verdict = "" if met is None else (" (met)" if met else " (missed)")
            row[f"{name} (n={report['n']})"] = _value(metric, report.get(metric)) + verdict
        rows.append(row)
    return pd.DataFrame(rows)


def toxicity_table(quality: dict) -> pd.DataFrame:
    """Per source: records screened and flagged by the prepare stage, and flagged
    examples left in the training split."""
    toxicity = quality.get("toxicity") or {}
    by_source = toxicity.get("by_source") or {}
    left = toxicity.get("train_flagged_by_source") or {}
    sources = list(dict.fromkeys([*by_source, *left]))
    if not sources:
        return pd.DataFrame()
    dropping = toxicity.get("mode") == "drop"
    rows = [
        {
            "source": source,
            "screened": by_source.get(source, {}).get("screened", "n/a"),
            "flagged": by_source.get(source, {}).get("flagged", "n/a"),
            "dropped": by_source.get(source, {}).get("flagged", 0) if dropping else 0,
            "flagged in train split": left.get(source, 0),
        }
        for source in sources
    ]
    return pd.DataFrame(rows)


def composite_table(quality: dict) -> pd.DataFrame:
    """Per source and the mix: n, mean and quantiles of the composite score, and the mean
    of each of its components."""
    composite = quality.get("composite") or {}
    rows = []
    for name, summary in composite.items():
        row = {"group": name, "n": summary["n"], "mean": f"{summary['mean']:.3f}"}
        row.update({q: f"{summary[q]:.3f}" for q in ("p5", "p25", "p50", "p75", "p95")})
        row.update({c: f"{v:.3f}" for c, v in summary["components"].items()})
        rows.append(row)
    return pd.DataFrame(rows)
