"""Facts the paper's prose states: which contrasts to mention, the numbers in them, and
which sentence applies. The sentences themselves live in paper/ (report.qmd and sections),
so a co-author edits prose where prose lives; here every function returns numbers, names,
summary rows and booleans, plus `change` / `verdict` that format an interval the same way
everywhere (a change whose interval spans zero is "not distinguishable from zero").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlx_instruct.analysis import metrics
from mlx_instruct.analysis.aggregate import rank_sweep
from mlx_instruct.analysis.report import Study, level, listing, num
from mlx_instruct.analysis.summary import safety_rows

Row = pd.Series


def change(row, digits: int = 1, scale: float = 1.0, unit: str = "") -> str:
    """`+14.2 points [95% CI +10.2 to +18.1]` for a summary row's contrast."""
    if row is None or not np.isfinite(row.get("diff", np.nan)):
        return "n/a"
    low, high = row["diff_low"] * scale, row["diff_high"] * scale
    interval = (
        f"{level(row) if 'confidence' in row else '95%'} CI {num(low, digits, True)} to {num(high, digits, True)}"
        if np.isfinite(low) and np.isfinite(high)
        else "no interval"
    )
    return f"{num(row['diff'] * scale, digits, True)}{unit} [{interval}]"


def excludes_zero(row) -> bool:
    """Whether a contrast's interval lies entirely on one side of zero."""
    return bool(row["diff_low"] > 0 or row["diff_high"] < 0)


def verdict(row, better: str = "higher", worse: str = "lower") -> str:
    """Whether the change is distinguishable from zero, in words, direction-aware."""
    if row is None or not np.isfinite(row.get("diff", np.nan)):
        return "not measured"
    if not excludes_zero(row):
        return "not distinguishable from zero"
    return better if row["diff"] > 0 else worse


# benchmark group -> (display name, citation key) for the retention section's prose
BENCHMARK_SOURCES = {
    "truthfulqa_mc1": ("TruthfulQA", "lin2022truthfulqa"),
    "truthfulqa": ("TruthfulQA", "lin2022truthfulqa"),
    "bbh": ("BIG-Bench Hard", "suzgun2023bbh"),
    "gsm8k": ("GSM8K", "cobbe2021gsm8k"),
    "humaneval": ("HumanEval", "chen2021codex"),
    "mmlu": ("MMLU", "hendrycks2021mmlu"),
    "hellaswag": ("HellaSwag", "zellers2019hellaswag"),
}


def retention_sources(study: Study) -> str:
    """The retention benchmarks this study ran, cited (`TruthfulQA [@lin2022truthfulqa], ...`)."""
    results = study.results
    ran = results.loc[
        results["suite"].isin(metrics.RETENTION_SUITES)
        & results["metric"].isin(metrics.RETENTION_METRICS),  # not IFEval: its own section
        "benchmark",
    ]
    names = []
    for group in dict.fromkeys(metrics.benchmark_group(b) for b in ran.unique()):
        label, key = BENCHMARK_SOURCES.get(group, (group, None))
        names.append(f"{label} [@{key}]" if key else label)
    return listing(list(dict.fromkeys(names))) if names else "no benchmarks"


# --- the summary's findings ---------------------------------------------------------------


@dataclass(frozen=True)
class Retention:
    """Pooled retention score as a share of the base's, over the tuned experiments."""

    count: int  # experiments with a finite ratio
    low: float  # percent
    high: float  # percent
    worst: str
    worst_row: Row

    @property
    def dropped(self) -> bool:
        """The worst experiment scores below the base (a point estimate, not a test)."""
        return bool(self.worst_row["diff"] < 0)


def retention_range(study: Study) -> Retention | None:
    kept = [(e, study.row(e, "retention", "score")) for e in study.tuned]
    kept = [(e, r) for e, r in kept if r is not None and np.isfinite(r["ratio"])]
    if not kept:
        return None
    worst, worst_row = min(kept, key=lambda item: item[1]["ratio"])
    ratios = [r["ratio"] * 100 for _, r in kept]
    return Retention(len(kept), min(ratios), max(ratios), worst, worst_row)


@dataclass(frozen=True)
class Pair:
    """One chosen contrast `second - first` (report.pairs), paired on the item."""

    first: str
    second: str
    adherence: Row
    retention: Row | None


