"""The summary table: estimates and paired contrasts with BCa intervals, per unit of analysis.

Each experiment's items are first averaged over its training seeds (the paired test compares
like items), and the spread of the per-seed means is reported beside the interval, so
training-seed variance is shown beside sampling variance. Units: each benchmark, each
benchmark group (`bbh:*`), each whole suite (when its benchmarks agree on direction), and the
derived pooled retention score.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from mlx_instruct.analysis import metrics
from mlx_instruct.analysis.stats import (
    Bootstrap,
    classify,
    cluster_mean_ci,
    cluster_paired_diff_ci,
    mean_ci,
    paired_diff_ci,
    unpaired_diff_ci,
)

DEFAULT_BOOT = Bootstrap()

SUMMARY_COLUMNS = [
    "kind", "study", "experiment", "reference", "suite", "level", "benchmark", "metric", "direction",
    "n_items", "n_seeds", "mean", "ci_low", "ci_high", "ci_method", "ref_mean", "diff", "diff_low",
    "diff_high", "diff_ci_method", "n_paired", "ratio", "significant", "improved", "unchanged",
    "regressed", "tolerance", "seed_means", "seed_sd", "seed_min", "seed_max", "confidence", "resamples",
]  # fmt: skip


def units(results: pd.DataFrame) -> list[tuple[str, str, str, str, pd.DataFrame]]:
    """(suite, level, benchmark, metric, rows) views the summary estimates, rows keyed by `key`.

    Levels: each benchmark; each benchmark group (`bbh:*` -> `bbh`); each IFEval instruction
    type (`ifeval:<type>`, level "instruction"); the whole suite (when its benchmarks agree on
    the metric's direction); the derived pooled retention score.
    """
    out = []
    frame = results.assign(
        key=results["benchmark"].astype(str) + "/" + results["item_id"].astype(str)
    )
    for (suite, metric), rows in frame.groupby(["suite", "metric"], sort=False):
        benchmarks = list(dict.fromkeys(rows["benchmark"]))
        for benchmark in benchmarks:
            out.append(
                (suite, "benchmark", benchmark, metric, rows[rows["benchmark"] == benchmark])
            )
        if metric in metrics.IFEVAL_INSTRUCTION_METRICS:  # one unit per instruction type
            out.extend(_instruction_units(suite, metric, rows))
        groups = rows["benchmark"].map(metrics.benchmark_group)
        for group in dict.fromkeys(groups):
            members = set(rows.loc[groups == group, "benchmark"])
            if len(members) > 1 and group not in members:
                out.append((suite, "group", group, metric, rows[groups == group]))
        directions = {metrics.direction(suite, b, metric) for b in benchmarks}
        if len(benchmarks) > 1 and len(directions) == 1 and suite not in metrics.UNPOOLED_SUITES:
            out.append((suite, "suite", "all", metric, rows))
    pooled = []
    for suite in metrics.RETENTION_SUITES:
        rows = frame[frame["suite"] == suite]
        for _, sub in rows.groupby("benchmark", sort=False):
            chosen = metrics.primary_metric(
                suite, [m for m in sub["metric"].unique() if m in metrics.RETENTION_METRICS]
            )
            if chosen:
                pooled.append(sub[sub["metric"] == chosen])
    if pooled:
        rows = pd.concat(pooled).assign(suite="retention", metric="score")
        out.append(("retention", "derived", "all", "score", rows))
    return out


def _instruction_units(suite: str, metric: str, rows: pd.DataFrame) -> list[tuple]:
    """IFEval instruction-level rows by instruction type (item_id "<key>/<i>:<type>")."""
    kinds = rows["item_id"].map(metrics.instruction_type)
    out = []
    for benchmark in dict.fromkeys(rows["benchmark"]):
        same = rows["benchmark"] == benchmark
        for kind in sorted(set(kinds[same])):
            out.append(
                (suite, "instruction", f"{benchmark}:{kind}", metric, rows[same & (kinds == kind)])
            )
    return out


def _item_means(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Items x experiments (averaged over seeds), and items x (experiment, seed)."""
    by_seed = rows.pivot_table(
        index="key", columns=["experiment", "seed"], values="value", aggfunc="mean"
    )
    by_item = by_seed.T.groupby(level="experiment", sort=False).mean().T
    return by_item, by_seed


def _seed_stats(by_seed: pd.DataFrame, experiment: str) -> dict:
    if experiment not in by_seed.columns.get_level_values("experiment"):
        return {"n_seeds": 0}
    means = by_seed[experiment].mean(axis=0)
    return {
        "n_seeds": len(means),
        "seed_means": json.dumps(
            {str(int(seed)): round(float(value), 6) for seed, value in means.items()}
        ),
        "seed_sd": float(means.std(ddof=1)) if len(means) > 1 else np.nan,
        "seed_min": float(means.min()),
        "seed_max": float(means.max()),
    }


def contrast(
    by_item: pd.DataFrame,
    experiment: str,
    reference: str,
    *,
    paired: bool,
    direction: int,
    tolerance,
    boot: Bootstrap,
    clusters: pd.Index | None = None,
) -> dict:
    """experiment - reference over items: estimate, interval, ratio, improved/unchanged/regressed.
    `clusters` (aligned with by_item's index): resample whole clusters, not items."""
    if experiment not in by_item or reference not in by_item:
        return {}
    x, y = by_item[experiment], by_item[reference]
    if paired:
        both = x.notna() & y.notna()
        if clusters is not None:
            ci = cluster_paired_diff_ci(
                x[both].to_numpy(), y[both].to_numpy(), clusters[both.to_numpy()], boot
            )
        else:
            ci = paired_diff_ci(x[both].to_numpy(), y[both].to_numpy(), boot)
        band = tolerance(y[both].to_numpy()) if callable(tolerance) else tolerance
        improved, unchanged, regressed = (
            classify((x[both] - y[both]).to_numpy(), direction, band)
            if direction
            else (np.nan,) * 3
        )
        n_paired = int(both.sum())
    else:
        ci = unpaired_diff_ci(x.dropna().to_numpy(), y.dropna().to_numpy(), boot)
        improved = unchanged = regressed = np.nan
        n_paired = 0
    ref_mean = float(y.mean())
    return {
        "ref_mean": ref_mean,
        "diff": ci.estimate,
        "diff_low": ci.low,
        "diff_high": ci.high,
        "diff_ci_method": ci.method,
        "n_paired": n_paired,
        "ratio": float(x.mean()) / ref_mean if ref_mean else np.nan,
        "significant": ci.excludes_zero,
        "improved": improved,
        "unchanged": unchanged,
        "regressed": regressed,
    }


def _unit_rows(job) -> list[dict]:
    """Summary rows of one unit (module level, so a process pool can run it)."""
    (suite, level, benchmark, metric, unit_rows), order, baseline, pairs, boot, study = job
    by_item, by_seed = _item_means(unit_rows)
    values = unit_rows["value"].to_numpy(dtype=float)
    _, rule = metrics.tolerance(metric, values, [])

    def tolerance(reference):
        return metrics.tolerance(metric, values, reference)[0]

    where = benchmark if level != "suite" else unit_rows["benchmark"].iloc[0]
    sign = metrics.direction(suite, where, metric)
    paired = suite not in metrics.UNPAIRED_SUITES
    # IFEval's instructions are clustered in prompts: resample prompts (key "<benchmark>/<prompt
    # key>/<i>:<type>" -> "<benchmark>/<prompt key>")
    clusters = (
        by_item.index.str.rsplit("/", n=1).str[0]
        if metric in metrics.IFEVAL_INSTRUCTION_METRICS
        else None
    )
    common = {
        "study": study, "suite": suite, "level": level, "benchmark": benchmark, "metric": metric,
        "direction": sign, "tolerance": rule, "confidence": boot.confidence, "resamples": boot.resamples,
    }  # fmt: skip
    options = {
        "paired": paired, "direction": sign, "tolerance": tolerance, "boot": boot,
        "clusters": clusters,
    }  # fmt: skip
    rows = []
    for experiment in order:
        if experiment not in by_item:
            continue
        column = by_item[experiment]
        ci = (
            mean_ci(column.to_numpy(), boot)
            if clusters is None
            else cluster_mean_ci(column.to_numpy(), clusters, boot)
        )
        row = {
            **common, "kind": "estimate", "experiment": experiment, "reference": baseline,
            "n_items": int(column.notna().sum()), "mean": ci.estimate, "ci_low": ci.low,
            "ci_high": ci.high, "ci_method": ci.method,
        }  # fmt: skip
        row.update(_seed_stats(by_seed, experiment))
        if experiment != baseline:
            row.update(contrast(by_item, experiment, baseline, **options))
        rows.append(row)
    for first, second in pairs or []:
        if first in by_item and second in by_item:
            column = by_item[second]
            row = {
                **common, "kind": "pair", "experiment": second, "reference": first,
                "n_items": int(column.notna().sum()), "mean": float(column.mean()),
            }  # fmt: skip
            row.update(_seed_stats(by_seed, second))
            row.update(contrast(by_item, second, first, **options))
            rows.append(row)
    return rows


def summarize(
    results: pd.DataFrame,
    *,
    baseline: str,
    pairs: list[list[str]] | None = None,
    boot: Bootstrap = DEFAULT_BOOT,
    study: str | None = None,
    workers: int = 1,
) -> pd.DataFrame:
    """The summary table: per experiment x unit, estimate vs base; per chosen pair, B vs A.

    An item counts as improved/regressed when its seed-averaged change, signed by the metric's
    direction, exceeds the metric's band (`metrics.tolerance`: any flip of a binary metric,
    a fixed band for adherence / quality / similarity / NLL, else 5% of the reference item);
    descriptive metrics (direction 0) get no counts. `workers` > 1 spreads the units over
    processes; every bootstrap is seeded on its own, so the numbers do not change.
    """
    study = study or (str(results["study"].iloc[0]) if len(results) else "")
    order = list(dict.fromkeys(results["experiment"]))
    jobs = [(unit, order, baseline, pairs, boot, study) for unit in units(results)]
    if workers > 1 and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            chunks = list(pool.map(_unit_rows, jobs, chunksize=max(1, len(jobs) // (4 * workers))))
    else:
        chunks = [_unit_rows(job) for job in jobs]
    frame = pd.DataFrame([row for chunk in chunks for row in chunk])
    for column in SUMMARY_COLUMNS:
        if column not in frame:
            frame[column] = np.nan
    return frame[SUMMARY_COLUMNS]


def seed_variance(summary: pd.DataFrame) -> pd.DataFrame:
    """Rows of experiments trained at several seeds: seed sd beside the sampling CI half-width."""
    rows = summary[(summary["kind"] == "estimate") & (summary["n_seeds"] > 1)].copy()
    rows["ci_half_width"] = (rows["ci_high"] - rows["ci_low"]) / 2
    rows["seed_range"] = rows["seed_max"] - rows["seed_min"]
    return rows


def ordered(names, order=None) -> list[str]:
    """The experiments among `names`, in `order` where given, else in first-seen order."""
    present = list(dict.fromkeys(names))
    return [e for e in (order or present) if e in present]


def select(summary: pd.DataFrame, **columns) -> pd.DataFrame:
    """Summary rows whose columns equal the values given (an empty summary comes back as is)."""
    if summary is None or summary.empty:
        return summary
    mask = pd.Series(True, index=summary.index)
    for column, value in columns.items():
        mask &= summary[column] == value
    return summary[mask]


def safety_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The refusal rate of each experiment on each safety benchmark."""
    return select(summary, suite="safety", kind="estimate", level="benchmark", metric="refused")


def pick(
    summary: pd.DataFrame,
    suite: str,
    metric: str | None = None,
    benchmark: str = "all",
    kind: str = "estimate",
) -> pd.DataFrame:
    """Summary rows of one suite/metric/benchmark across experiments (primary metric by
    default; benchmark "all" falls back to the suite's only benchmark)."""
    if summary is None or summary.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    rows = summary[(summary["suite"] == suite) & (summary["kind"] == kind)]
    if metric is None:
        metric = metrics.primary_metric(suite, rows["metric"])
    rows = rows[rows["metric"] == metric]
    exact = rows[rows["benchmark"] == benchmark]
    if exact.empty and benchmark == "all" and rows["benchmark"].nunique() == 1:
        exact = rows
    return exact


def compare(
    results: pd.DataFrame,
    first: str,
    second: str,
    suite: str,
    metric: str | None = None,
    benchmark: str = "all",
    boot: Bootstrap = DEFAULT_BOOT,
) -> dict:
    """second - first on one outcome, computed from the results table like a summary pair
    row (for contrasts the config did not list, e.g. neighbouring ranks)."""
    subset = results[results["experiment"].isin([first, second]) & (results["suite"] == suite)]
    if suite == "retention":
        subset = results[results["experiment"].isin([first, second])]
    if metric is None:
        metric = metrics.primary_metric(suite, subset["metric"])
    found = [u for u in units(subset) if u[0] == suite and u[3] == metric]
    chosen = [u for u in found if u[2] == benchmark] or (
        [u for u in found if u[1] == "benchmark"]
        if benchmark == "all" and len({u[2] for u in found}) == 1
        else []
    )
    if not chosen:
        return {}
    suite, level, benchmark, metric, rows = chosen[0]
    by_item, _ = _item_means(rows)
    values = rows["value"].to_numpy(dtype=float)
    sign = metrics.direction(suite, rows["benchmark"].iloc[0], metric)
    band = lambda reference: metrics.tolerance(metric, values, reference)[0]  # noqa: E731
    out = contrast(
        by_item,
        second,
        first,
        paired=suite not in metrics.UNPAIRED_SUITES,
        direction=sign,
        tolerance=band,
        boot=boot,
    )
    if out:
        out.update(
            {
                "experiment": second,
                "reference": first,
                "suite": suite,
                "benchmark": benchmark,
                "metric": metric,
                "mean": float(by_item[second].mean()),
                "confidence": boot.confidence,
            }
        )
    return out
