"""What the paper's code cells use: one `Study` (every table of a results folder, loaded
lazily) and formatting helpers, so each number in the prose is computed, never typed."""

from __future__ import annotations

import json
import math
import os
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from mlx_instruct.analysis import tidy, timing
from mlx_instruct.config import DEFAULT_TRAINING

ENV = "MLX_INSTRUCT_RESULTS"
CONFIG_ENV = (
    "MLX_INSTRUCT_CONFIG"  # optional: the study config, else <results>/config.resolved.yaml
)
ROOT = Path(__file__).resolve().parents[3]


def results_dir(default: str | Path | None = None) -> Path:
    """The study folder the report is about: $MLX_INSTRUCT_RESULTS, else results/default."""
    path = Path(os.environ.get(ENV) or default or ROOT / "results" / "default")
    if not path.is_absolute() and not path.exists():
        path = ROOT / path
    return path


class Markdown:
    """Text shown as Markdown by Jupyter (text/markdown) and by analysis.knit alike."""

    def __init__(self, text: str):
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", "<br>")


def md_table(frame: pd.DataFrame, align: str | None = None) -> str:
    """A pipe table (Pandoc/Quarto Markdown) without needing `tabulate`."""
    if frame is None or frame.empty:
        columns = (
            [str(c) for c in frame.columns]
            if frame is not None and len(frame.columns)
            else ["note"]
        )
        return (
            "| "
            + " | ".join(columns)
            + " |\n|"
            + "|".join(":---" for _ in columns)
            + "|\n| "
            + " | ".join(["no data in this study"] + [""] * (len(columns) - 1))
            + " |"
        )
    columns = [str(c) for c in frame.columns]
    if align is None:
        align = "".join(
            "r" if pd.api.types.is_numeric_dtype(frame[c]) else "l" for c in frame.columns
        )
    rows = [[_cell(v) for v in row] for row in frame.itertuples(index=False)]
    # A wide pipe table takes the page width with each column's share set by its dashes:
    # size them by content (the longest cell, at least the header's longest word), so a
    # column of names is not squeezed to the width of a column of single digits (+2: the
    # cell's padding).
    widths = [
        2 + min(40, max([3, *(len(w) for w in c.split())] + [len(r[k]) for r in rows]))
        for k, c in enumerate(columns)
    ]
    rule = [
        "-" * (w - 1) + ":" if a == "r" else ":" + "-" * (w - 1)
        for a, w in zip(align, widths, strict=True)
    ]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def table(frame: pd.DataFrame) -> Markdown:
    return Markdown(md_table(frame))


class FigureFile:
    """A figure the `figures` rule wrote (figures/<name>.png, with its JSON sidecar naming
    the function that drew it). The paper shows these files rather than drawing again, so
    each figure has one path from data to pixels; `_repr_png_` displays it in Jupyter and
    analysis.knit alike, captioned by its cell's `fig-cap`."""

    def __init__(self, path: Path):
        self.path = path
        self.sidecar = path.with_suffix(".json")

    def _repr_png_(self) -> bytes:
        return self.path.read_bytes()

    def __repr__(self) -> str:
        return f"FigureFile({str(self.path)!r})"


# --- numbers in prose ------------------------------------------------------------------


def num(value, digits: int = 2, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return text.replace("-", "\u2212")


def ci(low, high, digits: int = 2, signed: bool = False) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "[n/a]"
    return f"[{num(low, digits, signed)}, {num(high, digits, signed)}]"


def est(row, digits: int = 2, scale: float = 1.0, missing: str = "n/a") -> str:
    """`0.52 [0.48, 0.56]` for an estimate row of the summary (`missing` without a row)."""
    if row is None:
        return missing
    return f"{num(row['mean'] * scale, digits)} {ci(row['ci_low'] * scale, row['ci_high'] * scale, digits)}"


def diff(row, digits: int = 2, scale: float = 1.0, missing: str = "n/a") -> str:
    """`+3.10 [+1.00, +5.20]` for the contrast of a summary row (`missing` without one)."""
    if row is None or not np.isfinite(row.get("diff", np.nan)):
        return missing
    return f"{num(row['diff'] * scale, digits, True)} {ci(row['diff_low'] * scale, row['diff_high'] * scale, digits, True)}"


def level(summary_or_row) -> str:
    """The interval's confidence level as text ("95%"), from the summary's `confidence`."""
    try:
        value = summary_or_row["confidence"]
        value = float(value.iloc[0] if hasattr(value, "iloc") else value)
    except (KeyError, IndexError, TypeError, ValueError):
        value = 0.95
    return f"{value * 100:g}%" if np.isfinite(value) else "95%"


def listing(items) -> str:
    items = [str(i) for i in items]
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + f" and {items[-1]}"


def _read(path: Path, kind: str = "parquet") -> pd.DataFrame:
    if not path.is_file():
        return pd.DataFrame()
    return pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path)


