"""Tables about the runs themselves: efficiency and cost (the plan's section 18.2),
sample generations, the qualitative before/after grid, and the weight-update geometry."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlx_instruct.analysis import timing
from mlx_instruct.analysis.report import num
from mlx_instruct.analysis.summary import ordered, pick


def _efficiency(results: pd.DataFrame, experiment: str) -> dict:
    eff = results[(results["suite"] == "efficiency") & (results["experiment"] == experiment)]
    if eff.empty:
        return {}
    eff = eff.assign(
        batch=pd.to_numeric(eff["benchmark"].str.extract(r"(\d+)")[0], errors="coerce")
    )
    by = lambda metric: eff[eff["metric"] == metric].groupby("batch")["value"].mean()  # noqa: E731
    batches = eff["batch"].dropna()
    model = eff[eff["benchmark"] == "model"].groupby("metric")["value"].mean()
    return {
        "small": batches.min(),
        "large": batches.max(),
        "speed": by("tokens_per_s"),
        "memory": by("peak_memory_gb"),
        "latency": by("latency_p50_s"),
        "model": model,
    }


def efficiency_table(results, curves, runs, order=None, summary=None) -> pd.DataFrame:
    """The plan's section 18.2 memory-speed-quality table, filled with measured values:
    generation peak memory and tokens/s (smallest and largest batch), and quality as the
    adherence change and the retention score relative to the base."""
    rows = []
    for experiment in ordered(results["experiment"], order):
        entry = {"config": experiment}
        eff = _efficiency(results, experiment)
        if eff:
            entry["memory (GB)"] = num(eff["memory"].get(eff["small"], np.nan), 2)
            entry[f"tokens/s (batch {eff['small']:g})"] = num(
                eff["speed"].get(eff["small"], np.nan), 1
            )
            if eff["large"] != eff["small"]:
                entry[f"tokens/s (batch {eff['large']:g})"] = num(
                    eff["speed"].get(eff["large"], np.nan), 1
                )
        if summary is not None and not summary.empty:
            quality = pick(summary, "adherence").set_index("experiment")
            if experiment in quality.index:
                entry["quality: adherence \u0394"] = (
                    num(quality.loc[experiment, "diff"], 1, True)
                    if np.isfinite(quality.loc[experiment, "diff"])
                    else "(base)"
                )
            kept = pick(summary, "retention", "score").set_index("experiment")
            if experiment in kept.index:
                entry["retention % of base"] = (
                    f"{kept.loc[experiment, 'ratio'] * 100:.1f}%"
                    if np.isfinite(kept.loc[experiment, "ratio"])
                    else "(base)"
                )
        rows.append(entry)
    return pd.DataFrame(rows).fillna("")


def cost_table(results, curves, runs, order=None) -> pd.DataFrame:
    """What each configuration costs: training throughput, peak memory and wall time,
    trainable (adapter) parameters, size on disk, median generation latency."""
    rows = []
    for experiment in ordered(results["experiment"], order):
        entry = {"config": experiment}
        train = (
            curves[(curves["experiment"] == experiment) & (curves["split"] == "train")]
            if curves is not None and not curves.empty
            else pd.DataFrame()
        )
        entry["train tokens/s"] = (
            num(train.loc[train["metric"] == "tokens_per_s", "value"].median(), 0)
            if not train.empty
            else ""
        )
        entry["train peak memory (GB)"] = (
            num(train.loc[train["metric"] == "peak_memory_gb", "value"].max(), 2)
            if not train.empty
            else ""
        )
        wall = (
            runs.loc[runs["experiment"] == experiment, "wall_time_s"].mean()
            if runs is not None and "wall_time_s" in runs
            else np.nan
        )
        entry["train wall time"] = timing.hms(wall) if np.isfinite(wall) else ""
        eff = _efficiency(results, experiment)
        if eff:
            model = eff["model"]
            entry["adapter params"] = (
                f"{model['adapter_parameters']:,.0f}"
                if model.get("adapter_parameters", 0) > 0
                else ""
            )
            entry["size on disk (GB)"] = (
                f"{model['size_on_disk_gb']:.3g}" if "size_on_disk_gb" in model else ""
            )
            entry[f"latency p50 (s, batch {eff['small']:g})"] = num(
                eff["latency"].get(eff["small"], np.nan), 3
            )
        rows.append(entry)
    frame = pd.DataFrame(rows).fillna("")
    return frame.loc[:, (frame != "").any(axis=0)]


def qualitative_grid(
    generations, suite="seed_prompts", order=None, seed=0, max_chars=500
) -> pd.DataFrame:
    """Long table of before/after responses: prompt, experiment, response (truncated)."""
    data = (
        generations[(generations["suite"] == suite) & (generations["seed"] == seed)]
        if generations is not None and not generations.empty
        else pd.DataFrame()
    )
    if data.empty:
        return pd.DataFrame(columns=["item_id", "prompt", "experiment", "response"])
    data = data.assign(
        response=data["response"]
        .fillna("")
        .map(lambda t: t if len(t) <= max_chars else t[:max_chars].rstrip() + " \u2026")
    )
    if "instruction" in data:  # the plain instruction reads better than the templated prompt
        data = data.assign(
            prompt=data["instruction"].where(
                data["instruction"].notna() & (data["instruction"] != ""), data["prompt"]
            )
        )
    names = ordered(data["experiment"], order)
    data = data.assign(
        _order=data["experiment"].map({e: i for i, e in enumerate(names)})
    ).sort_values(["item_id", "_order"])
    return data[data["experiment"].isin(names)][
        ["item_id", "prompt", "experiment", "response"]
    ].reset_index(drop=True)


def samples_table(samples, experiment, seed=0, prompt_id=None, max_chars=300) -> pd.DataFrame:
    """One run's sample generations at fixed training steps."""
    data = (
        samples[(samples["experiment"] == experiment) & (samples["seed"] == seed)]
        if samples is not None and not samples.empty
        else pd.DataFrame()
    )
    if data.empty:
        return pd.DataFrame(columns=["step", "prompt", "response"])
    if prompt_id is not None:
        data = data[data["prompt_id"] == prompt_id]
    data = data.assign(
        response=data["response"]
        .fillna("")
        .map(lambda t: t if len(t) <= max_chars else t[:max_chars] + " \u2026")
    )
    return data.sort_values(["prompt_id", "step"])[["step", "prompt", "response"]].reset_index(
        drop=True
    )


