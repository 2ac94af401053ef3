"""Shared fixtures of the training-engine tests (no tests here).

A tiny random Mistral (`random://mistral-tiny`: 2 layers, hidden 64, the real Mistral v0.1
tokenizer) prepared once per session, a few dozen prompt/completion rows formatted with the
model's chat template, and a study file derived from configs/smoke.yaml.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import mlx_instruct  # noqa: F401  (OpenBLAS before mlx)

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["apple", "river", "stone", "cloud", "maple", "tiger", "lemon", "piano", "cedar", "amber"]

TRAINING = {
    "method": "lora",
    "rank": 4,
    "alpha": 8,
    "learning_rate": 1.0e-3,
    "schedule": "cosine",
    "warmup_fraction": 0.2,
    "batch_size": 4,
    "micro_batch_size": 2,
    "steps": 6,
    "eval_every": 3,
    "val_batches": 2,
    "checkpoint_every": 3,
    "sample_every": 6,
    "sample_max_tokens": 4,
    "seeds": [0],
}


def rows(n: int, tokenizer: Any, offset: int = 0) -> list[dict[str, Any]]:
    from mlx_instruct.data.templates import format_prompt

    out = []
    for i in range(offset, offset + n):
        word, count = WORDS[i % len(WORDS)], 1 + i % 4
        record = {
            "id": f"repeat-{i}",
            "source": "test",
            "family": "repeat",
            "instruction": f"Repeat the word '{word}' {count} times, separated by spaces.",
            "input": "" if i % 3 else f"Example {i}: this line only makes prompt lengths vary.",
            "output": " ".join([word] * count),
            "constraints": None,
        }
        record["prompt"] = format_prompt(record, "chat", tokenizer)
        record["completion"] = record["output"]
        out.append(record)
    return out


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """{'model': dir, 'data': dir, 'tokenizer': tokenizer} shared by the training tests."""
    from mlx_instruct.sources import load_model, prepare_model

    base = tmp_path_factory.mktemp("train")
    model_dir = prepare_model("random://mistral-tiny", base / "models" / "base")
    _, tokenizer = load_model(model_dir)
    data = base / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", rows(40, tokenizer))
    write_jsonl(data / "valid.jsonl", rows(8, tokenizer, offset=100))
    write_jsonl(data / "retention.jsonl", rows(8, tokenizer, offset=200))
    return {"model": model_dir, "data": data, "tokenizer": tokenizer, "root": base}


def study(**training: Any) -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text())
    config.pop("deployment")  # it names smoke.yaml's experiments, which this study replaces
    config = copy.deepcopy(config)
    config["training"] = {**TRAINING, **training}
    config["experiments"] = {
        "base": {"method": "none"},
        "lora": {},
        "dora": {"method": "dora"},
        "hybrid": {"method": "hybrid"},
        "qlora": {"method": "qlora", "quantize_bits": 8},
        "full": {"method": "full", "learning_rate": 1.0e-4},
        "retention": {"retention_fraction": 0.25},
    }
    config["report"] = {"title": "training tests", "pairs": [["lora", "full"]]}
    return config


def write_study(path: Path, **training: Any) -> Path:
    path.write_text(yaml.safe_dump(study(**training), sort_keys=False))
    return path


def load_examples(tiny: dict[str, Any], name: str = "train") -> list:
    from mlx_instruct.data.tokenize import tokenize_dataset
    from mlx_instruct.io import read_jsonl
    from mlx_instruct.train.batching import to_examples

    records = read_jsonl(tiny["data"] / f"{name}.jsonl")
    return to_examples(tokenize_dataset(tiny["tokenizer"], records, 128, "drop")[0])


def settings(**overrides: Any):
    """The typed settings of the tests' training section with `overrides`."""
    from mlx_instruct.config import TrainingSettings

    return TrainingSettings.from_dict({**TRAINING, **overrides})


def fresh_model(tiny: dict[str, Any]):
    from mlx_instruct.sources import load_model

    model, _ = load_model(tiny["model"])
    return model


def read_log(run: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / f"{name}.jsonl").read_text().splitlines()]
