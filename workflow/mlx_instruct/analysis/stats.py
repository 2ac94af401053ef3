"""Bootstrap confidence intervals, paired contrasts and the summary table.

Intervals are BCa (Efron 1987) from `scipy.stats.bootstrap`, seeded so a rerun gives the same
numbers. Each experiment's items are first averaged over its training seeds (the paired test
compares like items), and the spread of the per-seed means is reported beside the interval,
so training-seed variance is shown next to sampling variance. Degenerate inputs (all values
equal, or fewer than two) get a zero-width or missing interval, named in `ci_method`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class Bootstrap:
    resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0

    @classmethod
    def from_config(cls, config: dict) -> Bootstrap:
        spec = config.get("evaluation", {}).get("bootstrap", {})
        return cls(
            int(spec.get("resamples", 2000)),
            float(spec.get("confidence", 0.95)),
            int(spec.get("seed", 0)),
        )


@dataclass(frozen=True)
class CI:
    estimate: float
    low: float
    high: float
    method: str

    @property
    def excludes_zero(self) -> bool:
        return bool(
            np.isfinite(self.low) and np.isfinite(self.high) and (self.low > 0 or self.high < 0)
        )


def _mean(x, axis=-1):
    return np.mean(x, axis=axis)


def _mean_diff(x, y, axis=-1):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _ratio(sums, counts, axis=-1):
    return np.sum(sums, axis=axis) / np.sum(counts, axis=axis)


def _ratio_diff(sums_x, sums_y, counts, axis=-1):
    return (np.sum(sums_x, axis=axis) - np.sum(sums_y, axis=axis)) / np.sum(counts, axis=axis)


def _bootstrap(
    data: tuple[np.ndarray, ...],
    statistic,
    estimate: float,
    paired: bool,
    boot: Bootstrap,
    degenerate: bool | None = None,
) -> CI:
    """BCa, falling back to the percentile interval where BCa is undefined. `degenerate`
    overrides the check for a statistic whose resamples cannot vary."""
    if min(len(sample) for sample in data) < 2:
        return CI(estimate, np.nan, np.nan, "n<2")
    if degenerate is None:
        degenerate = all(np.ptp(sample) == 0 for sample in data) or (
            paired and np.ptp(data[0] - data[1]) == 0
        )
    if degenerate:
        return CI(estimate, estimate, estimate, "degenerate")
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = sps.bootstrap(
                data,
                statistic,
                n_resamples=boot.resamples,
                confidence_level=boot.confidence,
                method=method,
                paired=paired,
                vectorized=True,
                rng=np.random.default_rng(boot.seed),
            )
        low, high = (
            float(v) for v in (result.confidence_interval.low, result.confidence_interval.high)
        )
        if np.isfinite(low) and np.isfinite(high):
            return CI(estimate, low, high, method)
    return CI(estimate, np.nan, np.nan, "failed")


def mean_ci(x, boot: Bootstrap = Bootstrap()) -> CI:
    """The mean with a BCa interval."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return CI(np.nan, np.nan, np.nan, "n<2")
    return _bootstrap((x,), _mean, float(x.mean()), False, boot)


def paired_diff_ci(x, y, boot: Bootstrap = Bootstrap()) -> CI:
    """mean(x - y) over paired items with a BCa interval (items resampled jointly)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in shape: {x.shape} vs {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) == 0:
        return CI(np.nan, np.nan, np.nan, "n<2")
    return _bootstrap((x, y), _mean_diff, float(x.mean() - y.mean()), True, boot)


def _cluster_sums(clusters, *values) -> tuple[np.ndarray, ...]:
    """Per cluster: the sum of each value array, then the item count."""
    _, index = np.unique(np.asarray(clusters), return_inverse=True)
    sums = tuple(np.bincount(index, weights=v) for v in values)
    return (*sums, np.bincount(index).astype(float))


def cluster_mean_ci(x, clusters, boot: Bootstrap = Bootstrap()) -> CI:
    """The mean of items that come in clusters (the instructions of one IFEval prompt),
    resampling whole clusters: items of one response are not independent, and resampling
    them one by one makes the interval too narrow (tests/test_analysis.py measures it)."""
    x, clusters = np.asarray(x, dtype=float), np.asarray(clusters)
    keep = np.isfinite(x)
    if not keep.any():
        return CI(np.nan, np.nan, np.nan, "n<2")
    sums, counts = _cluster_sums(clusters[keep], x[keep])
    return _bootstrap(
        (sums, counts), _ratio, float(x[keep].mean()), True, boot, np.ptp(sums / counts) == 0
    )


def cluster_paired_diff_ci(x, y, clusters, boot: Bootstrap = Bootstrap()) -> CI:
    """mean(x - y) over paired clustered items, resampling whole clusters."""
    x, y, clusters = np.asarray(x, dtype=float), np.asarray(y, dtype=float), np.asarray(clusters)
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.any():
        return CI(np.nan, np.nan, np.nan, "n<2")
    sums_x, sums_y, counts = _cluster_sums(clusters[keep], x[keep], y[keep])
    return _bootstrap(
        (sums_x, sums_y, counts),
        _ratio_diff,
        float((x[keep] - y[keep]).mean()),
        True,
        boot,
        np.ptp((sums_x - sums_y) / counts) == 0,
    )


def unpaired_diff_ci(x, y, boot: Bootstrap = Bootstrap()) -> CI:
    """mean(x) - mean(y) for independent samples (each resampled on its own)."""
    x, y = (np.asarray(v, dtype=float) for v in (x, y))
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if len(x) == 0 or len(y) == 0:
        return CI(np.nan, np.nan, np.nan, "n<2")
    return _bootstrap((x, y), _mean_diff, float(x.mean() - y.mean()), False, boot)


def classify(diff, direction: int = 1, tolerance: float = 0.0) -> tuple[int, int, int]:
    """Counts of items improved / unchanged / regressed (a change within tolerance is none)."""
    signed = np.asarray(diff, dtype=float) * direction
    signed = signed[np.isfinite(signed)]
    improved = int((signed > tolerance).sum())
    regressed = int((signed < -tolerance).sum())
    return improved, len(signed) - improved - regressed, regressed