def subspace_table(subspace) -> pd.DataFrame:
    """Per pair of LoRA runs: phi on the diagonal at k = 1, 4 and the smaller rank, vs chance."""
    if subspace is None or subspace.empty:
        return pd.DataFrame()
    data = subspace[
        (subspace["side"] == "in")
        & (subspace["layer"] != "mean")
        & (subspace["i"] == subspace["j"])
    ]
    out = []
    for pair, sub in data.groupby("pair", sort=False):
        entry = {"pair": pair}
        top = int(sub["i"].max())
        for k in sorted({1, min(4, top), top}):
            at = sub[sub["i"] == k]
            entry[f"\u03c6({k},{k})"] = f"{at['phi'].mean():.2f} (chance {at['chance'].mean():.2f})"
        out.append(entry)
    return pd.DataFrame(out)


def effective_rank_table(delta_ranks, order=None) -> pd.DataFrame:
    """Per experiment: effective rank and 90%-energy rank of delta W (mean, max over matrices)."""
    if delta_ranks is None or delta_ranks.empty:
        return pd.DataFrame()
    data = delta_ranks[delta_ranks["seed"] == 0]
    grouped = data.groupby("experiment").agg(
        rank=("rank", "first"),
        matrices=("effective_rank", "size"),
        layers=("layer", "nunique"),
        erank_mean=("effective_rank", "mean"),
        erank_max=("effective_rank", "max"),
        rank90_mean=("rank90", "mean"),
        max_possible=("rows", "min"),
    )
    grouped = grouped.loc[ordered(grouped.index, order)].reset_index()
    grouped["rank"] = grouped["rank"].map(lambda r: "full" if pd.isna(r) else str(int(r)))
    for column in ("erank_mean", "erank_max", "rank90_mean"):
        grouped[column] = grouped[column].map(lambda v: f"{v:.1f}")
    return grouped.rename(
        columns={
            "erank_mean": "effective rank (mean)",
            "erank_max": "effective rank (max)",
            "rank90_mean": "rank at 90% energy (mean)",
            "max_possible": "smallest matrix dim",
        }
    )
