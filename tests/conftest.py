"""Shared fixtures: repo paths and the real public datasets in ../shared/data."""

from __future__ import annotations

from pathlib import Path

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
