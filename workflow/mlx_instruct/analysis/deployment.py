"""The deployment section's tables and figure, from deployment.parquet and its summary.

Why a module of its own: the deployment stage (mlx_instruct.deploy) is optional, so every
function here returns an empty table or a placeholder figure for a study without it, and
the rest of the analysis never reads these files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mlx_instruct.analysis.plotting import placeholder
from mlx_instruct.analysis.report import ci, diff, num
from mlx_instruct.analysis.summary import pick

PRECISIONS = {"fused": "training dtype", "merge": "training dtype"}


def _median(rows: pd.DataFrame, benchmark: str, metric: str) -> float:
    found = rows[(rows["benchmark"] == benchmark) & (rows["metric"] == metric)]["value"]
    return float(found.median()) if len(found) else np.nan


def models(table: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(label, variant, source) of every profiled model, in export order."""
    rows = table[table["suite"] == "profile"]
    seen = rows[["experiment", "variant", "source"]].drop_duplicates()
    return [tuple(row) for row in seen.itertuples(index=False)]


def quality(summary: pd.DataFrame, suite: str = "adherence") -> pd.DataFrame:
    """Per model: the suite's primary estimate (with interval) and its change vs the base."""
    return pick(summary, suite).set_index("experiment")


def deployment_table(table: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """The plan's memory-speed-quality table, one row per exported model and precision:
    weights on disk, peak memory and speed at batch 1 (time to first token, prompt and
    decode tokens/s) and at the study's batch, quality with its interval, and the paired
    change against the same run in its training dtype."""
    if table.empty:
        return pd.DataFrame()
    found = quality(summary)
    pairs = summary[summary["kind"] == "pair"] if not summary.empty else summary
    rows = []
    for label, variant, source in models(table):
        mine = table[(table["experiment"] == label) & (table["suite"] == "profile")]
        batch = sorted(
            b for b in mine["benchmark"].unique() if b.startswith("batch") and b != "batch1"
        )
        entry = {
            "model": source,
            "precision": PRECISIONS.get(variant, variant),
            "disk GB": num(_median(mine, "model", "size_on_disk_gb"), 3),
            "peak GB (batch 1)": num(_median(mine, "batch1", "peak_memory_gb"), 3),
            "TTFT s": num(_median(mine, "batch1", "ttft_s"), 3),
            "prompt tok/s": num(_median(mine, "batch1", "prompt_tokens_per_s"), 0),
            "decode tok/s": num(_median(mine, "batch1", "decode_tokens_per_s"), 1),
        }
        for name in batch:
            entry[f"tok/s ({name.replace('batch', 'batch ')})"] = num(
                _median(mine, name, "tokens_per_s"), 1
            )
        row = found.loc[label] if label in found.index else None
        entry["adherence"] = (
            f"{num(row['mean'], 1)} {ci(row['ci_low'], row['ci_high'], 1)}"
            if row is not None
            else ""
        )
        own = pairs[(pairs["experiment"] == label) & (pairs["reference"] == source)]
        own = pick(own, "adherence", kind="pair")
        entry["vs training dtype"] = diff(own.iloc[0], 1) if len(own) else ""
        rows.append(entry)
    return pd.DataFrame(rows).fillna("")


def drift_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Every pair of the deployment (variant vs fused source, merge vs parent), per suite:
    the paired change with its interval and the items improved / unchanged / regressed."""
    if summary.empty:
        return pd.DataFrame()
    pairs = summary[summary["kind"] == "pair"]
    rows = []
    for suite in pairs["suite"].unique():
        for _, row in pick(pairs, suite, kind="pair").iterrows():
            counts = (row["improved"], row["unchanged"], row["regressed"])
            rows.append(
                {
                    "model": row["experiment"],
                    "against": row["reference"],
                    "suite": suite,
                    "metric": row["metric"],
                    "change": diff(row, 2),
                    "improved / unchanged / regressed": " / ".join(
                        "" if pd.isna(c) else f"{int(c)}" for c in counts
                    ),
                }
            )
    return pd.DataFrame(rows)


def serving_table(table: pd.DataFrame) -> pd.DataFrame:
    """mlx_lm.server under load: one row per concurrency level, then each failure probe."""
    rows = table[table["suite"] == "loadtest"] if not table.empty else table
    if rows.empty:
        return pd.DataFrame()
    levels = sorted(
        (b for b in rows["benchmark"].unique() if b[1:].isdigit()), key=lambda b: int(b[1:])
    )
    out = []
    for level in levels:
        mine = rows[rows["benchmark"] == level]
        out.append(
            {
                "load": f"{level[1:]} concurrent",
                "latency p50 / p95 / p99 s": " / ".join(
                    num(_median(mine, level, f"latency_{p}_s"), 2) for p in ("p50", "p95", "p99")
                ),
                "TTFT p50 s": num(_median(mine, level, "ttft_p50_s"), 3),
                "tokens/s": num(_median(mine, level, "throughput_tokens_per_s"), 1),
                "error rate": num(_median(mine, level, "error_rate"), 2),
                "server up after": "",
            }
        )
    for probe in (b for b in rows["benchmark"].unique() if not b[1:].isdigit()):
        mine = rows[rows["benchmark"] == probe]
        status = _median(mine, probe, "http_status")
        rate = _median(mine, probe, "error_rate")
        out.append(
            {
                "load": probe.replace("_", " "),
                "latency p50 / p95 / p99 s": "",
                "TTFT p50 s": "",
                "tokens/s": "",
                "error rate": num(rate, 2)
                if np.isfinite(rate)
                else f"HTTP {status:.0f}"
                if status
                else "timed out",
                "server up after": "yes"
                if _median(mine, probe, "server_alive_after") == 1
                else "no",
            }
        )
    return pd.DataFrame(out)


def speculative_table(table: pd.DataFrame) -> pd.DataFrame:
    """Decode speed with and without the draft, acceptance and greedy identity, per K."""
    rows = table[table["suite"] == "speculative"] if not table.empty else table
    if rows.empty:
        return pd.DataFrame()
    out = []
    for name in sorted(rows["benchmark"].unique(), key=lambda b: (b != "no-draft", b)):
        mine = rows[rows["benchmark"] == name]
        same = mine[mine["metric"] == "identical"]["value"]
        out.append(
            {
                "decoding": "target alone" if name == "no-draft" else f"draft, {name[1:]} tokens",
                "tokens/s": num(_median(mine, name, "tokens_per_s"), 1),
                "speed-up": num(_median(mine, name, "speedup"), 2) if name != "no-draft" else "",
                "acceptance": num(_median(mine, name, "acceptance"), 2)
                if name != "no-draft"
                else "",
                "identical outputs": f"{int(same.sum())} of {len(same)}" if len(same) else "",
            }
        )
    return pd.DataFrame(out)


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
        memory = _median(mine, "batch1", "peak_memory_gb")
        low, high = row["mean"] - row["ci_low"], row["ci_high"] - row["mean"]
        ax.errorbar(
            memory, row["mean"], yerr=[[max(low, 0)], [max(high, 0)]],
            fmt=markers.get(variant, "s"), capsize=3, label=f"{source} ({variant})",
        )  # fmt: skip
    ax.set_xlabel("peak memory while generating, batch 1 (GB)")
    ax.set_ylabel("instruction adherence (0-100)")
    ax.legend(fontsize=7, loc="best")
    return fig
