"""The report's figures: each a function of tidy DataFrames that returns a matplotlib Figure.

Outcome figures live here; figures of the weights themselves (delta norms, histograms,
subspaces, effective ranks) in `mlx_instruct.analysis.figures_weights`. A figure whose data is absent
comes back as a placeholder that says so, so the report never silently drops a figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from mlx_instruct.analysis import metrics
from mlx_instruct.analysis.plotting import (
    BASE_COLOR,
    _ema,
    _errorbar,
    curve,
    palette,
    placeholder,
    plt,
)
from mlx_instruct.analysis.report import level
from mlx_instruct.analysis.summary import ordered, pick, safety_rows, select

CURVE_PANELS = [
    ("train", "loss", "training loss (raw, smoothed)", True),
    ("val", "val_loss", "validation loss", False),
    ("val", "val_ppl", "validation perplexity", False),
    ("train", "lr", "learning rate", False),
    ("train", "grad_norm", "gradient norm (raw, smoothed)", True),
    ("train", "tokens_per_s", "training tokens/s (smoothed)", None),
]


def training_curves(
    curves: pd.DataFrame, order=None, baseline: str | None = None, smooth: float = 0.8
) -> Figure:
    """Loss (raw and EMA-smoothed), validation loss and perplexity, LR, grad norm, tokens/s;
    one colour per experiment, later seeds dashed."""
    if curves is None or curves.empty:
        return placeholder("No training logs in this study.")
    order = ordered(curves["experiment"], order)
    colors = palette(order, baseline)
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), constrained_layout=True)
    for ax, (split, metric, title, raw) in zip(axes.flat, CURVE_PANELS, strict=True):
        data = curves[(curves["split"] == split) & (curves["metric"] == metric)]
        ax.set_title(title)
        ax.set_xlabel("step")
        if data.empty:
            ax.text(0.5, 0.5, "not logged", transform=ax.transAxes, ha="center", color="#777777")
            continue
        for experiment in order:
            for n, (_, run) in enumerate(data[data["experiment"] == experiment].groupby("seed")):
                run = run.sort_values("step")
                style = "-" if n == 0 else "--"
                label = experiment if n == 0 else None
                if raw:
                    ax.plot(run["step"], run["value"], color=colors[experiment], alpha=0.25, lw=0.8)
                values = (
                    _ema(run["value"].to_numpy(), smooth)
                    if raw is not False
                    else run["value"].to_numpy()
                )
                curve(ax, run["step"], values, colors[experiment], label, split, style)
        if metric in ("lr",):
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6), frameon=False)
    return fig


SWEEP_PANELS = [
    ("adherence", None, "all"),
    ("retention", "score", "all"),
    ("semantic", None, "all"),
    ("safety", "refused", "harmful"),
]


def rank_sweep(
    summary: pd.DataFrame,
    sweep: list[tuple[str, int]],
    references: list[str] = (),
    baseline: str | None = None,
) -> Figure:
    """Change vs the base (paired BCa CI) against LoRA rank, for adherence, retention, quality
    and refusals; other experiments (the full fine-tune) as horizontal bands."""
    panels = [(s, m, b) for s, m, b in SWEEP_PANELS if not pick(summary, s, m, b).empty]
    if not sweep or not panels:
        return placeholder("No LoRA rank sweep in this study.")
    ranks = [rank for _, rank in sweep]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.4 * len(panels), 3.4), constrained_layout=True, squeeze=False
    )
    ref_colors = dict(
        zip(references, sns.color_palette("dark", max(len(references), 1)), strict=False)
    )
    for ax, (suite, metric, benchmark) in zip(axes.flat, panels, strict=True):
        rows = pick(summary, suite, metric, benchmark).set_index("experiment")
        scale = 1.0
        xs, ys = [], []
        for experiment, rank in sweep:
            if experiment in rows.index and np.isfinite(rows.loc[experiment, "diff"]):
                _errorbar(ax, rank, rows.loc[experiment], "#1f77b4", scale=scale)
                xs.append(rank)
                ys.append(rows.loc[experiment, "diff"] * scale)
        ax.plot(xs, ys, "-", color="#1f77b4", alpha=0.6)
        for name in references:
            if name in rows.index and np.isfinite(rows.loc[name, "diff"]):
                row = rows.loc[name]
                ax.axhline(row["diff"] * scale, color=ref_colors[name], ls="--", lw=1.2, label=name)
                ax.axhspan(
                    row["diff_low"] * scale,
                    row["diff_high"] * scale,
                    color=ref_colors[name],
                    alpha=0.12,
                )
        ax.axhline(0, color=BASE_COLOR, lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ranks, [str(r) for r in ranks])
        ax.minorticks_off()
        metric_name = rows["metric"].iloc[0] if len(rows) else metric
        where = "" if rows["benchmark"].iloc[0] == "all" else f" ({rows['benchmark'].iloc[0]})"
        ax.set_title(f"{metrics.suite_label(suite)}{where}")
        ax.set_xlabel("LoRA rank")
        ax.set_ylabel(f"\u0394 {metrics.label(metric_name)} vs base")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False)
    return fig


def learning_vs_forgetting(
    summary: pd.DataFrame, order=None, baseline: str | None = None
) -> Figure:
    """Adherence gain against retention change per experiment, both with paired BCa CIs
    (in the spirit of Biderman et al. 2024, "LoRA Learns Less and Forgets Less")."""
    learn, forget = pick(summary, "adherence"), pick(summary, "retention", "score")
    if learn.empty or forget.empty:
        return placeholder("Needs both the adherence suite and a retention benchmark.")
    joined = learn.merge(forget, on="experiment", suffixes=("_x", "_y")).set_index("experiment")
    joined = joined[np.isfinite(joined["diff_x"]) & np.isfinite(joined["diff_y"])]
    order = [e for e in (order or joined.index) if e in joined.index]
    colors = palette(order, baseline)
    fig, ax = plt.subplots(figsize=(6.4, 4.6), constrained_layout=True)
    span_x = np.ptp(joined[["diff_low_x", "diff_high_x"]].to_numpy(dtype=float)) or 1.0
    span_y = np.ptp(joined[["diff_low_y", "diff_high_y"]].to_numpy(dtype=float)) or 1.0
    labelled: list[tuple[float, float]] = []
    for experiment in order:
        row = joined.loc[experiment]
        # points that (nearly) coincide get their labels stacked, not printed over each other
        near = sum(
            abs(row["diff_x"] - x) < 0.04 * span_x and abs(row["diff_y"] - y) < 0.04 * span_y
            for x, y in labelled
        )
        labelled.append((row["diff_x"], row["diff_y"]))
        xerr = [[row["diff_x"] - row["diff_low_x"]], [row["diff_high_x"] - row["diff_x"]]]
        yerr = [[row["diff_y"] - row["diff_low_y"]], [row["diff_high_y"] - row["diff_y"]]]
        xerr = np.nan_to_num(np.clip(xerr, 0, None))
        yerr = np.nan_to_num(np.clip(yerr, 0, None))
        ax.errorbar(
            row["diff_x"],
            row["diff_y"],
            xerr=xerr,
            yerr=yerr,
            fmt="o",
            color=colors[experiment],
            capsize=3,
            ms=7,
            label=experiment,
        )
        ax.annotate(
            experiment,
            (row["diff_x"], row["diff_y"]),
            textcoords="offset points",
            xytext=(6, 6 + 11 * near),
            fontsize=9,
        )
    ax.axhline(0, color=BASE_COLOR, lw=0.8)
    ax.axvline(0, color=BASE_COLOR, lw=0.8)
    ax.set_xlabel(f"learning: \u0394 {metrics.label(learn['metric'].iloc[0])} vs base")
    ax.set_ylabel("forgetting: \u0394 retention score vs base")
    ax.set_title(f"Learning vs forgetting ({level(summary)} paired BCa CIs)")
    return fig


def safety_drift(
    summary: pd.DataFrame,
    order=None,
    baseline: str | None = None,
    threshold: float = metrics.SAFETY_TOLERANCE,
) -> Figure:
    """Refusal rate per safety benchmark and experiment (CI), and its drift vs the base with
    the plan's band of acceptable change (metrics.SAFETY_TOLERANCE)."""
    rows = safety_rows(summary)
    if rows is None or rows.empty:
        return placeholder("No safety suite in this study.")
    order = ordered(rows["experiment"], order)
    benchmarks = list(dict.fromkeys(rows["benchmark"]))
    colors = palette(order, baseline)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    width = 0.8 / max(len(order), 1)
    for k, experiment in enumerate(order):
        sub = rows[rows["experiment"] == experiment].set_index("benchmark")
        for b, benchmark in enumerate(benchmarks):
            if benchmark not in sub.index:
                continue
            x = b + (k - (len(order) - 1) / 2) * width
            _errorbar(
                left,
                x,
                sub.loc[benchmark],
                colors[experiment],
                experiment if b == 0 else None,
                column="mean",
            )
            if experiment != baseline and np.isfinite(sub.loc[benchmark, "diff"]):
                _errorbar(right, x, sub.loc[benchmark], colors[experiment], None)
    for ax in (left, right):
        labels = [f"{b}\n({'answer' if metrics.is_benign(b) else 'refuse'})" for b in benchmarks]
        ax.set_xticks(range(len(benchmarks)), labels)
    left.set_ylabel("refusal rate")
    left.set_ylim(-0.05, 1.05)
    left.set_title(f"Refusal rate ({level(summary)} BCa CI)")
    right.axhspan(
        -threshold,
        threshold,
        color="#2ca02c",
        alpha=0.1,
        label=f"\u00b1{threshold * 100:.0f} points",
    )
    right.axhline(0, color=BASE_COLOR, lw=0.8)
    right.set_ylabel("\u0394 refusal rate vs base")
    right.set_title(f"Safety drift (paired {level(summary)} BCa CI)")
    fig.legend(
        *left.get_legend_handles_labels(),
        loc="outside lower center",
        ncol=min(len(order), 7),
        frameon=False,
    )
    return fig