class Study:
    """Every table of one results folder, loaded on first use."""

    def __init__(self, results: str | Path | None = None, config: dict | None = None):
        self.dir = results_dir(results)
        self.config = config or tidy.study_config(self.dir, os.environ.get(CONFIG_ENV) or None)
        self.name = self.config["study"]
        self.title = self.config.get("report", {}).get("title", f"Study {self.name}")
        self.meta = tidy.experiments(self.config)
        self.baseline = self.meta.loc[self.meta["is_baseline"], "experiment"].iloc[0]
        self.order = list(self.meta["experiment"])
        self.tuned = [e for e in self.order if e != self.baseline]
        self.pairs = [tuple(p) for p in self.config.get("report", {}).get("pairs", [])]
        self.full = list(self.meta.loc[self.meta["method"] == "full", "experiment"])
        mixed = self.meta.set_index("experiment")["retention_fraction"]
        self.retention_mixed = [e for e in self.tuned if mixed[e]]

    def __repr__(self) -> str:
        return f"Study({self.name!r}, {self.dir})"

    @cached_property
    def results(self) -> pd.DataFrame:
        return _read(self.dir / "results.parquet")

    @cached_property
    def summary(self) -> pd.DataFrame:
        return _read(self.dir / "summary.csv", "csv")

    def table(self, name: str) -> pd.DataFrame:
        return _read(self.dir / f"{name}.parquet")

    @cached_property
    def deployment(self) -> pd.DataFrame:
        """deployment.parquet (the optional deployment stage; empty without it)."""
        return self.table("deployment")

    @cached_property
    def deployment_summary(self) -> pd.DataFrame:
        return _read(self.dir / "deployment_summary.csv", "csv")

    @cached_property
    def curves(self) -> pd.DataFrame:
        return self.table("training_curves")

    @cached_property
    def layer_norms(self) -> pd.DataFrame:
        return self.table("layer_norms")

    @cached_property
    def runs(self) -> pd.DataFrame:
        return self.table("runs")

    @cached_property
    def timing(self) -> pd.DataFrame:
        return timing.timing_table(self.dir)

    @cached_property
    def data_stats(self) -> dict:
        path = self.dir / "data" / "stats.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    @cached_property
    def boot(self):
        from mlx_instruct.analysis.stats import Bootstrap

        return Bootstrap.from_config(self.config)

    @cached_property
    def training(self) -> dict:
        """The study's training settings with the package defaults filled in."""
        return {**DEFAULT_TRAINING, **self.config.get("training", {})}

    def figure(self, name: str) -> FigureFile:
        """figures/<name>.png as the `figures` rule wrote it (artifacts.FIGURES names them)."""
        path = self.dir / "figures" / f"{name}.png"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: the report shows the figures the `figures` rule wrote; run "
                f"`python -m mlx_instruct.analysis figures --results {self.dir}` first"
            )
        return FigureFile(path)

    def compare(
        self, first: str, second: str, suite: str, metric: str | None = None, benchmark: str = "all"
    ) -> dict | None:
        """second - first (paired BCa), computed now from the results table."""
        from mlx_instruct.analysis.summary import compare

        if self.results.empty:
            return None
        return compare(self.results, first, second, suite, metric, benchmark, self.boot) or None

    def has(self, suite: str) -> bool:
        return not self.summary.empty and suite in set(self.summary["suite"])

    def row(
        self,
        experiment: str,
        suite: str,
        metric: str | None = None,
        benchmark: str = "all",
        kind: str = "estimate",
        reference: str | None = None,
    ):
        """One summary row (None when absent). benchmark "all" falls back to the only one."""
        from mlx_instruct.analysis.summary import pick

        frame = self.summary
        if frame.empty:
            return None
        frame = frame[frame["experiment"] == experiment]
        if reference is not None:
            frame = frame[frame["reference"] == reference]
        rows = pick(frame, suite, metric, benchmark, kind)
        return None if rows.empty else rows.iloc[0]

    def value(self, experiment: str, suite: str, column: str = "mean", **kw) -> float:
        row = self.row(experiment, suite, **kw)
        return float(row[column]) if row is not None and pd.notna(row[column]) else float("nan")

    def best(
        self, suite: str, metric: str | None = None, column: str = "diff", benchmark: str = "all"
    ) -> str | None:
        """The tuned experiment with the best contrast vs the base (direction-aware)."""
        scores = {
            e: self.value(e, suite, column, metric=metric, benchmark=benchmark) for e in self.tuned
        }
        scores = {e: v for e, v in scores.items() if np.isfinite(v)}
        if not scores:
            return None
        sign = self.row(next(iter(scores)), suite, metric=metric, benchmark=benchmark)["direction"]
        return max(scores, key=lambda e: scores[e] * sign)
