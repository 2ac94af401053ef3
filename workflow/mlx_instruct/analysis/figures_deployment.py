"""The deployment section's figure: quality against memory per deployed model and precision.

Why: the deployment stage is optional, so a study without it gets a placeholder that says so.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from mlx_instruct.analysis.deployment import median_of, models, quality
from mlx_instruct.analysis.plotting import placeholder


def pareto(table: pd.DataFrame, summary: pd.DataFrame) -> Figure:
    """Quality against peak memory, one point per model and precision, with the quality
    interval as error bars: the models on the upper-left frontier are the ones to ship."""
    import matplotlib.pyplot as plt

    if table.empty or summary.empty:
        return placeholder("No deployment stage in this study (config: deployment).")
    found = quality(summary)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    markers = {"fused": "o", "merge": "D"}
    for label, variant, source in models(table):
        if label not in found.index:
            continue
        row = found.loc[label]
        mine = table[(table["experiment"] == label) & (table["suite"] == "profile")]
        memory = median_of(mine, "batch1", "peak_memory_gb")
        low, high = row["mean"] - row["ci_low"], row["ci_high"] - row["mean"]
        ax.errorbar(
            memory, row["mean"], yerr=[[max(low, 0)], [max(high, 0)]],
            fmt=markers.get(variant, "s"), capsize=3, label=f"{source} ({variant})",
        )  # fmt: skip
    ax.set_xlabel("peak memory while generating, batch 1 (GB)")
    ax.set_ylabel("instruction adherence (0-100)")
    ax.legend(fontsize=7, loc="best")
    return fig
