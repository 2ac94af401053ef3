"""The `benchmarks` suite: local lm-eval task YAMLs, Hub task plans, rows, and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_eval_generation import CONFIG, make_tiny_model_dir

import mlx_instruct  # noqa: F401  (OpenBLAS before mlx)
from mlx_instruct.evaluate.benchmarks import (
    DEFAULT_BBH_TASKS,
    BenchmarkPlan,
    _read_gsm8k,
    _read_truthfulqa,
    bbh_config,
    bbh_file,
    plan_benchmarks,
    read_bbh,
    samples_to_rows,
)
from mlx_instruct.evaluate.context import EvalDataError, load_context
from mlx_instruct.evaluate.runner import run_suite
from mlx_instruct.resources import ResourceError


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    model_dir = make_tiny_model_dir(root / "model")
    return load_context(CONFIG, "base", 0, model_dir, None, root, root / "out")


def test_local_tasks_run_three_items_each(ctx, tmp_path):
    settings = {
        "truthfulqa_mc1": {"n": 3},
        "bbh": {"n": 3, "tasks": ["boolean_expressions", "date_understanding", "word_sorting"]},
        "gsm8k": {"n": 3, "num_fewshot": 1},
    }
    ctx.out_dir = tmp_path
    path = run_suite(ctx, "benchmarks", settings)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    by = {}
    for row in rows:
        assert row["suite"] == "benchmarks" and row["value"] in (0.0, 1.0)
        by.setdefault((row["benchmark"], row["metric"]), []).append(row["item_id"])
    assert by[("truthfulqa_mc1", "acc")] == ["0", "1", "2"]
    assert by[("bbh:boolean_expressions", "acc")] == ["0", "1", "2"]  # True/False: choice
    assert by[("bbh:date_understanding", "acc")] == ["0", "1", "2"]  # (A)..(F): choice
    assert by[("bbh:word_sorting", "exact_match")] == ["0", "1", "2"]  # free text: generate
    assert by[("bbh:word_sorting", "answered")] == ["0", "1", "2"]
    assert by[("gsm8k", "exact_match")] == ["0", "1", "2"]
    # a random model never writes "#### <n>": unparsable answers score 0 and are counted
    assert all(r["value"] == 0.0 for r in rows if r["benchmark"] == "gsm8k")
    gens = [
        json.loads(x) for x in (tmp_path / "benchmarks.generations.jsonl").read_text().splitlines()
    ]
    assert {g["benchmark"] for g in gens} == {"bbh:word_sorting", "gsm8k"}
    assert all("Question:" in g["prompt"] for g in gens if g["benchmark"] == "gsm8k")


def test_truthfulqa_choices_and_bbh_modes():
    import datasets
    from lm_eval.tasks._yaml_loader import load_yaml

    from mlx_instruct.evaluate.benchmarks import TASKS_DIR

    cfg = load_yaml(TASKS_DIR / "truthfulqa_mc1_local.yaml")
    docs = cfg["process_docs"](
        datasets.Dataset.from_list(
            [{"Question": "Q?", "Best Answer": "Right", "Incorrect Answers": "Wrong; Bad ;"}]
        )
    )
    assert docs[0]["choices"] == ["Right", "Wrong", "Bad"] and docs[0]["label"] == 0
    modes = {t: bbh_config(t, bbh_file(t), None)[1] for t in DEFAULT_BBH_TASKS}
    assert set(modes.values()) == {"mc"}
    cfg, mode = bbh_config("navigate", bbh_file("navigate"), 2)
    assert mode == "mc" and cfg["num_fewshot"] == 2 and len(cfg["fewshot_config"]["samples"]) == 3
    assert cfg["fewshot_config"]["samples"][0]["choices"] == ["No", "Yes"]


BAD_FILES = [  # (file, its text or None when missing, the reader, the error it must name)
    ("gsm8k_test.jsonl", None, _read_gsm8k, "gsm8k_test.jsonl: GSM8K file not found"),
    ("gsm8k_test.jsonl", '{"question": "q", "answer": "#### 1"}\n{oops\n', _read_gsm8k,
     r"gsm8k_test.jsonl:2: malformed JSON"),
    ("gsm8k_test.jsonl", '{"question": "q", "answer": "no marker"}\n', _read_gsm8k,
     r":1: 'answer' lacks"),
    ("TruthfulQA.csv", "Question,Best Answer\nq,a\n", _read_truthfulqa,
     r"TruthfulQA.csv: missing column"),
    ("navigate.json", '{"examples": [{"input": "x"}]}', read_bbh,
     r"navigate.json: examples\[0\]: no 'target'"),
]  # fmt: skip
BAD_SETTINGS = [
    ({"bbh": {"tasks": ["snark"]}}, r"benchmarks.bbh.tasks: no BBH task 'snark'"),
    ({"gsm8k": {"limit": 3}}, "unknown setting"),
    ({"mmlu": {"source": "local"}}, "no local copy"),
]


@pytest.mark.parametrize(("name", "text", "read", "message"), BAD_FILES)
def test_bad_local_files_fail_before_work(tmp_path, name, text, read, message):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(EvalDataError, match=message):
        read(path)


@pytest.mark.parametrize(("settings", "message"), BAD_SETTINGS)
def test_bad_settings_fail_before_work(settings, message):
    with pytest.raises(EvalDataError, match=message):
        plan_benchmarks(settings)


def test_vendored_file_altered_fails_before_work(vendored_copy):
    path = vendored_copy / "gsm8k_test.jsonl"
    path.write_bytes(path.read_bytes()[:-100])  # truncated
    with pytest.raises(ResourceError, match=r"gsm8k_test.jsonl: sha256 .* does not match"):
        plan_benchmarks({"gsm8k": {"n": 2}})
    (vendored_copy / "TruthfulQA.csv").unlink()
    with pytest.raises(ResourceError, match=r"TruthfulQA.csv: vendored data file not found"):
        plan_benchmarks({"truthfulqa_mc1": {}})


def test_hub_plans_use_lm_eval_task_names(tmp_path):
    plans = plan_benchmarks(
        {
            "truthfulqa_mc1": {"n": 5, "source": "hub"},
            "bbh": {"tasks": ["navigate"], "num_fewshot": 3, "source": "hub"},
            "gsm8k": {"source": "hub"},
            "arc_easy": {},
            "arc_challenge": {},
            "hellaswag": {},
            "mmlu": {"n": 2},
            "ifeval": {"source": "hub"},  # local by default (test_ifeval.py)
        }
    )
    names = {p.name: p.tasks for p in plans}
    assert all(p.source == "hub" for p in plans)
    assert names["bbh"] == ["bbh_fewshot_navigate"] and names["mmlu"] == ["mmlu"]
    assert plans[0].limit == 5 and plans[1].num_fewshot == 3
    import lm_eval.tasks
    from lm_eval.tasks import TaskManager

    root = Path(lm_eval.tasks.__file__).parent  # index only the folders of these tasks (fast)
    dirs = ["truthfulqa", "bbh/fewshot", "gsm8k", "arc", "hellaswag", "mmlu/default", "ifeval"]
    known = set(
        TaskManager(include_path=[root / d for d in dirs], include_defaults=False).all_tasks
    )
    # ifeval: lm-eval's own config as a dict (its generation cap set), task name "ifeval"
    assert {t if isinstance(t, str) else t["task"] for ts in names.values() for t in ts} <= known


def test_hub_task_config_runs_on_a_fixture(ctx, tmp_path):
    """lm-eval's own arc_easy config (the Hub task), pointed at a fixture file in its format."""
    import lm_eval.tasks
    from lm_eval.tasks._yaml_loader import load_yaml

    from mlx_instruct.evaluate.lmeval import MLXEvalLM, run_tasks

    docs = [
        {
            "id": f"q{i}",
            "question": f"Which is a colour {i}?",
            "choices": {"text": ["red", "dog", "run", "up"], "label": ["A", "B", "C", "D"]},
            "answerKey": "A",
        }
        for i in range(3)
    ]
    fixture = tmp_path / "arc.jsonl"
    fixture.write_text("".join(json.dumps(d) + "\n" for d in docs))
    cfg = load_yaml(Path(lm_eval.tasks.__file__).parent / "arc" / "arc_easy.yaml")
    cfg.update(dataset_path="json", dataset_name=None, test_split="test")
    cfg.update(
        training_split=None,
        validation_split=None,
        dataset_kwargs={"data_files": {"test": str(fixture)}},
    )
    samples = run_tasks(MLXEvalLM(ctx.model, ctx.tokenizer), [cfg], include_defaults=False)
    plan = BenchmarkPlan("arc_easy", "hub", ["arc_easy"], labels={"arc_easy": "arc_easy"})
    rows = samples_to_rows(plan, samples)
    assert {(r["metric"], r["item_id"]) for r in rows} == {
        (m, str(i)) for m in ("acc", "acc_norm") for i in range(3)
    }


