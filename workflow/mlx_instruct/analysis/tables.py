"""The report's tables: each a function of tidy DataFrames returning a display DataFrame
(numbers already formatted with their intervals). `python -m mlx_instruct.analysis tables` writes each
as CSV and Markdown; the paper shows the same functions' output. Outcome tables live here;
tables of runs (cost, efficiency, generations, weights) in `analysis.tables_runs`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from mlx_instruct.analysis import metrics
from mlx_instruct.analysis.report import diff, est, level, num
from mlx_instruct.analysis.summary import ordered, pick, safety_rows
from mlx_instruct.analysis.tables_ifeval import ifeval_setup, ifeval_table, ifeval_types_table  # noqa: F401
from mlx_instruct.analysis.tables_runs import (  # noqa: F401  (one namespace for the paper: T.*)
    cost_table,
    effective_rank_table,
    efficiency_table,
    qualitative_grid,
    samples_table,
    subspace_table,
)


def _counts(row) -> str:
    if row is None or not np.isfinite(row.get("improved", np.nan)):
        return ""
    return f"{int(row['improved'])} / {int(row['unchanged'])} / {int(row['regressed'])}"


def _mean_ci(row, digits=2, scale=1.0) -> str:
    return est(row, digits, scale, missing="")


def _diff_ci(row, digits=2, scale=1.0) -> str:
    if row is None or not np.isfinite(row.get("diff", np.nan)):
        return "(base)"
    mark = " *" if row.get("significant") is True or row.get("significant") == "True" else ""
    return diff(row, digits, scale) + mark


def _seeds(row, digits=2, scale=1.0) -> str:
    if row is None or not row.get("n_seeds", 0) or row["n_seeds"] < 2:
        return ""
    return f"{int(row['n_seeds'])} seeds, sd {num(row['seed_sd'] * scale, digits)}"


def short_trained(trained: str) -> str:
    """run.json's `trained` line cut to a table cell (the PDF wrapped the whole line to five
    lines per row, and four with ' blocks' kept): what trains and the optimizer; whatever is
    not named stays frozen. 'all weights of 32/32 blocks; embeddings, output head, final norm
    frozen; adafactor' -> 'all of 32/32, adafactor'."""
    parts = [p.strip() for p in trained.split(";") if p.strip()]
    kept = []
    for part in parts:
        if part.endswith(" frozen"):
            continue
        if part.endswith(" trained") and kept:
            named = part.removesuffix(" trained").replace("output head", "head")
            kept[-1] += " + " + named.replace("final norm", "norm")
            continue
        part = part.replace("all weights of", "all of").replace("adapters in", "LoRA in")
        kept.append(part.replace(" blocks", ""))
    return ", ".join(kept)


