"""Facts for the report's "What this study can detect" and "Seed vs item variance" sections:
the power table (power.py) and the variance decomposition (variance.py), computed from the
results table when the report renders (both take seconds), plus the display tables and the
findings the prose states. Sentences live in paper/sections/_power.qmd.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from mlx_instruct.analysis import power
from mlx_instruct.analysis.report import Study, ci, num

LABELS = {"adherence": "adherence", "ifeval": "IFEval (prompt, strict)", "retention": "retention"}


@dataclass(frozen=True)
class Detectable:
    power: pd.DataFrame  # power.COLUMNS, one row per headline contrast
    variance: pd.DataFrame  # variance.decompose rows, one per multi-seed arm x outcome
    baseline: str


@cache
def _compute(study: Study) -> Detectable:
    results = study.results
    if results.empty:
        return Detectable(pd.DataFrame(columns=power.COLUMNS), pd.DataFrame(), study.baseline)
    boot = study.boot
    return Detectable(
        power.power_table(results, study.config, study.meta),
        power.variance_table(results, study.meta, boot.resamples, boot.confidence, boot.seed),
        study.baseline,
    )


def of(study: Study) -> Detectable:
    """The study's power table and variance decomposition (computed once per Study)."""
    return _compute(study)


def _count(value: float) -> str:
    return f"{value:,.0f}" if np.isfinite(value) else ("n/a" if np.isnan(value) else "more seeds")


def _seed_aware(frame: pd.DataFrame, column: str) -> pd.Series:
    """The seed-aware column where the seed variance is known, else the items-only one."""
    seeded = frame[f"{column}_seeds"].astype(float)
    return seeded.where(seeded.notna(), frame[column].astype(float))


def power_display(found: Detectable) -> pd.DataFrame:
    """The report's MDE table: one row per headline contrast, effects in points."""
    frame = found.power
    if frame.empty:
        return pd.DataFrame()
    return pd.DataFrame(
        {
            "outcome": frame["outcome"].map(LABELS),
            "contrast": frame["b"] + " \u2212 " + frame["a"],
            "items": frame["n_items"],
            "sd of diff": frame["sd_diff"].round(1),
            "observed": [num(v, 1, True) for v in frame["diff"]],
            "MDE": frame["mde"].round(1),
            "MDE with seeds": frame["mde_seeds"].round(1),
            "items for observed": [_count(v) for v in _seed_aware(frame, "n_for_diff")],
            "items for reference": [_count(v) for v in _seed_aware(frame, "n_for_reference")],
            "reference": frame["reference_effect"].round(1),
        }
    )


def variance_display(found: Detectable) -> pd.DataFrame:
    """The report's seed vs item table, one row per multi-seed arm and outcome."""
    frame = found.variance
    if frame.empty:
        return pd.DataFrame()
    return pd.DataFrame(
        {
            "outcome": frame["outcome"].map(LABELS),
            "experiment": frame["experiment"],
            "seeds": frame["n_seeds"],
            "items": frame["n_items"],
            "change vs base": [num(v, 1, True) for v in frame["diff"]],
            "seed var / k": frame["seed_var_of_mean"].round(2),
            "item var / n": frame["item_var_of_mean"].round(2),
            "seed share": frame["seed_share"].round(2),
            "CI, items only": [
                ci(lo, hi, 1, True)
                for lo, hi in zip(frame["item_ci_low"], frame["item_ci_high"], strict=True)
            ],
            "CI, seeds + items": [
                ci(lo, hi, 1, True)
                for lo, hi in zip(frame["ci_low"], frame["ci_high"], strict=True)
            ],
            "seed variance": frame["verdict"],
        }
    )


@dataclass(frozen=True)
class Range:
    """MDEs of one outcome's contrasts vs the base, in points, at its item count."""

    outcome: str
    low: float
    high: float
    items: int
    reference: float  # the reference effect, points
    items_for_reference: float  # the most items any arm needs for it (seed-aware)


def mde_vs_base(found: Detectable, outcome: str) -> Range | None:
    rows = found.power[(found.power["outcome"] == outcome) & (found.power["a"] == found.baseline)]
    rows = rows[np.isfinite(rows["mde"].astype(float))]
    if rows.empty:
        return None
    mdes = rows["mde_seeds"].where(rows["mde_seeds"].notna(), rows["mde"]).astype(float)
    needed = _seed_aware(rows, "n_for_reference")
    return Range(
        outcome,
        float(mdes.min()),
        float(mdes.max()),
        int(rows["n_items"].max()),
        float(rows["reference_effect"].iloc[0]),
        float(needed.astype(float).max()),
    )


def below_mde(found: Detectable) -> list[str]:
    """`B − A (outcome)` for contrasts whose observed effect is below their seed-aware MDE:
    a null result there says little, since the study could not have seen it."""
    out = []
    for row in found.power.itertuples():
        bound = row.mde_seeds if np.isfinite(row.mde_seeds) else row.mde
        if np.isfinite(bound) and np.isfinite(row.diff) and abs(row.diff) < bound:
            out.append(f"{row.b} \u2212 {row.a} ({LABELS[row.outcome]})")
    return out


def degenerate(found: Detectable) -> list[str]:
    """`B − A (outcome)` for contrasts whose paired differences are all equal (sd 0): no
    item-level variation, so power and MDE are undefined there."""
    rows = found.power[found.power["sd_diff"] == 0]
    return [f"{r.b} \u2212 {r.a} ({LABELS[r.outcome]})" for r in rows.itertuples()]


@dataclass(frozen=True)
class SeedFinding:
    """One multi-seed arm on one outcome: how much of its contrast's variance is seed luck."""

    experiment: str
    outcome: str
    seeds: int
    share: float  # seed / (seed + item) variance of the contrast
    verdict: str  # small / comparable / dominant / unknown
    item_excludes_zero: bool  # the items-only interval excludes 0
    seed_excludes_zero: bool  # the seeds + items interval excludes 0

    @property
    def flips(self) -> bool:
        """Counting seed variance turns a 'real' difference into one that is not."""
        return self.item_excludes_zero and not self.seed_excludes_zero


def seed_findings(found: Detectable) -> list[SeedFinding]:
    out = []
    for row in found.variance.itertuples():
        out.append(
            SeedFinding(
                row.experiment,
                LABELS[row.outcome],
                int(row.n_seeds),
                float(row.seed_share),
                row.verdict,
                bool(row.item_ci_low > 0 or row.item_ci_high < 0),
                bool(row.ci_low > 0 or row.ci_high < 0),
            )
        )
    return out
