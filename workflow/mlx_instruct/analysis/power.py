"""What a study can detect: the minimum detectable effect (MDE) of each headline contrast and
the items needed to detect a given effect, from the item-level variances the study measured.

A headline contrast is B - A on one outcome, paired on the item, each arm averaged over its
training seeds (as summary.py does). With d_i the paired difference of item i, sd = sd(d)
(ddof 1) and n items, the two-sided paired t test at level alpha has power

    power(delta) = P(T > t_{1-alpha/2, n-1}) + P(T < -t_{1-alpha/2, n-1}),
    T ~ noncentral t(df = n - 1, nc = delta * sqrt(n) / sd)     (scipy.stats.nct),

the MDE is the delta where power(delta) = target (scipy.optimize.brentq), and the items
needed for an effect is the smallest n whose power reaches the target.

Training seeds add a variance the items cannot average away. With sigma2_X the between-seed
variance component of arm X (variance.components) and k_X its seeds, the contrast's variance
is sd^2 / n + S with S = sigma2_A / k_A + sigma2_B / k_B (the base, untrained, has none), a
design effect deff = 1 + n S / sd^2; the seed-aware MDE is MDE_t * sqrt(deff), and the items
needed solve sd^2 / n + S = sd^2 / n_t (n_t: the items the t test alone needs), which has no
solution when S >= sd^2 / n_t: then more seeds, not more items, are needed. A single-seed
tuned arm cannot estimate its own sigma2, so it borrows the mean sigma2 of the study's
multi-seed arms on that outcome (column `seed_var_source`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as sps

from mlx_instruct.analysis import metrics, variance
from mlx_instruct.analysis.summary import units

ALPHA = 0.05
POWER = 0.8
MAX_ITEMS = 10**7


@dataclass(frozen=True)
class Outcome:
    """One headline outcome: where its rows are in results.parquet and its scale in points."""

    name: str
    suite: str
    benchmark: str  # "all": the suite-level (or derived) unit
    metric: str | None  # None: the suite's primary metric
    scale: float  # multiplies a value to give points (0-100)
    reference: str  # default reference effect: "<points>" or "<percent>%" of A's mean


# The plan's headline outcomes; retention's reference effect is its ">95% = minimal
# forgetting" line (5% of the reference arm's score), the others 5 points.
OUTCOMES = (
    Outcome("adherence", "adherence", "all", None, 1.0, "5"),
    Outcome("ifeval", "benchmarks", "ifeval", "prompt_level_strict_acc", 100.0, "5"),
    Outcome("retention", "retention", "all", "score", 100.0, "5%"),
)

COLUMNS = [
    "outcome", "a", "b", "n_items", "seeds_a", "seeds_b", "sd_diff", "diff", "mde",
    "seed_var", "seed_var_source", "deff", "mde_seeds", "reference_effect", "n_for_diff",
    "n_for_reference", "n_for_diff_seeds", "n_for_reference_seeds", "alpha", "power", "unit",
]  # fmt: skip


def power_paired(effect: float, sd: float, n: float, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired t test for a true mean difference `effect`."""
    if n < 2 or sd <= 0:
        return float("nan")
    df = n - 1
    nc = abs(effect) * math.sqrt(n) / sd
    crit = sps.t.ppf(1 - alpha / 2, df)
    upper, lower = float(sps.nct.sf(crit, df, nc)), float(sps.nct.cdf(-crit, df, nc))
    # scipy's nct gives NaN for a tail at machine-precision 0 or 1: the upper far out (nc in
    # the hundreds), the lower already at df 1 and nc ~14 (scipy 1.17: 1e-16 beside NaN), where
    # one NaN tail once turned a power of 0.74 into 1. Each tail falls back on its own limit.
    upper = upper if np.isfinite(upper) else float(nc > crit)
    return upper + (lower if np.isfinite(lower) else 0.0)


