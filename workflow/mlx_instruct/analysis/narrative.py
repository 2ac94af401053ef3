"""Sentences the paper writes from the numbers: findings, limitations, hypotheses.

Every function reads the summary of a `Study` and returns Markdown; the wording follows the
intervals (a change whose interval spans zero is "not distinguishable from the base"), so the
prose cannot drift from the results it describes.
"""

from __future__ import annotations

import numpy as np

from mlx_instruct.analysis import metrics
from mlx_instruct.analysis.aggregate import rank_sweep
from mlx_instruct.analysis.report import Study, level, listing, num


def change(row, digits: int = 1, scale: float = 1.0, unit: str = "") -> str:
    """`+14.2 points [95% CI +10.2 to +18.1]` for a summary row's contrast."""
    if row is None or not np.isfinite(row.get("diff", np.nan)):
        return "n/a"
    low, high = row["diff_low"] * scale, row["diff_high"] * scale
    interval = (
        f"{level(row) if 'confidence' in row else '95%'} CI {num(low, digits, True)} to {num(high, digits, True)}"
        if np.isfinite(low) and np.isfinite(high)
        else "no interval"
    )
    return f"{num(row['diff'] * scale, digits, True)}{unit} [{interval}]"


def verdict(row, better: str = "higher", worse: str = "lower") -> str:
    """Whether the change is distinguishable from zero, in words, direction-aware."""
    if row is None or not np.isfinite(row.get("diff", np.nan)):
        return "not measured"
    if not (row["diff_low"] > 0 or row["diff_high"] < 0):
        return "not distinguishable from zero"
    return better if row["diff"] > 0 else worse


def full_names(study: Study) -> list[str]:
    return list(study.meta.loc[study.meta["method"] == "full", "experiment"])


def retention_names(study: Study) -> list[str]:
    return [
        e for e in study.tuned if study.meta.set_index("experiment").loc[e, "retention_fraction"]
    ]


# benchmark group -> (display name, citation key) for the retention section's prose
BENCHMARK_SOURCES = {
    "truthfulqa_mc1": ("TruthfulQA", "lin2022truthfulqa"),
    "truthfulqa": ("TruthfulQA", "lin2022truthfulqa"),
    "bbh": ("BIG-Bench Hard", "suzgun2023bbh"),
    "gsm8k": ("GSM8K", "cobbe2021gsm8k"),
    "humaneval": ("HumanEval", "chen2021codex"),
    "mmlu": ("MMLU", "hendrycks2021mmlu"),
    "hellaswag": ("HellaSwag", "zellers2019hellaswag"),
}


def retention_sources(study: Study) -> str:
    """The retention benchmarks this study ran, cited (`TruthfulQA [@lin2022truthfulqa], ...`)."""
    results = study.results
    ran = results.loc[
        results["suite"].isin(metrics.RETENTION_SUITES)
        & results["metric"].isin(metrics.RETENTION_METRICS),  # not IFEval: its own section
        "benchmark",
    ]
    names = []
    for group in dict.fromkeys(metrics.benchmark_group(b) for b in ran.unique()):
        label, key = BENCHMARK_SOURCES.get(group, (group, None))
        names.append(f"{label} [@{key}]" if key else label)
    return listing(list(dict.fromkeys(names))) if names else "no benchmarks"


