"""Figures of the weight updates themselves: per-layer delta / grad norm heatmaps, the
parameter-delta histogram (the plan's section 11), LoRA subspace similarity between ranks (Hu et
al. 2021, section 7) and the effective rank of each delta W (Roy & Vetterli 2007)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mlx_instruct.analysis.plotting import BASE_COLOR, palette, placeholder, plt
from mlx_instruct.analysis.summary import ordered

MODULE_ORDER = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _modules(names) -> list[str]:
    names = list(dict.fromkeys(names))
    return [m for m in MODULE_ORDER if m in names] + sorted(
        m for m in names if m not in MODULE_ORDER
    )


def _layer_key(value) -> tuple:
    try:
        return (0, int(value))
    except (TypeError, ValueError):
        return (1, str(value))


def _grid(n: int, ncols: int = 4) -> tuple[int, int]:
    ncols = min(n, ncols)
    return -(-n // ncols), ncols


def layer_heatmaps(
    layer_norms: pd.DataFrame, kind: str = "delta_norm", order=None, seed: int = 0
) -> Figure:
    """Per-layer, per-module norms at the last logged step, one panel per experiment."""
    data = (
        layer_norms[(layer_norms["kind"] == kind) & (layer_norms["seed"] == seed)]
        if layer_norms is not None and not layer_norms.empty
        else pd.DataFrame()
    )
    if data.empty:
        return placeholder(f"No per-layer {kind.replace('_', ' ')} logged in this study.")
    experiments = ordered(data["experiment"], order)
    rows, cols = _grid(len(experiments))
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.3 * cols, 3.0 * rows + 0.4), constrained_layout=True, squeeze=False
    )
    for ax, experiment in zip(axes.flat, experiments, strict=False):
        sub = data[data["experiment"] == experiment]
        last = sub[sub["step"] == sub["step"].max()]
        last = last.assign(module=last["module"].astype(str).str.rsplit(".", n=1).str[-1])
        grid = last.pivot_table(index="layer", columns="module", values="value", aggfunc="mean")
        grid = grid.loc[sorted(grid.index, key=_layer_key), _modules(grid.columns)]
        step = max(1, len(grid) // 16)
        sns.heatmap(
            grid, ax=ax, cmap="magma", cbar_kws={"shrink": 0.8}, xticklabels=True, yticklabels=step
        )
        ax.set_title(f"{experiment} (step {int(sub['step'].max())})", fontsize=10)
        ax.set_xlabel("")
        ax.tick_params(axis="x", rotation=60)
    for ax in list(axes.flat)[len(experiments) :]:
        ax.axis("off")
    fig.suptitle(f"{kind.replace('_', ' ')} per layer and module")
    return fig


def delta_histogram(
    delta_hist: pd.DataFrame, part: str = "delta", order=None, seed: int = 0
) -> Figure:
    """Histogram of sampled entries of delta W per experiment (log counts)."""
    data = (
        delta_hist[(delta_hist["part"] == part) & (delta_hist["seed"] == seed)]
        if delta_hist is not None and not delta_hist.empty
        else pd.DataFrame()
    )
    if data.empty:
        return placeholder("No adapter or full fine-tune weights to measure.")
    experiments = ordered(data["experiment"], order)
    colors = palette(experiments)
    rows, cols = _grid(len(experiments))
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.2 * cols, 2.6 * rows + 0.4), constrained_layout=True, squeeze=False
    )
    for ax, experiment in zip(axes.flat, experiments, strict=False):
        sub = data[data["experiment"] == experiment]
        ax.stairs(
            sub["count"],
            np.append(sub["bin_left"].to_numpy(), sub["bin_right"].iloc[-1]),
            fill=True,
            color=colors[experiment],
            alpha=0.8,
        )
        ax.set_yscale("log")
        ax.set_title(f"{experiment}  (sd {sub['std'].iloc[0]:.2g})", fontsize=10)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
    for ax in list(axes.flat)[len(experiments) :]:
        ax.axis("off")
    fig.supxlabel(
        ("entry of \u0394W" if part == "delta" else f"entry of {part}")
        + " (central 99.9% of sampled entries)"
    )
    return fig


def subspace_similarity(subspace: pd.DataFrame, side: str = "in") -> Figure:
    """phi(i, j) between the top singular directions of delta W for pairs of LoRA runs
    (averaged over layers and modules), and phi on the diagonal against chance."""
    data = (
        subspace[subspace["side"] == side]
        if subspace is not None and not subspace.empty
        else pd.DataFrame()
    )
    if data.empty:
        return placeholder("Needs at least two LoRA ranks (or seeds) with saved adapters.")
    pairs = list(dict.fromkeys(data["pair"]))
    fig = plt.figure(figsize=(3.4 * max(len(pairs), 2), 6.4), constrained_layout=True)
    grid = fig.add_gridspec(2, len(pairs))
    for k, pair in enumerate(pairs):
        sub = data[(data["pair"] == pair) & (data["layer"] == "mean")]
        phi = sub.groupby(["i", "j"])["phi"].mean().unstack("j")
        ax = fig.add_subplot(grid[0, k])
        sns.heatmap(
            phi,
            ax=ax,
            vmin=0,
            vmax=1,
            cmap="viridis",
            cbar=k == len(pairs) - 1,
            xticklabels=max(1, phi.shape[1] // 4),
            yticklabels=max(1, phi.shape[0] // 4),
        )
        first = sub.iloc[0]
        ax.set_title(pair.replace(" vs ", "\nvs "), fontsize=9)
        ax.set_ylabel(f"i (r = {first['rank_a']})")
        ax.set_xlabel(f"j (r = {first['rank_b']})")
    ax = fig.add_subplot(grid[1, :])
    colors = sns.color_palette("colorblind", len(pairs))
    for k, pair in enumerate(pairs):
        diag = data[(data["pair"] == pair) & (data["layer"] != "mean") & (data["i"] == data["j"])]
        curve = diag.groupby("i")[["phi", "chance"]].mean()
        spread = diag.groupby("i")["phi"].quantile([0.1, 0.9]).unstack()
        ax.plot(curve.index, curve["phi"], "o-", color=colors[k], label=pair, ms=3)
        ax.fill_between(spread.index, spread[0.1], spread[0.9], color=colors[k], alpha=0.15)
        ax.plot(curve.index, curve["chance"], ":", color=colors[k], lw=1)
    ax.set_xlabel("top-k directions (i = j = k)")
    ax.set_ylabel("\u03c6(k, k)")
    ax.set_ylim(0, 1.02)
    ax.set_title(
        "Subspace similarity on the diagonal (mean over layers and modules; band: 10-90%; dotted: chance)"
    )
    ax.legend(fontsize=8, ncol=2)
    return fig


def effective_rank(delta_ranks: pd.DataFrame, order=None, seed: int = 0) -> Figure:
    """Left: effective rank of the full fine-tune's delta W per layer and module, with the
    LoRA ranks as reference lines. Right: effective rank of every experiment's delta W."""
    data = (
        delta_ranks[delta_ranks["seed"] == seed]
        if delta_ranks is not None and not delta_ranks.empty
        else pd.DataFrame()
    )
    if data.empty:
        return placeholder("No weight updates to measure.")
    experiments = ordered(data["experiment"], order)
    full = data[data["method"] == "full"]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(12, 4.2), constrained_layout=True, width_ratios=[1.3, 1]
    )
    if full.empty:
        left.text(
            0.5,
            0.5,
            "no full fine-tune in this study",
            transform=left.transAxes,
            ha="center",
            color="#777777",
        )
    else:
        for module in _modules(full["module"]):
            sub = full[full["module"] == module].groupby("layer")["effective_rank"].mean()
            left.plot(sub.index, sub.values, "o-", ms=3, label=module)
        for rank in sorted({int(r) for r in data["rank"].dropna()}):
            left.axhline(rank, color=BASE_COLOR, ls="--", lw=0.8)
            left.annotate(
                f"r = {rank}",
                (full["layer"].max(), rank),
                textcoords="offset points",
                xytext=(4, 2),
                fontsize=8,
                color="#555555",
            )
        left.xaxis.set_major_locator(MaxNLocator(integer=True))
        left.set_xlabel("layer")
        left.set_ylabel("effective rank of \u0394W")
        left.set_title(f"Full fine-tune ({', '.join(dict.fromkeys(full['experiment']))})")
        left.legend(fontsize=8, ncol=2)
    colors = palette(experiments)
    boxes = right.boxplot(
        [data.loc[data["experiment"] == e, "effective_rank"] for e in experiments],
        tick_labels=experiments,
        patch_artist=True,
        flierprops={"markersize": 2},
    )
    for patch, experiment in zip(boxes["boxes"], experiments, strict=True):
        patch.set_facecolor(colors[experiment])
    right.set_yscale("log")
    right.set_xlabel("")
    right.set_ylabel("effective rank of \u0394W (all layers, modules)")
    right.tick_params(axis="x", rotation=30)
    right.set_title("Effective rank by experiment")
    return fig
