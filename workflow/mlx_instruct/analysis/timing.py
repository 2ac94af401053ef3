"""Per-rule run times and memory from Snakemake `benchmark:` files.

Each rule writes results/<study>/benchmarks/<rule>.tsv or benchmarks/<rule>/<wildcards>.tsv
(columns s, h:m:s, max_rss, ... with max_rss in MB). `python -m mlx_instruct.analysis timing --results
results/<study>` prints the table; the report shows it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

COLUMNS = ["rule", "wildcards", "seconds", "max_rss_mb", "cpu_seconds", "repeats", "path"]


def read_benchmark(path: str | Path) -> dict:
    """One benchmark TSV as a row (the mean over `repeat` rows)."""
    frame = pd.read_csv(path, sep="\t", na_values=["-", "NA", ""])
    numeric = frame.apply(pd.to_numeric, errors="coerce")

    def mean(column: str) -> float:
        return (
            float(numeric[column].mean())
            if column in numeric and numeric[column].notna().any()
            else float("nan")
        )

    return {
        "seconds": mean("s"),
        "max_rss_mb": mean("max_rss"),
        "cpu_seconds": mean("cpu_time"),
        "repeats": len(frame),
    }


def timing_table(results: str | Path) -> pd.DataFrame:
    """Every benchmark file under results/<study>/benchmarks, one row each, slowest first."""
    root = Path(results) / "benchmarks"
    rows = []
    for path in sorted(root.rglob("*.tsv")) if root.is_dir() else []:
        parts = path.relative_to(root).with_suffix("").parts
        rule, wildcards = parts[0], "/".join(parts[1:])
        try:
            row = read_benchmark(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            continue
        rows.append(
            {"rule": rule, "wildcards": wildcards, **row, "path": str(path.relative_to(root))}
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sort_values("seconds", ascending=False, na_position="last").reset_index(drop=True)


def by_rule(table: pd.DataFrame) -> pd.DataFrame:
    """Totals per rule: jobs, total and longest seconds, peak RSS."""
    if table.empty:
        return pd.DataFrame(columns=["rule", "jobs", "total_seconds", "max_seconds", "max_rss_mb"])
    grouped = table.groupby("rule", sort=False).agg(
        jobs=("seconds", "size"),
        total_seconds=("seconds", "sum"),
        max_seconds=("seconds", "max"),
        max_rss_mb=("max_rss_mb", "max"),
    )
    return (
        grouped.reset_index().sort_values("total_seconds", ascending=False).reset_index(drop=True)
    )


def hms(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render(table: pd.DataFrame) -> str:
    """A plain-text table for the terminal: one line per job, then the total."""
    if table.empty:
        return "timing: no Snakemake benchmark files yet"
    lines = [f"{'rule':<18} {'wildcards':<32} {'time':>9} {'max RSS':>10}"]
    for row in table.itertuples():
        rss = "-" if row.max_rss_mb != row.max_rss_mb else f"{row.max_rss_mb:,.0f} MB"
        lines.append(f"{row.rule:<18} {row.wildcards or '-':<32} {hms(row.seconds):>9} {rss:>10}")
    lines.append(f"{'total':<18} {len(table)} jobs{'':<24} {hms(table['seconds'].sum()):>9}")
    return "\n".join(lines)