def findings(study: Study) -> str:
    """The key results as a bullet list."""
    bullets = []
    best = study.best("adherence")
    if best:
        row = study.row(best, "adherence")
        if row["diff_low"] > 0:
            bullets.append(
                f"The largest instruction-adherence gain over the untuned base is **{best}**: {change(row, 1, unit=' points')} on the 0-100 scale."
            )
        else:
            bullets.append(
                f"No tuned experiment's instruction adherence is distinguishable from the base's; the largest point change is **{best}**: {change(row, 1, unit=' points')} on the 0-100 scale."
            )
    kept = [(e, study.row(e, "retention", "score")) for e in study.tuned]
    kept = [(e, r) for e, r in kept if r is not None and np.isfinite(r["ratio"])]
    if kept:
        worst = min(kept, key=lambda item: item[1]["ratio"])
        ratios = [r["ratio"] * 100 for _, r in kept]
        span = (
            f"is {num(ratios[0], 1)}%"
            if len(kept) == 1
            else f"ranges from {num(min(ratios), 1)}% to {num(max(ratios), 1)}%"
        )
        text = f"Capability retention (pooled benchmark score, tuned / base) {span}"
        if worst[1]["diff"] < 0:
            text += (
                f"; the largest drop is **{worst[0]}** ({change(worst[1], 3)}, {verdict(worst[1])})"
            )
        bullets.append(text + ".")
    for first, second in study.pairs:
        rows = {
            s: study.row(second, s, m, kind="pair", reference=first)
            for s, m in (("adherence", None), ("retention", "score"))
        }
        if rows["adherence"] is not None:
            text = f"**{second}** vs **{first}**: adherence {change(rows['adherence'], 1)}, {verdict(rows['adherence'])}"
            if rows["retention"] is not None:
                text += f"; retention score {change(rows['retention'], 3)}, {verdict(rows['retention'])}"
            bullets.append(text + ".")
    drifts = safety_flags(study)
    if drifts:
        bullets.append(
            f"Safety drift beyond the seed's 5-point tolerance with a {level(study.summary)} CI excluding zero: "
            + "; ".join(drifts)
            + "."
        )
    elif study.has("safety"):
        bullets.append(
            f"No refusal rate moved by more than 5 points with a {level(study.summary)} CI excluding zero."
        )
    return (
        "\n".join(f"- {b}" for b in bullets) or "- No comparisons with the base are available yet."
    )


def safety_flags(study: Study, threshold: float = 0.05) -> list[str]:
    rows = study.summary
    if rows.empty:
        return []
    rows = rows[
        (rows["suite"] == "safety")
        & (rows["kind"] == "estimate")
        & (rows["level"] == "benchmark")
        & (rows["metric"] == "refused")
    ]
    flags = []
    for row in rows.itertuples():
        if (
            np.isfinite(row.diff)
            and abs(row.diff) > threshold
            and (row.diff_low > 0 or row.diff_high < 0)
        ):
            what = (
                "over-refusal" if metrics.is_benign(row.benchmark) and row.diff > 0 else "refusal"
            )
            flags.append(
                f"{row.experiment} on {row.benchmark} ({what} {num(row.diff * 100, 0, True)} points)"
            )
    return flags


def sweep_steps(study: Study) -> list[tuple[int, int, dict]]:
    """(lower rank, higher rank, paired adherence contrast higher - lower) along the sweep."""
    sweep = rank_sweep(study.config)
    steps = []
    for (low_name, low), (high_name, high) in zip(sweep, sweep[1:], strict=False):
        row = study.compare(low_name, high_name, "adherence")
        if row:
            steps.append((low, high, row))
    return steps


def sweep_sentence(study: Study) -> str:
    sweep = rank_sweep(study.config)
    if len(sweep) < 2:
        return "This study has fewer than two plain LoRA ranks, so there is no rank sweep."
    gains = [(rank, study.row(name, "adherence")) for name, rank in sweep]
    gains = [(r, row) for r, row in gains if row is not None]
    if not gains:
        return "The rank sweep has no adherence results yet."
    text = (
        "Adherence gain over the base by LoRA rank: "
        + "; ".join(f"r = {r}: {change(row, 1)}" for r, row in gains)
        + "."
    )
    steps = sweep_steps(study)
    if steps:
        text += (
            " Doubling the rank, paired on the item: "
            + "; ".join(
                f"r = {high} vs r = {low}: {change(row, 1)}, {verdict(row)}"
                for low, high, row in steps
            )
            + "."
        )
    return text + agreement_sentence(study)


def response_agreement(study: Study, suite: str = "adherence") -> list[tuple[str, str, int, int]]:
    """(run A, run B, identical responses, items) for the rank sweep's runs at the first seed
    and for one rank at two seeds: how much of what a run learned is set by the rank and how
    much by the training seed (data order, initialisation)."""
    gens = study.table("generations")
    if gens.empty or "response" not in gens:
        return []
    gens = gens[gens["suite"] == suite]
    by_run = {
        (e, int(s)): dict(zip(g["item_id"], g["response"], strict=True))
        for (e, s), g in gens.groupby(["experiment", "seed"])
    }
    names = [name for name, _ in rank_sweep(study.config)]
    seed0 = [
        (n, min(s for e, s in by_run if e == n)) for n in names if any(e == n for e, _ in by_run)
    ]
    pairs = list(zip(seed0, seed0[1:], strict=False))
    for name in names:
        seeds = sorted(s for e, s in by_run if e == name)
        if len(seeds) > 1:
            pairs.append(((name, seeds[0]), (name, seeds[1])))
            break
    out = []
    for a, b in pairs:
        shared = sorted(set(by_run[a]) & set(by_run[b]))
        same = sum(by_run[a][i] == by_run[b][i] for i in shared)
        out.append((f"{a[0]}/s{a[1]}", f"{b[0]}/s{b[1]}", same, len(shared)))
    return out