def mde(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest effect the paired t test detects with `power` at n items."""
    if n < 2 or not np.isfinite(sd) or sd <= 0:  # no item varies: the t test is undefined
        return float("nan")
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    high = 2 * z * sd / math.sqrt(n)  # twice the normal-approximation MDE
    while power_paired(high, sd, n, alpha) < power:
        high *= 2
    return float(optimize.brentq(lambda e: power_paired(e, sd, n, alpha) - power, 0.0, high))


def items_needed(
    effect: float, sd: float, alpha: float = ALPHA, power: float = POWER, exact: bool = False
) -> float:
    """Items the paired t test needs to detect `effect` with `power` (ceil unless `exact`,
    which returns the continuous root; inf beyond MAX_ITEMS; nan for a zero effect or sd)."""
    if not (np.isfinite(effect) and np.isfinite(sd)) or effect == 0 or sd <= 0:
        return float("nan")
    if power_paired(effect, sd, 2, alpha) >= power:
        return 2.0
    if power_paired(effect, sd, MAX_ITEMS, alpha) < power:
        return float("inf")
    root = optimize.brentq(lambda n: power_paired(effect, sd, n, alpha) - power, 2, MAX_ITEMS)
    return float(root if exact else math.ceil(root - 1e-9))


def seed_aware(
    effect: float, sd: float, n: int, seed_term: float, alpha: float = ALPHA, power: float = POWER
) -> tuple[float, float, float]:
    """(deff, MDE with the seed term, items needed for `effect` with the seed term)."""
    base_mde = mde(sd, n, alpha, power)
    if not np.isfinite(base_mde):
        return float("nan"), float("nan"), float("nan")
    if not np.isfinite(seed_term) or seed_term <= 0:
        return 1.0, base_mde, items_needed(effect, sd, alpha, power)
    deff = 1 + n * seed_term / sd**2
    n_t = items_needed(effect, sd, alpha, power, exact=True)
    room = sd**2 / n_t - seed_term if np.isfinite(n_t) else -1.0
    needed = math.ceil(sd**2 / room - 1e-9) if room > 0 else float("inf")
    return float(deff), float(base_mde * math.sqrt(deff)), float(needed)


def reference_effect(spec: str, reference_mean: float) -> float:
    """'5' -> 5 points; '5%' -> 5% of the reference arm's mean (in points)."""
    text = str(spec).strip()
    try:
        if text.endswith("%"):
            return abs(float(text[:-1]) / 100 * reference_mean)
        return abs(float(text))
    except ValueError:
        raise ValueError(
            f"effect {spec!r}: expected points (5) or a percent of the reference arm (5%)"
        ) from None


def by_seed(results: pd.DataFrame, outcome: Outcome) -> pd.DataFrame:
    """Items x (experiment, seed) of one outcome, in points (empty when the study lacks it)."""
    rows = results[results["suite"].isin(metrics.RETENTION_SUITES)]
    if outcome.suite != "retention":
        rows = results[results["suite"] == outcome.suite]
    if rows.empty:
        return pd.DataFrame()
    metric = outcome.metric or metrics.primary_metric(outcome.suite, rows["metric"])
    found = [u for u in units(rows) if u[0] == outcome.suite and u[3] == metric]
    chosen = [u for u in found if u[2] == outcome.benchmark] or (
        [u for u in found if u[1] == "benchmark"]
        if outcome.benchmark == "all" and len({u[2] for u in found}) == 1
        else []
    )
    if not chosen:
        return pd.DataFrame()
    table = chosen[0][4].pivot_table(
        index="key", columns=["experiment", "seed"], values="value", aggfunc="mean"
    )
    return table * outcome.scale


def headline(config: dict, meta: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(outcome, A, B): each tuned arm vs the base on adherence and IFEval, and each of the
    config's report.pairs on adherence, IFEval and retention."""
    baseline = meta.loc[meta["is_baseline"], "experiment"].iloc[0]
    tuned = [e for e in meta["experiment"] if e != baseline]
    out = [(o, baseline, e) for o in ("adherence", "ifeval") for e in tuned]
    for first, second in config.get("report", {}).get("pairs", []):
        out += [(o, first, second) for o in ("adherence", "ifeval", "retention")]
    return out


def _arm(table: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """Items x seeds of one experiment (empty when it is not in the table)."""
    if table.empty or experiment not in table.columns.get_level_values("experiment"):
        return pd.DataFrame()
    return table[experiment]


def seed_variances(table: pd.DataFrame, tuned: list[str]) -> dict[str, float]:
    """sigma2_seed of every tuned arm with >= 2 seeds on this outcome (complete items)."""
    out = {}
    for name in tuned:
        arm = _arm(table, name).dropna()
        if arm.shape[1] >= 2 and len(arm) >= 2:
            out[name] = variance.components(arm.to_numpy().T).seed
    return out


def _seed_term(name: str, k: int, baseline: str, own: dict[str, float]) -> tuple[float, str]:
    """(sigma2 / k of one arm, where sigma2 came from): own, pooled, none or base."""
    if name == baseline:
        return 0.0, "base"
    if name in own:
        return own[name] / k, "own"
    if own:
        return float(np.mean(list(own.values()))) / k, "pooled"
    return float("nan"), "none"


def contrast_power(
    table: pd.DataFrame,
    a: str,
    b: str,
    *,
    baseline: str,
    own: dict[str, float],
    reference: str,
    alpha: float = ALPHA,
    power: float = POWER,
) -> dict:
    """One row of the power table: B - A on the items both arms scored at every seed."""
    arm_a, arm_b = _arm(table, a), _arm(table, b)
    if arm_a.empty or arm_b.empty:
        return {}
    both = arm_a.notna().all(axis=1) & arm_b.notna().all(axis=1)
    d = (arm_b[both].mean(axis=1) - arm_a[both].mean(axis=1)).to_numpy()
    n, sd = len(d), float(np.std(d, ddof=1)) if len(d) > 1 else float("nan")
    observed = float(d.mean()) if n else float("nan")
    effect = reference_effect(reference, float(arm_a[both].mean(axis=1).mean()))
    (term_a, src_a), (term_b, src_b) = (
        _seed_term(x, arm.shape[1], baseline, own) for x, arm in ((a, arm_a), (b, arm_b))
    )
    seed_term = term_a + term_b
    sources = sorted({src_a, src_b} - {"base"})
    row = {
        "a": a, "b": b, "n_items": n, "seeds_a": arm_a.shape[1], "seeds_b": arm_b.shape[1],
        "sd_diff": sd, "diff": observed, "mde": mde(sd, n, alpha, power), "seed_var": seed_term,
        "seed_var_source": "+".join(sources) or "base", "reference_effect": effect,
        "n_for_diff": items_needed(observed, sd, alpha, power),
        "n_for_reference": items_needed(effect, sd, alpha, power), "alpha": alpha, "power": power,
    }  # fmt: skip
    if np.isfinite(seed_term):
        deff, row["mde_seeds"], row["n_for_diff_seeds"] = seed_aware(
            observed, sd, n, seed_term, alpha, power
        )
        row["deff"] = deff
        row["n_for_reference_seeds"] = seed_aware(effect, sd, n, seed_term, alpha, power)[2]
    return row


def power_table(
    results: pd.DataFrame,
    config: dict,
    meta: pd.DataFrame,
    effects: dict[str, str] | None = None,
    alpha: float = ALPHA,
    power: float = POWER,
) -> pd.DataFrame:
    """Every headline contrast the study's results support, one row each (COLUMNS)."""
    effects = effects or {}
    known = {o.name for o in OUTCOMES}
    if set(effects) - known:
        raise ValueError(f"--effect: unknown outcome(s) {sorted(set(effects) - known)}; "
                         f"expected one of {sorted(known)}")  # fmt: skip
    baseline = meta.loc[meta["is_baseline"], "experiment"].iloc[0]
    tuned = [e for e in meta["experiment"] if e != baseline]
    tables = {o.name: (o, by_seed(results, o)) for o in OUTCOMES}
    own = {name: seed_variances(t, tuned) for name, (_, t) in tables.items()}
    rows = []
    for name, a, b in headline(config, meta):
        outcome, table = tables[name]
        row = contrast_power(
            table, a, b, baseline=baseline, own=own[name],
            reference=effects.get(name, outcome.reference), alpha=alpha, power=power,
        )  # fmt: skip
        if row:
            rows.append({**row, "outcome": name, "unit": "points"})
    return pd.DataFrame(rows, columns=COLUMNS)


def variance_table(
    results: pd.DataFrame, meta: pd.DataFrame, resamples: int = 2000,
    confidence: float = 0.95, seed: int = 0,
) -> pd.DataFrame:  # fmt: skip
    """Seed vs item variance of each multi-seed tuned arm's contrast vs the base, per outcome."""
    baseline = meta.loc[meta["is_baseline"], "experiment"].iloc[0]
    rows = []
    for outcome in OUTCOMES:
        table = by_seed(results, outcome)
        base = _arm(table, baseline)
        for name in meta["experiment"]:
            arm = _arm(table, name)
            if name == baseline or base.empty or arm.shape[1] < 2:
                continue
            both = arm.notna().all(axis=1) & base.notna().all(axis=1)
            if both.sum() < 2:
                continue
            found = variance.decompose(
                arm[both].to_numpy().T, base[both].mean(axis=1).to_numpy(),
                resamples, confidence, seed,
            )  # fmt: skip
            rows.append({"outcome": outcome.name, "experiment": name, "reference": baseline,
                         **found, "unit": "points"})  # fmt: skip
    return pd.DataFrame(rows)


# the printed table: column -> header
SHOWN = {
    "outcome": "outcome", "a": "A", "b": "B", "n_items": "n", "seeds_a": "kA", "seeds_b": "kB",
    "sd_diff": "sd diff", "diff": "diff B-A", "mde": "MDE", "mde_seeds": "MDE+seeds",
    "reference_effect": "ref effect", "n_for_diff": "n(diff)", "n_for_reference": "n(ref)",
    "n_for_diff_seeds": "n(diff)+seeds", "n_for_reference_seeds": "n(ref)+seeds",
    "seed_var_source": "seed var",
}  # fmt: skip


def render(frame: pd.DataFrame) -> str:
    """The power table as fixed-width text (effects in points, n rounded up)."""
    if frame.empty:
        return "power: no headline contrast in this study's results"
    shown = frame[list(SHOWN)].copy()
    for column in [c for c in SHOWN if c.startswith("n_for")]:
        shown[column] = [f"{v:.0f}" if np.isfinite(v) else ("-" if np.isnan(v) else "inf")
                         for v in shown[column].astype(float)]  # fmt: skip
    return shown.rename(columns=SHOWN).to_string(
        index=False, float_format=lambda v: f"{v:.2f}", na_rep="-"
    )


def parse_effects(specs: list[str] | None) -> dict[str, str]:
    """['adherence=5', 'retention=5%'] -> {'adherence': '5', 'retention': '5%'}."""
    out = {}
    for spec in specs or []:
        name, sep, value = spec.partition("=")
        if not sep or not value:
            raise ValueError(f"--effect {spec!r}: expected OUTCOME=POINTS or OUTCOME=PERCENT%")
        reference_effect(value, 1.0)  # validates the number
        out[name.strip()] = value.strip()
    return out


def write(results_dir, frame: pd.DataFrame, name: str) -> list[str]:
    """<results>/<name>.parquet and .csv, each written atomically."""
    from pathlib import Path

    from mlx_instruct.io import atomic_path

    paths = []
    for suffix, save in ((".parquet", frame.to_parquet), (".csv", frame.to_csv)):
        target = Path(results_dir) / f"{name}{suffix}"
        with atomic_path(target) as tmp:
            save(tmp, index=False)
        paths.append(str(target))
    return paths


VARIANCE_SHOWN = {
    "outcome": "outcome", "experiment": "experiment", "n_items": "n", "n_seeds": "k",
    "diff": "diff vs base", "seed_var_of_mean": "seed var/k", "item_var_of_mean": "item var/n",
    "seed_share": "seed share", "ci_low": "CI low (seeds+items)", "ci_high": "CI high",
    "item_ci_low": "CI low (items)", "item_ci_high": "CI high (items)", "verdict": "seed variance",
}  # fmt: skip


def render_variance(frame: pd.DataFrame) -> str:
    """The seed vs item variance table as fixed-width text."""
    if frame.empty:
        return "variance: no tuned experiment has two or more seeds"
    shown = frame[list(VARIANCE_SHOWN)].rename(columns=VARIANCE_SHOWN)
    return shown.to_string(index=False, float_format=lambda v: f"{v:.2f}", na_rep="-")
