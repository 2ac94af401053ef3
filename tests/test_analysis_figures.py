"""Figure and table functions on a realistic synthetic study (no files written but tables)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from conftest import load_results_fixture  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mlx_instruct.analysis import figures as F  # noqa: E402
from mlx_instruct.analysis import figures_weights as W  # noqa: E402
from mlx_instruct.analysis import tables as T  # noqa: E402
from mlx_instruct.analysis.aggregate import rank_sweep  # noqa: E402
from mlx_instruct.analysis.report import Study, md_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def study(tmp_path_factory) -> Study:
    return Study(load_results_fixture().aggregated(tmp_path_factory.mktemp("analysis")))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _panels(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.axison]


def test_aggregate_writes_every_tidy_table(study: Study) -> None:
    for name in (
        "results.parquet",
        "summary.csv",
        "training_curves.parquet",
        "layer_norms.parquet",
        "runs.parquet",
        "lora_subspace.parquet",
        "delta_ranks.parquet",
        "delta_hist.parquet",
    ):
        assert (study.dir / name).is_file(), name
    results = study.results
    assert {"family", "learning_rate", "retention_fraction"} <= set(results.columns)
    assert results.groupby(["experiment", "seed"]).ngroups == 7
    summary = study.summary
    assert set(summary["kind"]) == {"estimate", "pair"}
    assert set(summary["ci_method"].dropna()) <= {"BCa", "percentile", "degenerate", "n<2"}
    single = summary[(summary["n_items"] == 1) & (summary["kind"] == "estimate")]  # one item: no CI
    assert (single["ci_method"] == "n<2").all() and single["ci_low"].isna().all()
    full = study.row("full", "retention", "score")
    assert full["diff"] < 0 and full["ratio"] < 1  # the fixture's full fine-tune forgets


def test_training_curves_has_six_panels_and_a_legend_per_experiment(study: Study) -> None:
    fig = F.training_curves(study.curves, study.order, study.baseline)
    assert isinstance(fig, Figure) and len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes][:2] == [
        "training loss (raw, smoothed)",
        "validation loss",
    ]
    assert len(fig.legends[0].get_texts()) == len(study.tuned)


def test_outcome_figures_have_the_expected_axes(study: Study) -> None:
    sweep = rank_sweep(study.config)
    assert [rank for _, rank in sweep] == [4, 8, 16]
    fig = F.rank_sweep(study.summary, sweep, ["full"], study.baseline)
    assert len(fig.axes) == 4 and all(ax.get_xlabel() == "LoRA rank" for ax in fig.axes)
    fig = F.learning_vs_forgetting(study.summary, study.order, study.baseline)
    assert len(fig.axes) == 1 and "retention" in fig.axes[0].get_ylabel()
    assert {t.get_text() for t in fig.axes[0].texts} == set(study.tuned)
    assert len(F.safety_drift(study.summary, study.order, study.baseline).axes) == 2
    assert len(F.efficiency(study.results, study.order, study.baseline).axes) == 3
    assert len(F.outcome_counts(study.summary, study.order, study.baseline).axes) == 4
    assert len(_panels(F.adherence_by_family(study.summary, study.order))) == 1


def test_weight_figures_have_the_expected_axes(study: Study) -> None:
    fig = W.layer_heatmaps(study.layer_norms, "delta_norm", study.order)
    assert len([ax for ax in _panels(fig) if ax.get_title()]) == len(study.tuned)
    fig = W.delta_histogram(study.table("delta_hist"), "delta", study.order)
    assert len([ax for ax in _panels(fig) if ax.get_title()]) == len(study.tuned)
    fig = W.subspace_similarity(study.table("lora_subspace"))
    pairs = study.table("lora_subspace")["pair"].nunique()
    assert pairs == 4  # r4-r8, r4-r16, r8-r16 and r8 at two seeds
    assert len([ax for ax in fig.axes if ax.get_title()]) == pairs + 1
    fig = W.effective_rank(study.table("delta_ranks"), study.order)
    assert [ax.get_title() for ax in fig.axes] == [
        "Full fine-tune (full)",
        "Effective rank by experiment",
    ]


def test_figures_of_missing_data_are_placeholders_not_errors() -> None:
    empty = pd.DataFrame()
    for fig in (
        F.training_curves(empty),
        F.rank_sweep(pd.DataFrame(columns=["suite", "kind", "metric", "benchmark"]), []),
        W.subspace_similarity(empty),
        W.effective_rank(empty),
        W.layer_heatmaps(empty),
    ):
        assert isinstance(fig, Figure) and len(fig.axes) == 1 and fig.axes[0].texts


def test_tables_format_intervals_and_the_seed_section_18_table(study: Study) -> None:
    adherence = T.adherence_table(study.summary, study.order)
    assert list(adherence["experiment"]) == study.order
    assert (
        adherence.loc[adherence["experiment"] == "base", "\u0394 vs base [95% CI]"].item()
        == "(base)"
    )
    assert adherence.loc[1, "mean [95% CI]"].count("[") == 1
    efficiency = T.efficiency_table(
        study.results, study.curves, study.runs, study.order, study.summary
    )
    assert {
        "memory (GB)",
        "tokens/s (batch 1)",
        "tokens/s (batch 4)",
        "quality: adherence \u0394",
        "retention % of base",
    } <= set(efficiency.columns)
    cost = T.cost_table(study.results, study.curves, study.runs, study.order)
    assert {"train tokens/s", "train peak memory (GB)", "train wall time", "adapter params"} <= set(
        cost.columns
    )
    pairs = T.pairs_table(study.summary, study.pairs)
    assert len(pairs) >= 2 * 3
    grid = T.qualitative_grid(study.table("generations"), "seed_prompts", study.order)
    assert grid["item_id"].nunique() == 5 and len(grid) == 5 * len(study.order)
    assert "\\|" in md_table(grid)  # a pipe inside a response does not break the table
    seeds = T.seed_variance_table(study.summary)
    assert set(seeds["experiment"]) == {"lora-r8"}


def test_response_agreement_counts_identical_responses(study):
    from mlx_instruct.analysis import narrative as N

    rows = N.response_agreement(study)
    assert rows, "the synthetic study has a rank sweep with generations"
    gens = study.table("generations")
    gens = gens[gens["suite"] == "adherence"]
    for a, b, same, n in rows:
        left = gens[
            (gens["experiment"] == a.split("/s")[0]) & (gens["seed"] == int(a.split("/s")[1]))
        ]
        right = gens[
            (gens["experiment"] == b.split("/s")[0]) & (gens["seed"] == int(b.split("/s")[1]))
        ]
        merged = left.merge(right, on="item_id")
        assert n == len(merged) > 0
        assert same == int((merged["response_x"] == merged["response_y"]).sum())
