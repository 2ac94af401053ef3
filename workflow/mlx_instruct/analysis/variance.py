"""Training-seed variance vs item-sampling variance, so "is the difference real or seed luck"
has an answer.

An arm trained at k seeds and scored on the same n items is a crossed design,
y[s, i] = mu + seed_s + item_i + e[s, i]. Two numbers say how much each source moves the
arm's mean:

- the between-seed variance component sigma2_seed, the method-of-moments (two-way ANOVA,
  no replication) estimate (MS_seed - MS_residual) / n, floored at 0; it moves the mean by
  sigma2_seed / k;
- the item-sampling variance of the mean, var_i(seed-averaged paired difference) / n.

The contrast vs the base gets an interval from a crossed ("pigeonhole", Owen 2007)
bootstrap: each resample draws k seeds and n items with replacement, independently, the same
items for the arm and the base so the pairing holds; the percentile interval then includes
seed variance, which the item-only BCa interval of the summary does not. With k = 2 the seed
draw is crude (half the resamples repeat one seed), so the interval is a lower bound on the
seed-inclusive uncertainty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# seed share of the contrast's variance (seed / (seed + item)) below which seed variance is
# "small", above which it "dominates"; between the two it is "comparable"
SMALL_SHARE = 0.2
DOMINANT_SHARE = 0.5


@dataclass(frozen=True)
class Components:
    """Variance components of a k x n (seeds x items) table, in squared outcome units."""

    seed: float  # between-seed variance component sigma2_seed
    residual: float  # seed x item interaction + noise
    item: float  # between-item component (cancels in a paired contrast)


def components(table: np.ndarray) -> Components:
    """Two-way ANOVA without replication, method-of-moments estimates floored at 0."""
    y = np.asarray(table, dtype=float)
    if y.ndim != 2 or y.shape[0] < 2 or y.shape[1] < 2:
        raise ValueError(f"need a seeds x items table with >= 2 of each, got shape {y.shape}")
    k, n = y.shape
    grand = y.mean()
    seed_means, item_means = y.mean(axis=1), y.mean(axis=0)
    residual = y - seed_means[:, None] - item_means[None, :] + grand
    ms_residual = float((residual**2).sum() / ((k - 1) * (n - 1)))
    ms_seed = float(n * ((seed_means - grand) ** 2).sum() / (k - 1))
    ms_item = float(k * ((item_means - grand) ** 2).sum() / (n - 1))
    return Components(
        seed=max(0.0, (ms_seed - ms_residual) / n),
        residual=ms_residual,
        item=max(0.0, (ms_item - ms_residual) / k),
    )


def crossed_bootstrap(
    diffs: np.ndarray, resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> np.ndarray:
    """Resampled means of a k x n table of paired differences, seeds and items drawn
    independently with replacement (multinomial counts, so one einsum does all resamples)."""
    d = np.asarray(diffs, dtype=float)
    k, n = d.shape
    rng = np.random.default_rng(seed)
    seed_counts = rng.multinomial(k, np.full(k, 1 / k), size=resamples)
    item_counts = rng.multinomial(n, np.full(n, 1 / n), size=resamples)
    return np.einsum("bs,si,bi->b", seed_counts, d, item_counts) / (k * n)


def verdict(seed_share: float) -> str:
    """'small' / 'comparable' / 'dominant': the seed share of the contrast's variance."""
    if not np.isfinite(seed_share):
        return "unknown"
    if seed_share < SMALL_SHARE:
        return "small"
    return "dominant" if seed_share > DOMINANT_SHARE else "comparable"


def decompose(
    arm: np.ndarray,
    base: np.ndarray,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """Seed vs item variance of `arm` (k x n) - `base` (n,) and the seed-inclusive interval."""
    arm, base = np.asarray(arm, dtype=float), np.asarray(base, dtype=float)
    if arm.ndim != 2 or arm.shape[1] != base.shape[0]:
        raise ValueError(f"arm {arm.shape} and base {base.shape} do not share the items axis")
    k, n = arm.shape
    diffs = arm - base[None, :]
    parts = components(diffs)
    seed_var_mean = parts.seed / k
    item_var_mean = float(diffs.mean(axis=0).var(ddof=1) / n)
    total = seed_var_mean + item_var_mean
    share = seed_var_mean / total if total > 0 else np.nan
    draws = crossed_bootstrap(diffs, resamples, confidence, seed)
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    item_draws = crossed_bootstrap(diffs.mean(axis=0, keepdims=True), resamples, confidence, seed)
    item_low, item_high = np.quantile(item_draws, [tail, 1 - tail])
    return {
        "n_items": n,
        "n_seeds": k,
        "diff": float(diffs.mean()),
        "seed_sd_means": float(diffs.mean(axis=1).std(ddof=1)),
        "seed_var": parts.seed,
        "residual_var": parts.residual,
        "seed_var_of_mean": seed_var_mean,
        "item_var_of_mean": item_var_mean,
        "seed_share": share,
        "boot_var": float(draws.var(ddof=1)),
        "ci_low": float(low),
        "ci_high": float(high),
        "item_ci_low": float(item_low),
        "item_ci_high": float(item_high),
        "confidence": confidence,
        "resamples": resamples,
        "verdict": verdict(share),
    }