def config_table(meta: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Experiment matrix: method, rank, alpha, LR, steps, batch, retention fraction, seeds,
    trainable parameters and what each run trained (run.json's `trained`)."""
    rows = []
    params, trains = {}, {}
    if runs is not None and not runs.empty:
        for column in ("trainable_parameters", "trainable_params", "n_trainable"):
            if column in runs:
                params = runs.groupby("experiment")[column].first().to_dict()
                break
        if "trained" in runs:  # run.json's own words: "full" never silently means less
            trains = runs.groupby("experiment")["trained"].first().dropna().to_dict()
    for row in meta.itertuples():
        rows.append({
            "experiment": row.experiment, "method": row.method, "rank": "" if pd.isna(row.rank) else int(row.rank),
            "alpha": "" if row.alpha is None or pd.isna(row.alpha) else f"{row.alpha:g}",
            "LR": "" if row.learning_rate is None or pd.isna(row.learning_rate) else f"{row.learning_rate:.1e}",
            "steps": "" if row.steps is None or pd.isna(row.steps) else int(row.steps),
            "batch": "" if row.batch_size is None or pd.isna(row.batch_size) else int(row.batch_size),
            "mix": f"{row.retention_fraction:.0%}" if row.retention_fraction else "",
            "seeds": ", ".join(str(s) for s in row.seeds),
            "trainable params": f"{int(params[row.experiment]):,}" if pd.notna(params.get(row.experiment, np.nan)) else "",
            "trains": short_trained(trains.get(row.experiment, "")),
        })  # fmt: skip
    frame = pd.DataFrame(rows)
    return frame.loc[:, (frame != "").any(axis=0)]


SPLIT_COLUMNS = [
    ("n", "examples"), ("tokens.total.mean", "mean tokens"), ("tokens.total.p95", "p95 tokens"), ("tokens.total.max", "max tokens"),
    ("unique_trigram_ratio", "unique trigrams"), ("instruction_type_entropy_bits", "type entropy (bits)"),
    ("format_validity_rate", "format valid"), ("truncation_rate", "truncated"),
]  # fmt: skip


def _dig(tree: dict, dotted: str):
    for key in dotted.split("."):
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def data_table(stats: dict, depth: int = 2) -> pd.DataFrame:
    """data/stats.json: one row per split (size, token lengths, the plan's section 9.2
    quality measures) when the data stage recorded splits, else the flattened numbers."""
    splits = stats.get("splits") if isinstance(stats, dict) else None
    if isinstance(splits, dict) and splits:
        rows = []
        for name, report in splits.items():
            row = {"split": name}
            for key, title in SPLIT_COLUMNS:
                value = _dig(report, key)
                row[title] = (
                    ""
                    if value is None
                    else f"{value:,.4g}"
                    if isinstance(value, float)
                    else str(value)
                )
            rows.append(row)
        frame = pd.DataFrame(rows)
        return frame.loc[:, (frame != "").any(axis=0)]
    rows = []

    def walk(prefix, value, level):
        if isinstance(value, dict) and level < depth:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner, level + 1)
        elif isinstance(value, bool) or not isinstance(value, (dict, list)):
            rows.append(
                {
                    "quantity": prefix,
                    "value": f"{value:,.4g}" if isinstance(value, float) else str(value),
                }
            )
        elif isinstance(value, list) and len(value) <= 6:
            rows.append({"quantity": prefix, "value": json.dumps(value)})

    walk("", stats, 0)
    return pd.DataFrame(rows, columns=["quantity", "value"])


def data_counts(stats: dict) -> str:
    """The data stage's record counts as one sentence fragment ("160 read, 2 near duplicates, ...")."""
    counts = stats.get("counts") if isinstance(stats, dict) else None
    if not isinstance(counts, dict):
        return ""
    return ", ".join(
        f"{value:,} {key.replace('_', ' ')}"
        for key, value in counts.items()
        if isinstance(value, int)
    )


def estimates_table(
    summary, suite, metric=None, benchmark="all", order=None, digits=2, scale=1.0
) -> pd.DataFrame:
    """Per experiment: mean [CI], change vs base [paired CI] (* = CI excludes 0), items
    improved / unchanged / regressed, training-seed spread."""
    rows = pick(summary, suite, metric, benchmark)
    out = []
    for experiment in ordered(rows["experiment"], order):
        row = rows[rows["experiment"] == experiment].iloc[0]
        out.append(
            {
                "experiment": experiment,
                f"mean [{level(row)} CI]": _mean_ci(row, digits, scale),
                f"\u0394 vs base [{level(row)} CI]": _diff_ci(row, digits, scale),
                "improved / unchanged / regressed": _counts(row),
                "seed spread": _seeds(row, digits, scale),
            }
        )
    frame = pd.DataFrame(out)
    return frame.loc[:, (frame != "").any(axis=0)] if not frame.empty else frame


def adherence_table(summary, order=None) -> pd.DataFrame:
    """The instruction-adherence table: score (0-100) with CIs, and its components."""
    frame = estimates_table(summary, "adherence", order=order, digits=1)
    for metric, title in (
        ("follows_format", "follows format"),
        ("constraint_score", "constraint score"),
        ("correct", "correct"),
    ):
        rows = pick(summary, "adherence", metric).set_index("experiment")
        if not rows.empty and not frame.empty:
            frame[title] = [
                num(rows.loc[e, "mean"], 2) if e in rows.index else "" for e in frame["experiment"]
            ]
    return frame


def family_table(summary, suite="adherence", order=None) -> pd.DataFrame:
    rows = summary[
        (summary["suite"] == suite)
        & (summary["kind"] == "estimate")
        & (summary["level"] == "benchmark")
    ]
    rows = rows[rows["metric"] == metrics.primary_metric(suite, rows["metric"])]
    grid = rows.pivot_table(index="experiment", columns="benchmark", values="mean").round(1)
    grid = grid.loc[ordered(grid.index, order)]
    return grid.reset_index()


def _retention_benchmarks(summary: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(suite, benchmark, metric) of each retention benchmark; bbh-style groups pooled."""
    out = []
    for suite in metrics.RETENTION_SUITES:
        rows = summary[
            (summary["suite"] == suite)
            & (summary["kind"] == "estimate")
            & summary["level"].isin(["benchmark", "group"])
        ]
        grouped = set(rows.loc[rows["level"] == "group", "benchmark"])
        for benchmark in dict.fromkeys(rows["benchmark"]):
            if metrics.benchmark_group(benchmark) in grouped and benchmark not in grouped:
                continue
            chosen = metrics.primary_metric(
                suite,
                [
                    m
                    for m in rows.loc[rows["benchmark"] == benchmark, "metric"]
                    if m in metrics.RETENTION_METRICS
                ],
            )
            if chosen:
                out.append((suite, benchmark, chosen))
    return out


def retention_table(summary, order=None) -> pd.DataFrame:
    """Per experiment: each benchmark's score (change vs base), then the pooled retention
    score's change [CI] and the tuned/base ratio (the plan's >95% = minimal forgetting)."""
    columns = _retention_benchmarks(summary)
    pooled = pick(summary, "retention", "score").set_index("experiment")
    names = ordered(summary.loc[summary["kind"] == "estimate", "experiment"], order)
    out = []
    for experiment in names:
        entry = {"experiment": experiment}
        for suite, benchmark, metric in columns:
            row = pick(summary, suite, metric, benchmark)
            row = row[row["experiment"] == experiment]
            if not row.empty:
                row = row.iloc[0]
                change = "" if not np.isfinite(row["diff"]) else f" ({num(row['diff'], 2, True)})"
                entry[f"{benchmark} {metrics.label(metric)}"] = f"{num(row['mean'], 2)}{change}"
        if experiment in pooled.index:
            row = pooled.loc[experiment]
            entry[f"pooled \u0394 [{level(row)} CI]"] = _diff_ci(row, 3)
            entry["% of base"] = (
                "" if not np.isfinite(row["ratio"]) else f"{row['ratio'] * 100:.1f}%"
            )
        out.append(entry)
    return pd.DataFrame(out)


def safety_table(summary, order=None, threshold: float = metrics.SAFETY_TOLERANCE) -> pd.DataFrame:
    """Refusal rate per safety benchmark (change vs base); ! marks a drift beyond the plan's tolerance."""
    rows = safety_rows(summary)
    out = []
    for experiment in ordered(rows["experiment"], order):
        entry = {"experiment": experiment}
        for row in rows[rows["experiment"] == experiment].itertuples():
            text = num(row.mean, 2)
            if np.isfinite(row.diff):
                flag = " !" if abs(row.diff) > threshold else ""
                text += f" ({num(row.diff, 2, True)}{flag})"
            kind = "answer" if metrics.is_benign(row.benchmark) else "refuse"
            entry[f"{row.benchmark} [{kind}]"] = text
        out.append(entry)
    return pd.DataFrame(out)


PAIR_SUITES = [
    ("adherence", None, "all"),
    ("semantic", None, "all"),
    ("retention", "score", "all"),
    ("safety", "refused", "harmful"),
    ("safety", "refused", "benign"),
]


def pairs_table(summary, pairs) -> pd.DataFrame:
    """The chosen contrasts (config report.pairs): B - A with paired BCa CIs."""
    out = []
    for first, second in pairs:
        for suite, metric, benchmark in PAIR_SUITES:
            rows = pick(summary, suite, metric, benchmark, kind="pair")
            rows = rows[(rows["experiment"] == second) & (rows["reference"] == first)]
            if rows.empty:
                continue
            row = rows.iloc[0]
            where = "" if row["benchmark"] == "all" else f" ({row['benchmark']})"
            out.append(
                {
                    "outcome": f"{metrics.suite_label(suite)}{where}: {metrics.label(row['metric'])}",
                    "A": f"{first}: {num(row['ref_mean'], 2)}",
                    "B": f"{second}: {num(row['mean'], 2)}",
                    f"B \u2212 A [{level(row)} CI]": _diff_ci(row),
                    "better / same / worse": _counts(row),
                }
            )
    frame = pd.DataFrame(out)
    return frame.fillna("")


def counts_table(summary, order=None, baseline=None) -> pd.DataFrame:
    """Items improved / unchanged / regressed vs the base, per experiment and suite."""
    out = {}
    for suite in (
        "adherence",
        "seed_prompts",
        "semantic",
        "retention",
        "safety",
        "benchmarks",
        "humaneval",
    ):
        rows = pick(summary, suite, "score" if suite == "retention" else None)
        if suite == "safety" and rows.empty:
            rows = pick(summary, suite, "refused", "harmful")
        for row in rows.itertuples():
            if row.experiment == baseline or not np.isfinite(row.improved):
                continue
            where = "" if row.benchmark in ("all", suite) else f" ({row.benchmark})"
            out.setdefault(row.experiment, {"experiment": row.experiment})[f"{suite}{where}"] = (
                f"{int(row.improved)} / {int(row.unchanged)} / {int(row.regressed)}"
            )
    return pd.DataFrame([out[e] for e in ordered(out, order)]).fillna("")


def seed_variance_table(summary) -> pd.DataFrame:
    """Experiments trained at several seeds: per-seed means, their sd, and the sampling CI
    half-width beside it (training-seed vs item-sampling variance), per suite's headline."""
    multi = summary[(summary["kind"] == "estimate") & (summary["n_seeds"] > 1)]
    out = []
    for suite in dict.fromkeys(multi["suite"]):
        if suite == "efficiency":
            continue
        rows = pick(multi, suite, "score" if suite == "retention" else None)
        for row in rows.itertuples():
            seeds = json.loads(row.seed_means) if isinstance(row.seed_means, str) else {}
            where = "" if row.benchmark == "all" else f" ({row.benchmark})"
            out.append(
                {
                    "experiment": row.experiment,
                    "outcome": f"{metrics.suite_label(row.suite)}{where}: {metrics.label(row.metric)}",
                    "per-seed means": ", ".join(f"s{k}: {v:.3g}" for k, v in seeds.items()),
                    "seed sd": num(row.seed_sd, 3),
                    "CI half-width (items)": num((row.ci_high - row.ci_low) / 2, 3),
                }
            )
    return pd.DataFrame(out)