def _gsm8k_sample(filter_name: str, exact_match: float, filtered: str) -> dict:
    """One lm-eval logged sample of GSM8K doc 0 under one filter."""
    return {
        "doc_id": 0, "filter": filter_name, "metrics": ["exact_match"], "exact_match": exact_match,
        "arguments": [("Q", {"until": []})], "filtered_resps": [filtered], "resps": [["x"]],
    }  # fmt: skip


def test_rows_from_groups_and_filters():
    plan = BenchmarkPlan("mmlu", "hub", ["mmlu"], labels={"gsm8k": "gsm8k"})
    samples = {
        "mmlu_anatomy": [{"doc_id": 0, "filter": "none", "metrics": ["acc"], "acc": True}],
        "gsm8k": [
            _gsm8k_sample("strict-match", 0.0, "[invalid]"),
            _gsm8k_sample("flexible-extract", 1.0, "4"),
        ],
    }
    rows = samples_to_rows(plan, samples)
    assert {
        "suite": "benchmarks",
        "benchmark": "mmlu",
        "item_id": "mmlu_anatomy/0",
        "metric": "acc",
        "value": 1.0,
    } in rows
    gsm = [(r["metric"], r["value"]) for r in rows if r["benchmark"] == "gsm8k"]
    assert gsm == [("exact_match", 0.0), ("answered", 0.0)]  # strict-match kept, unparsable


