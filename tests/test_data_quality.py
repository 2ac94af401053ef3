"""The data-quality framework (seed section 9.2): per-source metrics and targets, the
composite score, the toxicity screen, cluster marking, the map and its tables. Fast: a
fake encoder stands in for MiniLM, no tokenizer beyond a whitespace stand-in."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlx_instruct.analysis import tables_data as TD
from mlx_instruct.config import ConfigError, quality_settings
from mlx_instruct.data.common import DataError, make_record
from mlx_instruct.data.embed_map import embedding_map, over_represented, sample_for_map
from mlx_instruct.data.quality import entropy_bits
from mlx_instruct.data.quality_mix import (
    COMPONENTS,
    MIX,
    TARGETS,
    balance_scores,
    by_source,
    example_scores,
    length_score,
    novelty_scores,
    score_summary,
    target_rows,
)
from mlx_instruct.data.screen import screen_toxicity, toxicity_scores

WORDS = st.text(alphabet="abcdefgh ", min_size=0, max_size=60)


def _records(n: int, source: str = "s1", family: str | None = None) -> list[dict]:
    return [
        make_record(
            id=f"{source}-{i}",
            source=source,
            family=family,
            instruction=f"Describe item number {i} of the {source} collection in detail.",
            output=f"Item {i} is a thing with property {i * 7 % 11} and colour {i % 5}.",
        )
        for i in range(n)
    ]


# ------------------------------------------------------------------ metrics and targets


@given(st.lists(st.sampled_from("abcdefghij"), min_size=1, max_size=200))
def test_entropy_is_between_zero_and_log2_of_the_types(labels):
    value = entropy_bits(labels)
    assert -1e-12 <= value <= math.log2(len(set(labels))) + 1e-9


def test_targets_check_the_plans_bounds():
    by_metric = {t.metric: t for t in TARGETS}
    assert by_metric["unique_trigram_ratio"].met(0.71) and not by_metric[
        "unique_trigram_ratio"
    ].met(0.70)
    assert by_metric["mean_tokens"].met(50) and by_metric["mean_tokens"].met(200)
    assert not by_metric["mean_tokens"].met(201)
    assert by_metric["contamination_rate"].met(0.0) and not by_metric["contamination_rate"].met(
        0.01
    )
    assert by_metric["format_validity_rate"].met(None) is None


def test_by_source_reports_every_source_and_the_mix():
    records = _records(6, "a") + _records(4, "b")
    lengths = [60] * 6 + [300] * 4
    groups = by_source(records, lengths, contaminated={"b-0"})
    assert list(groups) == ["a", "b", MIX]
    assert groups[MIX]["n"] == 10 and groups["a"]["n"] == 6
    assert groups["a"]["targets"]["mean_tokens"] is True
    assert groups["b"]["targets"]["mean_tokens"] is False
    assert groups["b"]["contamination_rate"] == pytest.approx(0.25)
    assert groups["a"]["targets"]["contamination_rate"] is True
    rows = target_rows(groups)
    assert len(rows) == 3 * len(TARGETS) and {r["group"] for r in rows} == {"a", "b", MIX}


# ------------------------------------------------------------------ the composite score


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_length_score_is_in_unit_interval_and_one_inside_the_band(tokens):
    value = length_score(tokens)
    assert 0.0 <= value <= 1.0
    if 50 <= tokens <= 200:
        assert value == 1.0


@given(st.lists(WORDS, min_size=1, max_size=30))
def test_novelty_in_unit_interval(texts):
    values = novelty_scores(texts)
    assert values.shape == (len(texts),) and ((values >= 0) & (values <= 1)).all()


def test_novelty_is_zero_for_a_repeated_text_and_one_for_a_unique_one():
    values = novelty_scores(["the cat sat down", "the cat sat down", "a dog ran far away"])
    assert values.tolist() == [0.0, 0.0, 1.0]


@given(st.lists(st.sampled_from("abc"), min_size=1, max_size=50))
def test_balance_in_unit_interval_and_one_when_uniform(types):
    values = balance_scores(types)
    assert ((values > 0) & (values <= 1)).all()
    if len(set(np.unique(types, return_counts=True)[1])) == 1:
        assert (values == 1).all()


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=2000), min_size=3, max_size=12),
    st.floats(min_value=0, max_value=1),
)
def test_composite_score_in_unit_interval(lengths, toxicity):
    records = _records(len(lengths))
    scores = example_scores(records, lengths, [toxicity] * len(lengths), {"s1-0"})
    assert ((scores["composite"] >= 0) & (scores["composite"] <= 1)).all()
    assert scores.loc[0, "safety"] == 0.0  # contaminated
    assert np.allclose(scores["composite"], scores[list(COMPONENTS)].mean(axis=1))
    summary = score_summary(scores)
    assert summary[MIX]["n"] == len(lengths)
    assert sum(summary[MIX]["histogram"]["counts"]) == len(lengths)


# ------------------------------------------------------------------ toxicity screen


def test_toxicity_flags_a_known_bad_string_and_not_a_clean_one():
    bad, clean = toxicity_scores(
        ["You are a fucking idiot and I hate you", "Write a short poem about the sea."]
    )
    assert bad >= 0.5 > clean


def test_screen_counts_per_source_and_drops_only_in_drop_mode():
    records = _records(3, "a")
    records[1]["output"] = "Shut up, you stupid fucking moron."
    kept, report = screen_toxicity(records, "flag")
    assert len(kept) == 3 and report["flagged"] == 1 and report["dropped"] == 0
    assert report["by_source"] == {"a": {"screened": 3, "flagged": 1}}
    kept, report = screen_toxicity(records, "drop")
    assert [r["id"] for r in kept] == ["a-0", "a-2"] and report["dropped"] == 1
    with pytest.raises(DataError, match="data.quality.toxicity"):
        screen_toxicity(records, "remove")


def test_quality_settings_name_the_bad_key():
    assert quality_settings({"data": {}})["toxicity"] == "flag"
    with pytest.raises(ConfigError, match="data.quality.toxicity"):
        quality_settings({"data": {"quality": {"toxicity": "delete"}}})
    with pytest.raises(ConfigError, match="data.quality.over_represented"):
        quality_settings({"data": {"quality": {"over_represented": 0.5}}})


# ------------------------------------------------------------------ clusters and the map


def test_over_represented_marks_clusters_above_factor_times_uniform():
    labels = [0] * 10 + [1] * 2 + [2] * 2 + [3] * 1  # shares .67 .13 .13 .07; 2/k = .5
    assert set(over_represented(labels, 4, 2.0)) == {0}
    assert over_represented([0, 1, 2, 3], 4, 2.0) == {}


@given(st.integers(min_value=1, max_value=80), st.integers(min_value=1, max_value=60))
def test_sample_for_map_is_capped_and_keeps_every_source_share(n_a, cap):
    records = _records(n_a, "a") + _records(20, "b")
    chosen = sample_for_map(records, cap, seed=0)
    assert len(chosen) == min(cap, len(records)) and len(set(chosen)) == len(chosen)
    if len(records) > cap:
        share_b = sum(records[i]["source"] == "b" for i in chosen) / len(chosen)
        assert abs(share_b - 20 / len(records)) <= 1 / len(chosen) + 1e-9


class _FakeEncoder:
    """Two points only: every 'a' record on one unit vector, every 'b' record on another
    (so k-means finds 2 clusters whatever k asks)."""

    def encode(self, texts):
        return np.array([[1.0, 0, 0, 0] if " a " in t else [0, 1.0, 0, 0] for t in texts])


def test_embedding_map_marks_the_dominant_cluster(monkeypatch):
    from mlx_instruct.data import embed_map

    monkeypatch.setattr(embed_map, "project", lambda v, seed: np.zeros((len(v), 2)))  # no t-SNE
    records = _records(24, "a") + _records(6, "b")
    settings_ = {"embed_max": 100, "clusters": 4, "over_represented": 1.5}
    frame, summary = embedding_map(records, settings_, seed=0, encoder=_FakeEncoder())
    assert len(frame) == 30 and summary["n_embedded"] == 30
    assert set(frame.columns) >= {"x", "y", "cluster", "over_represented", "source"}
    marked = frame[frame["over_represented"]]
    assert summary["clusters"] == 2 and summary["over_represented"]  # 24/30 > 1.5 / 2
    assert not marked.empty and set(marked["source"]) == {"a"} and len(marked) == 24
    assert set(summary["seconds"]) == {"load", "embed", "cluster_and_project"}


# ------------------------------------------------------------------ report tables


def test_tables_are_empty_without_quality_json(tmp_path):
    quality = TD.load_quality(tmp_path)
    assert quality == {}
    for frame in (
        TD.targets_table(quality),
        TD.toxicity_table(quality),
        TD.composite_table(quality),
    ):
        assert isinstance(frame, pd.DataFrame) and frame.empty


def test_targets_table_has_a_column_per_group():
    records = _records(5, "a") + _records(5, "b")
    groups = by_source(records, [80] * 10, contaminated=set())
    quality = {
        "targets": [{"metric": t.metric, "label": t.label, "target": t.text(), "op": t.op,
                     "bound": t.bound} for t in TARGETS],
        "groups": groups,
    }  # fmt: skip
    table = TD.targets_table(quality)
    assert list(table.columns) == ["metric", "target", "a (n=5)", "b (n=5)", "mix (n=10)"]
    assert table.iloc[0]["target"] == "> 70%"
    assert table["mix (n=10)"].str.endswith(("(met)", "(missed)")).all()
