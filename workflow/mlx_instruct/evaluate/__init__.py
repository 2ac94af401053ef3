"""Evaluation: batched generation on one loaded model, and suites that write tidy rows.

Public API (stable; suites in this package are written against it):

- `Generation`, `EvalContext`, `load_context`                  (context.py)
- `SUITES`, `get_suite`, `run_suite`                           (runner.py)

Import `mlx_instruct` before mlx (it loads OpenBLAS on Linux); this package does.
"""

from __future__ import annotations

import mlx_instruct  # noqa: F401  (OpenBLAS before mlx)
from mlx_instruct.evaluate.context import (
    EvalContext,
    EvalDataError,
    Generation,
    load_context,
)
from mlx_instruct.evaluate.runner import (
    SUITES,
    SuiteError,
    get_suite,
    run_suite,
)

__all__ = [
    "SUITES",
    "EvalContext",
    "EvalDataError",
    "Generation",
    "SuiteError",
    "get_suite",
    "load_context",
    "run_suite",
]
