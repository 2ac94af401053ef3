"""The extension experiments' figure: each arm's loss curves and throughput beside its
control's (the arms and controls come from `analysis.extensions`)."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from mlx_instruct.analysis.extensions import Arm
from mlx_instruct.analysis.plotting import _ema, curve, palette, placeholder, plt

CURVE_PANELS = (
    ("train", "loss", "training loss (raw, smoothed)"),
    ("val", "val_loss", "validation loss"),
    ("train", "tokens_per_s", "training tokens/s (smoothed)"),
)


def curves(curves: pd.DataFrame, found: list[Arm], smooth: float = 0.8) -> Figure:
    """Per arm (rows): training loss, validation loss and throughput of the arm and its
    control at their first shared seed."""
    if not found or curves is None or curves.empty:
        return placeholder("No extension arm (one training setting changed) in this study.")
    fig, axes = plt.subplots(
        len(found), 3, figsize=(12, 3.2 * len(found)), squeeze=False, constrained_layout=True
    )
    for axrow, arm in zip(axes, found, strict=True):
        colors = palette([arm.control, arm.arm])
        for ax, (split, metric, title) in zip(axrow, CURVE_PANELS, strict=True):
            ax.set_title(f"{arm.arm}: {title}", fontsize=9)
            ax.set_xlabel("step")
            for name in (arm.control, arm.arm):
                run = curves[
                    (curves["experiment"] == name) & (curves["seed"] == arm.seeds[0])
                    & (curves["split"] == split) & (curves["metric"] == metric)
                ].sort_values("step")  # fmt: skip
                if run.empty:
                    continue
                values = run["value"].to_numpy()
                if split == "train":
                    if metric == "loss":
                        ax.plot(run["step"], values, color=colors[name], alpha=0.25, lw=0.8)
                    values = _ema(values, smooth)
                curve(ax, run["step"], values, colors[name], name, split)
            ax.legend(fontsize=7, frameon=False)
    return fig
