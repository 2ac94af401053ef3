"""Bit-for-bit reruns on the CPU: each stage run twice, under different thread settings.

Issue 11 item 5: a stage's outputs must be a function of the study file alone on a given
machine. Each stage runs in two subprocesses that differ in every knob a machine or a
scheduler changes (OpenBLAS/OpenMP threads, the tokenizers' thread pool, Python's hash
seed), started together so they also compete for the cores, and their outputs are
compared by sha256. Different CPUs are another matter (docs/study.md, "Reproducibility").
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = (
    {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "1",
     "TOKENIZERS_PARALLELISM": "false"},
    {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2", "PYTHONHASHSEED": "2",
     "TOKENIZERS_PARALLELISM": "true"},
)  # fmt: skip


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_twice(module: str, argv: list[list[str]]) -> None:
    """`python -m module` with argv[i] under SETTINGS[i], both at once; fail on an error."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for env, args in zip(SETTINGS, argv, strict=True)
    ]
    for proc in procs:
        output, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, output


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(study file, model dir): the smoke study, made smaller (2 training steps)."""
    from mlx_instruct.sources import prepare_model

    root = tmp_path_factory.mktemp("determinism")
    config = yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text(encoding="utf-8"))
    config["data"]["sources"][0]["n"] = 72
    config["data"]["split"] = {"valid": 8, "test": 8}
    config["data"]["retention"].update(n=8, max_tokens=12)
    config["training"].update(
        steps=2, eval_every=2, checkpoint_every=2, sample_every=2, val_batches=1
    )
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path, Path(prepare_model("random://mistral-tiny", root / "model"))


@pytest.fixture(scope="module")
def prepared(study: tuple[Path, Path]) -> list[Path]:
    """The data stage run twice: two data dirs."""
    config, model = study
    outs = [config.parent / f"data{i}" for i in range(2)]
    run_twice(
        "mlx_instruct.data",
        [["prepare", "--config", str(config), "--model", str(model), "--out", str(o)]
         for o in outs],
    )  # fmt: skip
    return outs


def test_data_stage_is_bitwise_deterministic(prepared: list[Path]) -> None:
    for name in ("train.jsonl", "valid.jsonl", "test.jsonl", "stats.json"):
        assert sha256(prepared[0] / name) == sha256(prepared[1] / name), name


def test_retention_stage_is_bitwise_deterministic(
    study: tuple[Path, Path], prepared: list[Path]
) -> None:
    """Batched greedy generation with the base model: same bytes at 1 and 2 threads."""
    config, model = study
    outs = [d / "retention.jsonl" for d in prepared]
    run_twice(
        "mlx_instruct.data",
        [["retention", "--config", str(config), "--model", str(model), "--out", str(o)]
         for o in outs],
    )  # fmt: skip
    assert outs[0].stat().st_size > 0
    assert sha256(outs[0]) == sha256(outs[1])


def test_training_is_bitwise_deterministic(study: tuple[Path, Path], prepared: list[Path]) -> None:
    """Two LoRA steps: the adapter weights agree to the bit at 1 and 2 threads."""
    config, model = study
    runs = [config.parent / f"run{i}" for i in range(2)]
    run_twice(
        "mlx_instruct.train",
        [["--config", str(config), "--experiment", "lora-r8", "--seed", "0", "--model",
          str(model), "--data", str(d), "--out", str(r), "--no-progress"]
         for d, r in zip(prepared, runs, strict=True)],
    )  # fmt: skip
    assert sha256(runs[0] / "adapters.safetensors") == sha256(runs[1] / "adapters.safetensors")