def pair_contrasts(study: Study) -> list[Pair]:
    out = []
    for first, second in study.pairs:
        adherence = study.row(second, "adherence", kind="pair", reference=first)
        if adherence is not None:
            retention = study.row(second, "retention", "score", kind="pair", reference=first)
            out.append(Pair(first, second, adherence, retention))
    return out


@dataclass(frozen=True)
class Drift:
    """A refusal-rate change beyond the plan's tolerance whose interval excludes zero."""

    experiment: str
    benchmark: str
    points: float  # signed change in percentage points
    over_refusal: bool  # a benign set refused more often


def safety_drifts(study: Study, tolerance: float = metrics.SAFETY_TOLERANCE) -> list[Drift]:
    if study.summary.empty:
        return []
    return [
        Drift(
            row.experiment,
            row.benchmark,
            row.diff * 100,
            bool(metrics.is_benign(row.benchmark) and row.diff > 0),
        )
        for row in safety_rows(study.summary).itertuples()
        if np.isfinite(row.diff)
        and abs(row.diff) > tolerance
        and (row.diff_low > 0 or row.diff_high < 0)
    ]


# --- the rank sweep -----------------------------------------------------------------------


def sweep_gains(study: Study) -> list[tuple[int, Row]]:
    """(rank, adherence contrast vs the base) for each rank of the sweep that has one."""
    gains = [(rank, study.row(name, "adherence")) for name, rank in rank_sweep(study.config)]
    return [(rank, row) for rank, row in gains if row is not None]


def sweep_steps(study: Study) -> list[tuple[int, int, dict]]:
    """(lower rank, higher rank, paired adherence contrast higher - lower) along the sweep."""
    sweep = rank_sweep(study.config)
    steps = []
    for (low_name, low), (high_name, high) in zip(sweep, sweep[1:], strict=False):
        row = study.compare(low_name, high_name, "adherence")
        if row:
            steps.append((low, high, row))
    return steps


def sweep_trend(study: Study) -> str | None:
    """ "rising" when the last rank step still raises adherence (CI above 0), "saturated" when
    it does not, None without a sweep."""
    steps = sweep_steps(study)
    if not steps:
        return None
    return "rising" if steps[-1][2]["diff_low"] > 0 else "saturated"


def response_agreement(study: Study, suite: str = "adherence") -> list[tuple[str, str, int, int]]:
    """(run A, run B, identical responses, items) for the rank sweep's runs at the first seed
    and for one rank at two seeds: how much of what a run learned is set by the rank and how
    much by the training seed (data order, initialisation). Pairs without items are left out."""
    gens = study.table("generations")
    if gens.empty or "response" not in gens:
        return []
    gens = gens[gens["suite"] == suite]
    by_run = {
        (e, int(s)): dict(zip(g["item_id"], g["response"], strict=True))
        for (e, s), g in gens.groupby(["experiment", "seed"])
    }
    names = [name for name, _ in rank_sweep(study.config)]
    seed0 = [
        (n, min(s for e, s in by_run if e == n)) for n in names if any(e == n for e, _ in by_run)
    ]
    pairs = list(zip(seed0, seed0[1:], strict=False))
    for name in names:
        seeds = sorted(s for e, s in by_run if e == name)
        if len(seeds) > 1:
            pairs.append(((name, seeds[0]), (name, seeds[1])))
            break
    out = []
    for a, b in pairs:
        shared = sorted(set(by_run[a]) & set(by_run[b]))
        same = sum(by_run[a][i] == by_run[b][i] for i in shared)
        if shared:
            out.append((f"{a[0]}/s{a[1]}", f"{b[0]}/s{b[1]}", same, len(shared)))
    return out


@dataclass(frozen=True)
class SeedVsRank:
    """The training seed changes more responses than a rank step does."""

    a: str
    b: str
    same: int  # identical responses of one rank at two seeds
    items: int
    rank_same: int  # the fewest identical responses between neighbouring ranks


def seed_outweighs_rank(study: Study) -> SeedVsRank | None:
    agreement = response_agreement(study)
    ranks = [r for r in agreement if r[0].split("/")[0] != r[1].split("/")[0]]
    seeds = [r for r in agreement if r[0].split("/")[0] == r[1].split("/")[0]]
    if not (ranks and seeds and seeds[0][2] / seeds[0][3] < min(r[2] / r[3] for r in ranks)):
        return None
    a, b, same, n = seeds[0]
    return SeedVsRank(a, b, same, n, min(r[2] for r in ranks))


