"""The deployment section's tables, from deployment.parquet and its summary (the figure:
figures_deployment.py).

Why a module of its own: the deployment stage (mlx_instruct.deploy) is optional, so every
function here returns an empty table or a placeholder figure for a study without it, and
the rest of the analysis never reads these files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlx_instruct.analysis.report import ci, diff, num
from mlx_instruct.analysis.summary import pick

PRECISIONS = {"fused": "training dtype", "merge": "training dtype"}


def median_of(rows: pd.DataFrame, benchmark: str, metric: str) -> float:
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


def adherence_drift(summary: pd.DataFrame) -> pd.DataFrame:
    """Adherence of each quantized or merged model against its source, paired per item: the
    deployment's headline, in the Summary and the Deployment section alike."""
    if summary.empty:
        return pd.DataFrame()
    return pick(summary[summary["kind"] == "pair"], "adherence", kind="pair")


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
            "disk GB": num(median_of(mine, "model", "size_on_disk_gb"), 3),
            "peak GB (batch 1)": num(median_of(mine, "batch1", "peak_memory_gb"), 3),
            "TTFT s": num(median_of(mine, "batch1", "ttft_s"), 3),
            "prompt tok/s": num(median_of(mine, "batch1", "prompt_tokens_per_s"), 0),
            "decode tok/s": num(median_of(mine, "batch1", "decode_tokens_per_s"), 1),
        }
        for name in batch:
            entry[f"tok/s ({name.replace('batch', 'batch ')})"] = num(
                median_of(mine, name, "tokens_per_s"), 1
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
                    num(median_of(mine, level, f"latency_{p}_s"), 2) for p in ("p50", "p95", "p99")
                ),
                "TTFT p50 s": num(median_of(mine, level, "ttft_p50_s"), 3),
                "tokens/s": num(median_of(mine, level, "throughput_tokens_per_s"), 1),
                "error rate": num(median_of(mine, level, "error_rate"), 2),
                "server up after": "",
            }
        )
    for probe in (b for b in rows["benchmark"].unique() if not b[1:].isdigit()):
        mine = rows[rows["benchmark"] == probe]
        status = median_of(mine, probe, "http_status")
        rate = median_of(mine, probe, "error_rate")
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
                if median_of(mine, probe, "server_alive_after") == 1
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
                "tokens/s": num(median_of(mine, name, "tokens_per_s"), 1),
                "speed-up": num(median_of(mine, name, "speedup"), 2) if name != "no-draft" else "",
                "acceptance": num(median_of(mine, name, "acceptance"), 2)
                if name != "no-draft"
                else "",
                "identical outputs": f"{int(same.sum())} of {len(same)}" if len(same) else "",
            }
        )
    return pd.DataFrame(out)
