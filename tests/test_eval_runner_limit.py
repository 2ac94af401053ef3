"""evaluate --limit (deployment.n): each suite's items capped, benchmarks per task, so a
limited model's items are among the study's own."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mlx_instruct.evaluate.adherence import balanced
from mlx_instruct.evaluate.runner import limited


def test_limited_caps_each_suite_and_each_benchmark():
    assert limited("adherence", {"n": 128}, 64) == {"n": 64}
    assert limited("adherence", {"n": 12}, 64) == {"n": 12}
    assert limited("seed_prompts", {"max_tokens": 64}, 8) == {"max_tokens": 64, "n": 8}
    benchmarks = {
        "truthfulqa_mc1": {"n": 40},
        "bbh": {"n": 10, "tasks": ["navigate"]},
        "ifeval": None,
    }
    assert limited("benchmarks", benchmarks, 16) == {
        "truthfulqa_mc1": {"n": 16},
        "bbh": {"n": 10, "tasks": ["navigate"]},
        "ifeval": {"n": 16},
    }
    assert benchmarks["truthfulqa_mc1"] == {"n": 40}  # the study's settings are not touched


@given(
    families=st.lists(st.sampled_from("abcde"), min_size=1, max_size=60),
    full=st.integers(1, 60),
    cap=st.integers(1, 60),
)
def test_limited_adherence_items_are_among_the_studys_so_they_pair(families, full, cap):
    items = [{"id": i, "family": f} for i, f in enumerate(families)]
    by_family = lambda r: r["family"]  # noqa: E731
    study = balanced(items, full, key=by_family)
    deployed = balanced(items, limited("adherence", {"n": full}, cap)["n"], key=by_family)
    assert {r["id"] for r in deployed} <= {r["id"] for r in study}
    assert len(deployed) == min(cap, full, len(items))