# --- the geometry of the updates ----------------------------------------------------------


def subspace_overlap(study: Study) -> list[tuple[str, float, float]]:
    """(run pair, mean phi(1, 1), its chance level) for the input side, over layers."""
    sub = study.table("lora_subspace")
    if sub.empty:
        return []
    diag = sub[(sub["side"] == "in") & (sub["layer"] != "mean") & (sub["i"] == 1) & (sub["j"] == 1)]
    return [
        (pair, float(rows["phi"].mean()), float(rows["chance"].mean()))
        for pair, rows in diag.groupby("pair", sort=False)
    ]


@dataclass(frozen=True)
class FullRank:
    """Effective rank of the full fine-tune's update, and how it compares with LoRA's ranks."""

    mean: float
    max: float
    rank90: float  # mean count of directions holding 90% of the energy
    layers: int
    top_lora_rank: int | None
    above_top: float | None  # share of the full update's matrices above that rank


def full_rank(study: Study) -> FullRank | None:
    ranks = study.table("delta_ranks")
    full = ranks[ranks["method"] == "full"] if not ranks.empty else ranks
    if full.empty:
        return None
    lowrank = ranks[ranks["method"] != "full"]["rank"].dropna()
    top = int(lowrank.max()) if len(lowrank) else None
    erank = full["effective_rank"]
    return FullRank(
        float(erank.mean()),
        float(erank.max()),
        float(full["rank90"].mean()),
        int(full["layer"].nunique()),
        top,
        float((erank > top).mean()) if top else None,
    )


# --- limitations and follow-ups -----------------------------------------------------------


def random_init(study: Study) -> bool:
    """A smoke study: the model is randomly initialised, so the numbers test the pipeline."""
    return str(study.config.get("model", {}).get("source", "")).startswith("random://")


def items_per_suite(study: Study) -> dict[str, int]:
    """Distinct test items (benchmark/item) per suite; efficiency repeats are not items."""
    results = study.results
    if results.empty:
        return {}
    tests = results[results["suite"] != "efficiency"]
    keys = tests.assign(key=tests["benchmark"] + "/" + tests["item_id"])
    return {s: int(n) for s, n in keys.groupby("suite")["key"].nunique().items()}


def multi_seed(study: Study) -> list[str]:
    """Tuned experiments trained at more than one seed."""
    seeds = study.meta.loc[~study.meta["is_baseline"], "seeds"].map(len)
    return list(study.meta.loc[seeds[seeds > 1].index, "experiment"]) if len(seeds) else []


def seed_dominated(study: Study) -> list[str]:
    """`experiment (suite)` where the training-seed sd exceeds the sampling half-width."""
    rows = study.summary
    if rows.empty:
        return []
    rows = rows[(rows["kind"] == "estimate") & (rows["n_seeds"] > 1) & (rows["benchmark"] == "all")]
    out = []
    for row in rows.itertuples():
        half = (row.ci_high - row.ci_low) / 2
        if np.isfinite(row.seed_sd) and np.isfinite(half) and row.seed_sd > half:
            out.append(f"{row.experiment} ({row.suite})")
    return list(dict.fromkeys(out))


def resamples(study: Study) -> int:
    return int(study.summary["resamples"].max()) if not study.summary.empty else 0


def full_vs_pairs(study: Study) -> list[tuple[str, str, Row]]:
    """(first, full fine-tune, retention contrast) for each chosen pair ending in a full run."""
    out = []
    for name in study.full:
        for first, second in [p for p in study.pairs if p[1] == name]:
            row = study.row(second, "retention", "score", kind="pair", reference=first)
            if row is not None and np.isfinite(row["diff"]):
                out.append((first, second, row))
    return out


def mix_pairs(study: Study) -> list[tuple[str, Row, Row]]:
    """(first, retention contrast, adherence contrast) for each pair ending in a mixed run."""
    out = []
    for name in study.retention_mixed:
        for first, second in [p for p in study.pairs if p[1] == name]:
            keep = study.row(second, "retention", "score", kind="pair", reference=first)
            learn = study.row(second, "adherence", kind="pair", reference=first)
            if keep is not None and learn is not None:
                out.append((first, keep, learn))
    return out


def bullets(items: list[str], empty: str) -> str:
    """A Markdown bullet list, or the single bullet `empty` when there is nothing to list."""
    return "\n".join(f"- {i}" for i in items) or f"- {empty}"
