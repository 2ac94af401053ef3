"""Shared fixtures: repo paths and a scratch copy of the vendored datasets."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import mlx_instruct  # noqa: F401  (loads OpenBLAS before any test imports mlx)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The whole smoke study, run once per session: tests/test_smoke_study.py checks it and
    tests/test_slurm_cluster.py compares its SLURM runs with the same runs here. Only its
    later tests add experiments, so the runs compared never change."""
    from test_smoke_study import run_smoke_study

    return run_smoke_study(tmp_path_factory.mktemp("smoke"))


@pytest.fixture
def vendored_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """resources/data copied to a scratch folder that mlx_instruct.resources reads instead,
    so a test can alter or remove a file (the repository's copy stays untouched)."""
    from mlx_instruct import resources

    copy = tmp_path / "resources-data"
    shutil.copytree(resources.DATA_DIR, copy)
    monkeypatch.setattr(resources, "DATA_DIR", copy)
    monkeypatch.setattr(resources, "MANIFEST", copy / resources.MANIFEST.name)
    resources.datasets.cache_clear()
    resources._verified.cache_clear()
    yield copy
    resources.datasets.cache_clear()
    resources._verified.cache_clear()


def load_results_fixture() -> ModuleType:
    """tests/fixtures/analysis/make_results.py (a synthetic study), imported once."""
    name = "mlx_instruct_analysis_fixture"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, ROOT / "tests" / "fixtures" / "analysis" / "make_results.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def smoke_eval_context(
    root: Path, out: str, n_tasks: int, seed: int
) -> tuple[Path, dict, Any, list[dict]]:
    """(model dir, config, base EvalContext, test records) for the evaluation tests: the smoke
    study's tiny random model and config (short generations), its data dir root/data, and
    `n_tasks` generated tasks formatted with the study's template (for data/test.jsonl)."""
    from mlx_instruct.config import load_config
    from mlx_instruct.data.tasks import generate_tasks, to_record
    from mlx_instruct.evaluate import load_context
    from mlx_instruct.sources import prepare_model

    model_dir = prepare_model("random://mistral-tiny", root / "model")
    config = load_config(ROOT / "configs" / "smoke.yaml")
    config["evaluation"]["generation"] = {"max_tokens": 6, "batch_size": 4}
    (root / "data").mkdir()
    context = load_context(config, "base", 0, model_dir, None, root / "data", root / out)
    records = []
    for task in generate_tasks(n_tasks, seed=seed):
        record = to_record(task)
        prompt = context.format(record["instruction"], record["input"])
        records.append({**record, "source": "generator", "prompt": prompt})
    return model_dir, config, context, records


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
