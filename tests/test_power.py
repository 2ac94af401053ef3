"""Power analysis (analysis/power.py) and the seed vs item variance decomposition
(analysis/variance.py): known values, a planted seed variance, and properties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from mlx_instruct.analysis import power, variance


def _textbook_power(delta: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """Two-sided one-sample t power, written out independently of power.py."""
    df, nc = n - 1, delta / (sd / math.sqrt(n))
    crit = sps.t.isf(alpha / 2, df)
    return 1 - sps.nct.cdf(crit, df, nc) + sps.nct.cdf(-crit, df, nc)


@pytest.mark.parametrize(("sd", "n"), [(1.0, 10), (36.0, 64), (10.0, 152), (25.0, 32)])
def test_mde_has_the_target_power(sd, n):
    effect = power.mde(sd, n)
    assert _textbook_power(effect, sd, n) == pytest.approx(0.8, abs=1e-6)
    # close to the normal approximation (z_0.975 + z_0.8) sd / sqrt(n), and above it
    normal = (sps.norm.ppf(0.975) + sps.norm.ppf(0.8)) * sd / math.sqrt(n)
    assert normal < effect < normal * (1 + 2.5 / n)


def test_items_needed_known_value_and_consistency():
    # d = 0.5 needs 34 pairs (G*Power, paired t, two-sided 0.05, power 0.8)
    assert power.items_needed(0.5, 1.0) == 34
    n = power.items_needed(7.5, 33.7)
    assert _textbook_power(7.5, 33.7, n) >= 0.8 > _textbook_power(7.5, 33.7, n - 1)


def test_degenerate_inputs():
    assert math.isnan(power.mde(0.0, 50))
    assert math.isnan(power.items_needed(0.0, 1.0))
    assert math.isnan(power.mde(1.0, 1))
    assert power.reference_effect("5%", 30.0) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="expected points"):
        power.reference_effect("five", 1.0)


def test_seed_term_inflates_the_mde_and_can_make_items_useless():
    deff, with_seeds, needed = power.seed_aware(5.0, 30.0, 64, seed_term=4.0)
    assert deff == pytest.approx(1 + 64 * 4.0 / 30.0**2)
    assert with_seeds == pytest.approx(power.mde(30.0, 64) * math.sqrt(deff))
    assert needed > power.items_needed(5.0, 30.0)
    # seed variance alone exceeds what a 5-point effect allows: no item count suffices
    assert power.seed_aware(5.0, 30.0, 64, seed_term=10.0)[2] == math.inf


@settings(max_examples=40, deadline=None)
@given(
    sd=st.floats(0.1, 50.0),
    n=st.integers(3, 2000),
    extra=st.integers(1, 500),
)
def test_mde_falls_with_items_and_rises_with_sd(sd, n, extra):
    assert power.mde(sd, n + extra) < power.mde(sd, n)
    assert power.mde(sd * 1.5, n) > power.mde(sd, n)


@settings(max_examples=40, deadline=None)
@given(effect=st.floats(0.5, 20.0), sd=st.floats(1.0, 50.0), factor=st.floats(1.1, 3.0))
@example(effect=10.1875, sd=1.0, factor=1.109375)  # a NaN lower tail read as power 1 (CI)
def test_items_needed_falls_as_the_effect_grows(effect, sd, factor):
    assert power.items_needed(effect * factor, sd) <= power.items_needed(effect, sd)
    n = power.items_needed(effect, sd)
    if np.isfinite(n) and n > 2:
        assert power.mde(sd, int(n)) <= effect + 1e-9


def test_components_recover_a_planted_seed_variance():
    rng = np.random.default_rng(0)
    k, n, seed_sd, noise_sd = 40, 400, 3.0, 5.0
    table = (
        rng.normal(0, seed_sd, size=(k, 1))
        + rng.normal(0, 10.0, size=(1, n))
        + rng.normal(0, noise_sd, size=(k, n))
    )
    parts = variance.components(table)
    assert parts.seed == pytest.approx(seed_sd**2, rel=0.35)
    assert parts.residual == pytest.approx(noise_sd**2, rel=0.05)
    assert parts.item == pytest.approx(100.0, rel=0.2)


def test_crossed_bootstrap_includes_seed_variance():
    rng = np.random.default_rng(1)
    k, n = 8, 200
    with_seed = rng.normal(0, 4.0, size=(k, 1)) + rng.normal(0, 5.0, size=(k, n))
    without = with_seed - with_seed.mean(axis=1, keepdims=True)  # the seed effect removed
    wide = variance.crossed_bootstrap(with_seed, 4000).var()
    narrow = variance.crossed_bootstrap(without, 4000).var()
    # planted: the seed part of the mean's variance is about 16 / 8 = 2, items 25 / 1600
    assert wide > 10 * narrow
    assert wide == pytest.approx(
        with_seed.mean(axis=1).var() / k + with_seed.mean(axis=0).var() / n, rel=0.35
    )


def test_decompose_verdicts():
    rng = np.random.default_rng(2)
    base = rng.normal(50, 10, size=100)
    shifted = base + rng.normal(0, 1, size=(3, 100)) + np.array([[-20.0], [0.0], [20.0]])
    found = variance.decompose(shifted, base, resamples=500)
    assert found["verdict"] == "dominant" and found["seed_share"] > 0.9
    assert found["ci_high"] - found["ci_low"] > found["item_ci_high"] - found["item_ci_low"]
    quiet = variance.decompose(base + rng.normal(3, 10, size=(2, 100)), base, resamples=500)
    assert quiet["verdict"] in {"small", "comparable"}
    with pytest.raises(ValueError, match="items axis"):
        variance.decompose(shifted, base[:10])


def _study(seed_shift: float) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """A tidy results table: base, `a` (2 seeds), `b` (1 seed) on 60 adherence items."""
    rng = np.random.default_rng(3)
    rows = []
    truth = rng.uniform(20, 80, size=60)
    arms = [("base", 0, 0.0), ("a", 0, 5 - seed_shift), ("a", 1, 5 + seed_shift), ("b", 0, 2.0)]
    for experiment, seed, shift in arms:
        values = np.clip(truth + shift + rng.normal(0, 8, size=60), 0, 100)
        for i, value in enumerate(values):
            for bench in ("one", "two"):
                rows.append({"study": "t", "experiment": experiment, "seed": seed,
                             "suite": "adherence", "benchmark": bench, "item_id": f"i{i}",
                             "metric": "adherence", "value": value})  # fmt: skip
    meta = pd.DataFrame({"experiment": ["base", "a", "b"], "is_baseline": [True, False, False]})
    return pd.DataFrame(rows), {"report": {"pairs": [["a", "b"]]}}, meta


def test_power_table_from_results():
    results, config, meta = _study(seed_shift=4.0)
    frame = power.power_table(results, config, meta, {"adherence": "5"})
    assert list(frame.columns) == power.COLUMNS
    assert list(zip(frame["a"], frame["b"], strict=True)) == [
        ("base", "a"),
        ("base", "b"),
        ("a", "b"),
    ]
    assert (frame["outcome"] == "adherence").all() and (frame["n_items"] == 120).all()
    row = frame.iloc[0]
    assert row["seeds_b"] == 2 and row["seed_var_source"] == "own" and row["mde_seeds"] > row["mde"]
    assert frame.iloc[1]["seed_var_source"] == "pooled"
    seeds = power.variance_table(results, meta, resamples=300)
    assert list(seeds["experiment"]) == ["a"] and seeds.iloc[0]["seed_var"] > 0
    with pytest.raises(ValueError, match="unknown outcome"):
        power.power_table(results, config, meta, {"nope": "5"})


def test_cli_writes_tables(tmp_path, capsys):
    from mlx_instruct.analysis.__main__ import main

    assert main(["power", "--results", str(tmp_path)]) == 1  # no config: a clear error
    assert "config" in capsys.readouterr().err
    assert power.parse_effects(["adherence=5", "retention=5%"]) == {
        "adherence": "5",
        "retention": "5%",
    }
    with pytest.raises(ValueError, match="OUTCOME="):
        power.parse_effects(["adherence"])
