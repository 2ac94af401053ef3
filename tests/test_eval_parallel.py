"""Suites shared out over worker processes: same rows as one process, timing suites alone,
a worker's error reaches the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import smoke_eval_context, write_jsonl

import mlx_instruct  # noqa: F401  (OpenBLAS before mlx)
from mlx_instruct.evaluate.__main__ import main
from mlx_instruct.evaluate.parallel import EXCLUSIVE, split

ROOT = Path(__file__).resolve().parents[1]


def test_split_keeps_timing_suites_alone_and_orders_longest_first():
    todo = ["seed_prompts", "efficiency", "adherence", "benchmarks", "custom"]
    pooled, alone = split(todo, 2)
    assert pooled == ["adherence", "benchmarks", "seed_prompts", "custom"]
    assert alone == ["efficiency"] and set(EXCLUSIVE) >= set(alone)
    assert split(todo, 1) == ([], todo)  # one worker: everything in this process, in order
    assert split(["adherence", "efficiency"], 4) == ([], ["adherence", "efficiency"])


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A tiny random model, a config with small suites and a test split to evaluate."""
    root = tmp_path_factory.mktemp("parallel")
    _, config, _, records = smoke_eval_context(root, "scratch", n_tasks=6, seed=3)
    config["evaluation"]["suites"] = {
        "adherence": {"n": 4},
        "seed_prompts": {"max_tokens": 4},
        "safety": {"n": 2},
        "efficiency": {"batch_sizes": [1, 2], "max_tokens": 3, "repeats": 1},
    }
    (root / "study.yaml").write_text(yaml.safe_dump(config))
    write_jsonl(root / "data" / "test.jsonl", records)
    return root


def _args(root: Path, out: str, *suites: str, workers: int):
    args = ["--config", str(root / "study.yaml"), "--experiment", "base"]
    args += ["--model", str(root / "model"), "--data", str(root / "data")]
    args += ["--out", str(root / out), "--workers", str(workers)]
    for suite in suites:
        args += ["--suite", suite]
    return args


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_workers_give_the_same_rows_as_one_process(study, capsys):
    suites = ("adherence", "seed_prompts", "safety", "efficiency")
    assert main(_args(study, "one", *suites, workers=1)) == 0
    assert main(_args(study, "two", *suites, workers=2)) == 0
    log = capsys.readouterr().out
    assert log.count("worker)") == 3  # three suites ran in the pool ...
    assert "efficiency -> " in log and "efficiency.jsonl (" in log  # ... efficiency alone
    for suite in suites[:3]:
        assert _rows(study / "one" / f"{suite}.jsonl") == _rows(study / "two" / f"{suite}.jsonl")
    assert _rows(study / "two" / "efficiency.jsonl")


def test_a_workers_error_fails_the_command_with_its_message(study, tmp_path, capsys):
    broken = tmp_path / "study"
    shutil.copytree(study, broken, ignore=shutil.ignore_patterns("one", "two"))
    with (broken / "data" / "test.jsonl").open("a") as handle:
        handle.write('{"id": "cut off mid-record", \n')
    code = main(_args(broken, "bad", "adherence", "seed_prompts", workers=2))
    assert code == 2
    err = capsys.readouterr().err
    assert "adherence:" in err and "test.jsonl:7: malformed JSON" in err
    assert (broken / "bad" / "seed_prompts.jsonl").is_file()  # the other worker's suite completed
