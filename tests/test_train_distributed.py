"""Data-parallel training over local processes (`training.processes`): the same losses,
gradient norms and adapters as one process; rank 0 alone writes; a failing rank stops the
run instead of leaving its peer waiting."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import mlx.core as mx
import pytest
from test_train_support import read_log, tiny, write_study  # noqa: F401

from mlx_instruct.train import distributed
from mlx_instruct.train.__main__ import main


def _argv(tiny, config: Path, out: Path, *extra: str) -> list[str]:  # noqa: F811
    return [
        "--config", str(config), "--experiment", "lora", "--seed", "0",
        "--model", str(tiny["model"]), "--data", str(tiny["data"]), "--out", str(out),
        "--no-progress", *extra,
    ]  # fmt: skip


def test_two_processes_train_the_same_run_as_one(tiny, tmp_path):  # noqa: F811
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(_argv(tiny, write_study(tmp_path / "a.yaml"), one)) == 0
    assert main(_argv(tiny, write_study(tmp_path / "b.yaml", processes=2), two)) == 0
    for name, key in (("train_log", "loss"), ("train_log", "grad_norm"), ("val_log", "val_loss")):
        a, b = read_log(one, name), read_log(two, name)
        assert [r["step"] for r in a] == [r["step"] for r in b]
        assert [r[key] for r in b] == pytest.approx([r[key] for r in a], rel=1e-5, abs=1e-6)
    assert [r["tokens"] for r in read_log(one, "train_log")] == [
        r["tokens"] for r in read_log(two, "train_log")
    ]  # tokens count the whole batch, not rank 0's share
    wa = mx.load(str(one / "adapters.safetensors"))
    wb = mx.load(str(two / "adapters.safetensors"))
    assert all(mx.allclose(wa[k], wb[k], rtol=1e-4, atol=1e-6).item() for k in wa)
    record = json.loads((two / "run.json").read_text())
    assert record["status"] == "completed" and record["settings"]["processes"] == 2
    # rank 0 alone wrote: one row per step, one samples round per sampling step
    assert len(read_log(two, "train_log")) == len(read_log(one, "train_log"))
    assert len(read_log(two, "samples")) == len(read_log(one, "samples"))


def test_more_processes_than_micro_batch_rows_is_a_config_error(tiny, tmp_path, capsys):  # noqa: F811
    config = write_study(tmp_path / "s.yaml", processes=64)
    assert main(_argv(tiny, config, tmp_path / "run")) == 2
    assert "training.processes (64) must not exceed micro_batch_size" in capsys.readouterr().err


def test_a_failing_rank_stops_the_others():
    code = (
        "import os, sys, time\nsys.exit(3) if os.environ['MLX_RANK'] == '1' else time.sleep(60)\n"
    )
    start = time.perf_counter()
    assert distributed.launch([sys.executable, "-c", code], 2) == 3
    assert time.perf_counter() - start < 30
