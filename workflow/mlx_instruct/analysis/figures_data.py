"""Figures of the training data (seed section 9.2): the embedding map and the composite
quality score's distribution, from the data_quality rule's parquet files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from mlx_instruct.analysis.plotting import placeholder, plt


def _source_colors(sources) -> dict[str, tuple]:
    names = list(dict.fromkeys(sources))
    colors = sns.color_palette("colorblind", max(len(names), 1))
    return dict(zip(names, colors, strict=False))


def data_map(points: pd.DataFrame) -> Figure:
    """t-SNE map of the MiniLM instruction embeddings, one colour per source; points of
    over-represented k-means clusters ringed in black and their cluster ids labelled."""
    if points is None or points.empty:
        return placeholder("No embedding map in this study (data_quality not run or embed_max 0).")
    colors = _source_colors(points["source"])
    fig, ax = plt.subplots(figsize=(6.4, 5.0), constrained_layout=True)
    for source, group in points.groupby("source", sort=False):
        ax.scatter(group["x"], group["y"], s=14, color=colors[source], alpha=0.75, label=source)
    marked = points[points["over_represented"]]
    if not marked.empty:
        ax.scatter(
            marked["x"], marked["y"], s=34, facecolors="none", edgecolors="black", lw=0.7,
            label="over-represented cluster",
        )  # fmt: skip
        for cluster, group in marked.groupby("cluster"):
            ax.annotate(
                f"c{cluster}", (group["x"].median(), group["y"].median()),
                fontsize=9, weight="bold", ha="center",
                bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8},
            )  # fmt: skip
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="best", fontsize=8, frameon=True)
    return fig


def quality_scores(scores: pd.DataFrame) -> Figure:
    """Histogram of the composite quality score per source (0.05-wide bins), with the
    per-source mean marked."""
    if scores is None or scores.empty:
        return placeholder("No composite quality scores in this study (data_quality not run).")
    colors = _source_colors(scores["source"])
    fig, ax = plt.subplots(figsize=(6.4, 3.4), constrained_layout=True)
    bins = np.linspace(0, 1, 21)
    for source, group in scores.groupby("source", sort=False):
        ax.hist(group["composite"], bins=bins, alpha=0.55, color=colors[source], label=source)
        ax.axvline(group["composite"].mean(), color=colors[source], ls="--", lw=1.2)
    ax.set_xlabel("composite quality score (0-1; dashed: mean)")
    ax.set_ylabel("training examples")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8)
    return fig