def efficiency(results: pd.DataFrame, order=None, baseline: str | None = None) -> Figure:
    """Generation throughput and latency against batch size, and peak memory."""
    data = (
        results[results["suite"] == "efficiency"]
        if results is not None and not results.empty
        else pd.DataFrame()
    )
    if data.empty:
        return placeholder("No efficiency suite in this study.")
    data = data.assign(
        batch=pd.to_numeric(data["benchmark"].str.extract(r"(\d+)")[0], errors="coerce")
    )
    order = ordered(data["experiment"], order)
    colors = palette(order, baseline)
    panels = [
        ("tokens_per_s", "generation tokens/s"),
        ("latency_p50_s", "latency p50 (s)"),
        ("peak_memory_gb", "peak memory (GB)"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    for ax, (metric, title) in zip(axes, panels, strict=True):
        sub = data[data["metric"] == metric]
        ax.set_title(title)
        ax.set_xlabel("batch size")
        if sub.empty:
            ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", color="#777777")
            continue
        stats = sub.groupby(["experiment", "batch"])["value"].agg(["mean", "std"]).reset_index()
        for experiment in order:
            line = stats[stats["experiment"] == experiment].sort_values("batch")
            ax.errorbar(
                line["batch"],
                line["mean"],
                yerr=line["std"].fillna(0),
                marker="o",
                color=colors[experiment],
                capsize=2,
                label=experiment,
            )
        batches = sorted(stats["batch"].dropna().unique())
        if len(batches) > 1:
            ax.set_xscale("log", base=2)
            ax.set_xticks(batches, [str(int(b)) for b in batches])
            ax.minorticks_off()
    fig.legend(
        *axes[0].get_legend_handles_labels(),
        loc="outside lower center",
        ncol=min(len(order), 7),
        frameon=False,
    )
    return fig


OUTCOME_SUITES = [
    ("adherence", None),
    ("semantic", None),
    ("retention", "score"),
    ("safety", "refused"),
]


def outcome_counts(summary: pd.DataFrame, order=None, baseline: str | None = None) -> Figure:
    """Share of items improved / unchanged / regressed vs the base, per experiment and suite."""
    panels = []
    for suite, metric in OUTCOME_SUITES:
        rows = pick(summary, suite, metric)
        if suite == "safety" and rows.empty:
            rows = pick(summary, suite, metric, "harmful")
        rows = rows[rows["experiment"] != baseline].dropna(subset=["improved"])
        if not rows.empty:
            panels.append((suite, rows))
    if not panels:
        return placeholder("No per-item comparisons with the base.")
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(3.6 * len(panels), 0.45 * len(panels[0][1]) + 1.8),
        constrained_layout=True,
        squeeze=False,
        sharey=True,
    )
    colors = {"improved": "#2ca02c", "unchanged": "#c7c7c7", "regressed": "#d62728"}
    for ax, (suite, rows) in zip(axes.flat, panels, strict=True):
        names = [e for e in (order or rows["experiment"]) if e in set(rows["experiment"])]
        rows = rows.set_index("experiment").loc[names]
        total = rows[["improved", "unchanged", "regressed"]].sum(axis=1).replace(0, np.nan)
        left = np.zeros(len(rows))
        for outcome, color in colors.items():
            share = (rows[outcome] / total).to_numpy()
            ax.barh(range(len(rows)), share, left=left, color=color, label=outcome)
            left += np.nan_to_num(share)
        ax.set_yticks(range(len(rows)), names)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        where = rows["benchmark"].iloc[0]
        ax.set_title(metrics.suite_label(suite) + ("" if where == "all" else f" ({where})"))
        ax.set_xlabel("share of items")
    fig.legend(
        *axes.flat[0].get_legend_handles_labels(), loc="outside lower center", ncol=3, frameon=False
    )
    return fig


def adherence_by_family(summary: pd.DataFrame, order=None, baseline: str | None = None) -> Figure:
    """Mean adherence per task family and experiment (annotated heatmap)."""
    rows = select(summary, suite="adherence", kind="estimate", level="benchmark")
    if rows is None or rows.empty:
        return placeholder("No adherence suite in this study.")
    metric = metrics.primary_metric("adherence", rows["metric"])
    rows = rows[rows["metric"] == metric]
    grid = rows.pivot_table(index="experiment", columns="benchmark", values="mean")
    grid = grid.loc[[e for e in (order or grid.index) if e in grid.index]]
    fig, ax = plt.subplots(
        figsize=(1.1 * grid.shape[1] + 3, 0.45 * grid.shape[0] + 1.6), constrained_layout=True
    )
    sns.heatmap(
        grid,
        annot=True,
        fmt=".0f" if grid.abs().max().max() > 2 else ".2f",
        cmap="viridis",
        ax=ax,
        cbar_kws={"label": metrics.label(metric)},
        xticklabels=True,
        yticklabels=True,
    )
    ax.set_xlabel("task family")
    ax.set_ylabel("")
    return fig