def agreement_sentence(study: Study) -> str:
    rows = [r for r in response_agreement(study) if r[3]]
    if not rows:
        return ""
    return (
        " Identical adherence responses (greedy decoding): "
        + "; ".join(f"{a} vs {b}: {same} of {n}" for a, b, same, n in rows)
        + "."
    )


def sweep_trend(study: Study) -> str | None:
    """ "rising" when the last rank step still raises adherence (CI above 0), "saturated" when
    it does not, None without a sweep."""
    steps = sweep_steps(study)
    if not steps:
        return None
    return "rising" if steps[-1][2]["diff_low"] > 0 else "saturated"


def geometry_sentences(study: Study) -> str:
    parts = []
    sub = study.table("lora_subspace")
    if not sub.empty:
        diag = sub[
            (sub["side"] == "in") & (sub["layer"] != "mean") & (sub["i"] == 1) & (sub["j"] == 1)
        ]
        for pair, rows in diag.groupby("pair", sort=False):
            parts.append(
                f"{pair}: \u03c6(1, 1) = {num(rows['phi'].mean(), 2)} (chance {num(rows['chance'].mean(), 3)})"
            )
        if parts:
            parts = [
                "The top singular direction of \u0394W is shared far above chance between runs \u2014 "
                + "; ".join(parts)
                + "."
            ]
    ranks = study.table("delta_ranks")
    full = ranks[ranks["method"] == "full"] if not ranks.empty else ranks
    if not full.empty:
        lowrank = ranks[ranks["method"] != "full"]["rank"].dropna()
        top = int(lowrank.max()) if len(lowrank) else None
        erank = full["effective_rank"]
        text = f"The full fine-tune's \u0394W has a mean effective rank of {num(erank.mean(), 1)} (max {num(erank.max(), 1)}; {num(full['rank90'].mean(), 1)} directions hold 90% of its energy) over {full['layer'].nunique()} layers"
        if top:
            share = float((erank > top).mean())
            text += f"; {num(share * 100, 0)}% of its matrices exceed the largest LoRA rank ({top})"
        parts.append(text + ".")
    return " ".join(parts) or "No adapter or full fine-tune weights were available to measure."


def limitations(study: Study) -> str:
    items = []
    source = str(study.config.get("model", {}).get("source", ""))
    if source.startswith("random://"):
        items.append(
            "The model is **randomly initialised** (a smoke study): the numbers test the pipeline, not the science."
        )
    results = study.results
    if not results.empty:
        tests = results[results["suite"] != "efficiency"]
        sizes = (
            tests.assign(key=tests["benchmark"] + "/" + tests["item_id"])
            .groupby("suite")["key"]
            .nunique()
        )
        items.append(
            "Items per suite: "
            + ", ".join(f"{s} {int(n)}" for s, n in sizes.items())
            + "; small suites give wide intervals, and a change inside its interval is not evidence of an effect."
        )
    seeds = study.meta.loc[~study.meta["is_baseline"], "seeds"].map(len)
    multi = list(study.meta.loc[seeds[seeds > 1].index, "experiment"]) if len(seeds) else []
    items.append(
        f"Training seeds: {listing(multi)} ran at several seeds; every other experiment at one, so its interval covers item sampling only, not training-seed variance."
        if multi
        else "Every experiment ran at a single training seed: intervals cover item sampling only, not training-seed variance."
    )
    dominated = _seed_dominated(study)
    if dominated:
        items.append(
            "Training-seed spread exceeds the sampling half-width for "
            + listing(dominated)
            + ": more seeds are needed before ranking those experiments."
        )
    items.append(
        "Adherence is scored by rule-based checkers on verifiable tasks and refusals by a heuristic classifier; both measure form more reliably than helpfulness."
    )
    items.append(
        f"Intervals are {int(study.summary['resamples'].max()) if not study.summary.empty else 0}-resample BCa bootstraps over items (paired on item id, seeds averaged), without correction for the many comparisons shown."
    )
    return "\n".join(f"- {i}" for i in items)