def test_interrupted_suite_redoes_only_unfinished_benchmarks(ctx, tmp_path, monkeypatch):
    import mlx_instruct.evaluate.lmeval as lmeval

    real = lmeval.run_tasks
    calls = []

    def failing(lm, tasks, **kwargs):
        calls.append(tasks[0]["task"])
        if tasks[0]["task"] == "gsm8k_local":
            raise KeyboardInterrupt
        return real(lm, tasks, **kwargs)

    ctx.out_dir = tmp_path
    settings = {"truthfulqa_mc1": {"n": 2}, "gsm8k": {"n": 1, "num_fewshot": 0}}
    monkeypatch.setattr(lmeval, "run_tasks", failing)
    with pytest.raises(KeyboardInterrupt):
        run_suite(ctx, "benchmarks", settings)
    assert len(list(tmp_path.glob(".benchmarks.truthfulqa_mc1.*.part.json"))) == 1
    assert not (tmp_path / "benchmarks.jsonl").exists()
    monkeypatch.setattr(
        lmeval,
        "run_tasks",
        lambda lm, tasks, **kw: calls.append(tasks[0]["task"]) or real(lm, tasks, **kw),
    )
    path = run_suite(ctx, "benchmarks", settings)
    assert calls == ["truthfulqa_mc1_local", "gsm8k_local", "gsm8k_local"]
    benchmarks = {json.loads(line)["benchmark"] for line in path.read_text().splitlines()}
    assert benchmarks == {"truthfulqa_mc1", "gsm8k"}
    assert not list(tmp_path.glob(".benchmarks.*"))


def test_an_optional_hub_benchmark_that_cannot_load_is_left_out_and_listed(
    ctx, tmp_path, monkeypatch
):
    import mlx_instruct.evaluate.benchmarks as benchmarks
    import mlx_instruct.evaluate.lmeval as lmeval
    from mlx_instruct.analysis import tidy

    real = lmeval.run_tasks

    def offline(lm, tasks, **kwargs):
        if tasks == ["hellaswag"]:
            raise ConnectionError("no route to the Hub")
        return real(lm, tasks, **kwargs)

    monkeypatch.setattr(lmeval, "run_tasks", offline)
    monkeypatch.setattr(benchmarks, "check_hub_tasks", lambda plans: None)
    settings = {"truthfulqa_mc1": {"n": 2}, "hellaswag": {"n": 2, "optional": True}}
    out = tmp_path / "evals" / "base" / "s0"
    ctx.out_dir = out
    path = run_suite(ctx, "benchmarks", settings)
    assert {json.loads(line)["benchmark"] for line in path.read_text().splitlines()} == {
        "truthfulqa_mc1"
    }
    left = [
        json.loads(line) for line in (out / "benchmarks.omitted.jsonl").read_text().splitlines()
    ]
    assert left[0]["benchmark"] == "hellaswag" and "no route to the Hub" in left[0]["reason"]
    config = {"study": "t", "experiments": {"base": {"method": "none"}}, "training": {}}
    frame = tidy.omitted(tmp_path, config)
    assert list(frame["benchmark"]) == ["hellaswag"] and list(frame["experiment"]) == ["base"]
    settings["hellaswag"].pop("optional")  # not optional: the same failure stops the suite
    with pytest.raises(EvalDataError, match=r"benchmarks.hellaswag: loading .* optional: true"):
        run_suite(ctx, "benchmarks", settings, force=True)
    with pytest.raises(EvalDataError, match="only a Hub benchmark can be optional"):
        plan_benchmarks({"gsm8k": {"optional": True}})
