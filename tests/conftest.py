"""Shared fixtures: repo paths and the real public datasets in ../shared/data."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

import mlx_instruct  # noqa: F401  (loads OpenBLAS before any test imports mlx)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real public datasets not found at {SHARED_DATA} (a fresh clone has none)")
    return SHARED_DATA


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
