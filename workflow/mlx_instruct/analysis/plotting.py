"""Shared plotting style: the seaborn theme, one colour per experiment, placeholders for
missing data, smoothing and interval markers. Headless (Agg) unless a notebook backend runs."""

from __future__ import annotations

import matplotlib

if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

sns.set_theme(style="whitegrid", context="paper", font_scale=1.05)
BASE_COLOR = "#7f7f7f"


def palette(order, baseline: str | None = None) -> dict[str, tuple]:
    """One stable colour per experiment (the base in grey) across every figure."""
    colors = sns.color_palette("colorblind", max(len(order), 1))
    tuned = [e for e in order if e != baseline]
    mapping = {e: colors[i % len(colors)] for i, e in enumerate(tuned)}
    if baseline is not None:
        mapping[baseline] = BASE_COLOR
    return mapping


def placeholder(message: str, size=(6.0, 2.0)) -> Figure:
    fig, ax = plt.subplots(figsize=size)
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=11, color="#555555")
    return fig


def _ema(values: np.ndarray, weight: float) -> np.ndarray:
    out, last = np.empty(len(values)), None
    for i, value in enumerate(values):
        last = value if last is None else weight * last + (1 - weight) * value
        out[i] = last
    return out


def curve(ax, steps, values, color, label, split: str, style: str = "-") -> None:
    """One run's curve in the training figures' style (markers on validation points)."""
    ax.plot(
        steps, values, style, color=color, lw=1.6, label=label,
        marker="o" if split == "val" else None, ms=3,
    )  # fmt: skip


def _errorbar(ax, x, row, color, label=None, marker="o", column="diff", scale=1.0):
    low, high = (
        row[f"{column}_low" if column == "diff" else "ci_low"],
        row[f"{column}_high" if column == "diff" else "ci_high"],
    )
    value = row[column] if column == "diff" else row["mean"]
    err = (
        [[max(value - low, 0) * scale], [max(high - value, 0) * scale]]
        if np.isfinite(low) and np.isfinite(high)
        else None
    )
    ax.errorbar(
        [x], [value * scale], yerr=err, fmt=marker, color=color, capsize=3, label=label, ms=6
    )
