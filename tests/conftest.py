"""Shared fixtures: repo paths and a scratch copy of the vendored datasets."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import mlx_instruct  # noqa: F401  (loads OpenBLAS before any test imports mlx)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


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