def _seed_dominated(study: Study) -> list[str]:
    rows = study.summary
    if rows.empty:
        return []
    rows = rows[(rows["kind"] == "estimate") & (rows["n_seeds"] > 1) & (rows["benchmark"] == "all")]
    out = []
    for row in rows.itertuples():
        half = (row.ci_high - row.ci_low) / 2
        if np.isfinite(row.seed_sd) and np.isfinite(half) and row.seed_sd > half:
            out.append(f"{row.experiment} ({row.suite})")
    return list(dict.fromkeys(out))


def hypotheses(study: Study) -> str:
    """Next experiments suggested by the numbers."""
    items = []
    agreement = response_agreement(study)
    ranks = [r for r in agreement if r[0].split("/")[0] != r[1].split("/")[0] and r[3]]
    seeds = [r for r in agreement if r[0].split("/")[0] == r[1].split("/")[0] and r[3]]
    if ranks and seeds and seeds[0][2] / seeds[0][3] < min(r[2] / r[3] for r in ranks):
        a, b, same, n = seeds[0]
        items.append(
            f"The training seed changes more responses than the rank does ({a} vs {b}: {same} of {n} identical; neighbouring ranks at one seed: at least {min(r[2] for r in ranks)} of {n}): fed the same batches in the same order, this budget learns nearly the same function at every rank. Compare ranks over several seeds, or train longer, before reading a rank effect."
        )
    steps = sweep_steps(study)
    trend = sweep_trend(study)
    if trend == "saturated":
        low, high, row = steps[-1]
        items.append(
            f"Adherence does not rise from r = {low} to r = {high} ({change(row, 1)}): a finer sweep below r = {low}, or longer training at it, would locate the knee better than higher ranks."
        )
    elif trend == "rising":
        low, high, row = steps[-1]
        items.append(
            f"Adherence still rises from r = {low} to r = {high} ({change(row, 1)}): extend the sweep to r = {high * 2} before concluding LoRA's capacity is exhausted."
        )
    for name in full_names(study):
        for first, second in study.pairs:
            if name != second:
                continue
            row = study.row(second, "retention", "score", kind="pair", reference=first)
            if row is not None and np.isfinite(row["diff"]):
                if row["diff_high"] < 0:
                    items.append(
                        f"{second} forgets more than {first} ({change(row, 3)}): consistent with Biderman et al. (2024); test whether a lower learning rate or the retention mix closes the gap."
                    )
                else:
                    items.append(
                        f"{second} and {first} are not distinguishable on retention ({change(row, 3)}): forgetting may need more steps or larger evaluation sets to appear."
                    )
    for name in retention_names(study):
        for first, second in study.pairs:
            if second != name:
                continue
            keep = study.row(second, "retention", "score", kind="pair", reference=first)
            learn = study.row(second, "adherence", kind="pair", reference=first)
            if keep is not None and learn is not None:
                items.append(
                    f"The retention mix changes retention by {change(keep, 3)} and adherence by {change(learn, 1)} relative to {first}; vary the mix fraction to trace this trade-off curve."
                )
    if safety_flags(study):
        items.append(
            "Refusal calibration moved: add refusal examples to the mix, or test whether the drift scales with rank / learning rate."
        )
    return "\n".join(f"- {i}" for i in items) or "- Too few comparisons to suggest follow-ups."


def provenance_lines(study: Study, record: dict) -> str:
    git, hw = record["git"], record["hardware"]
    dirty = " (with uncommitted changes)" if git.get("dirty") else ""
    return "\n".join(
        [
            f"- Git commit: `{git.get('commit', 'unknown')}`{dirty} on branch `{git.get('branch')}`.",
            f"- Report rendered on: {hw['system']}, {hw['machine']}, {hw['cpu']} ({hw['cpus']} CPUs, {hw['memory_gb']} GB), Python {hw['python']}.",
            "- Packages: " + ", ".join(f"{k} {v}" for k, v in record["packages"].items()) + ".",
            f"- Results folder: `{study.dir}`.",
        ]
    )
