"""The suite registry and the runner that writes one suite's tidy rows atomically.

A suite is `fn(ctx, settings) -> list[dict]`, named in `SUITES` (name -> "module:function").
Suites are imported lazily, so one suite's missing dependency never breaks the others, and an
unknown or missing suite gives a clear error. A suite that generates calls `ctx.record_generation(item_id, prompt, response)`
for each item; `run_suite` writes those to `<suite>.generations.jsonl`.

Files (see docs/contracts.md): `out_dir/<suite>.jsonl` (rows: suite, benchmark, item_id,
metric, value) and `out_dir/<suite>.generations.jsonl` (item_id, prompt, response, ...).
The rows file is written last: its presence means the suite is complete (resume skips it).
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlx_instruct.io import write_jsonl

SuiteFn = Callable[[Any, dict], list[dict]]
# suite name -> "module:function", imported on first use: one suite's missing dependency
# never breaks the others. A new suite is one line here.
SUITES: dict[str, str] = {
    "benchmarks": "mlx_instruct.evaluate.benchmarks:run_benchmarks",
    "humaneval": "mlx_instruct.evaluate.humaneval:run_humaneval",
    "adherence": "mlx_instruct.evaluate.adherence:adherence_suite",
    "seed_prompts": "mlx_instruct.evaluate.seed_prompts:seed_prompts_suite",
    "semantic": "mlx_instruct.evaluate.semantic:semantic_suite",
    "safety": "mlx_instruct.evaluate.safety:safety_suite",
    "efficiency": "mlx_instruct.evaluate.efficiency:efficiency_suite",
}
ROW_KEYS = ("suite", "benchmark", "item_id", "metric", "value")


class SuiteError(RuntimeError):
    """An unknown suite, a suite that cannot be imported, or one that returns bad rows."""


def get_suite(name: str) -> SuiteFn:
    """The suite function, importing its module on first use."""
    if name not in SUITES:
        raise SuiteError(f"unknown suite {name!r}; known: {sorted(SUITES)}")
    module, _, function = SUITES[name].partition(":")
    try:
        imported = importlib.import_module(module)
    except ModuleNotFoundError as error:
        raise SuiteError(
            f"suite {name!r}: cannot import {module} ({error}); is it implemented/installed?"
        ) from None
    if not callable(getattr(imported, function, None)):
        raise SuiteError(f"suite {name!r}: {module} has no function {function!r}")
    return getattr(imported, function)


def suite_paths(out_dir: str | Path, suite: str) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    return out_dir / f"{suite}.jsonl", out_dir / f"{suite}.generations.jsonl"


def write_omitted(out_dir: str | Path, suite: str, omitted: list[dict]) -> None:
    """<suite>.omitted.jsonl: what an optional part of a suite left out and why (the
    aggregate collects it and the report lists it); removed when nothing was left out."""
    path = Path(out_dir) / f"{suite}.omitted.jsonl"
    if omitted:
        write_jsonl(path, omitted)
    else:
        path.unlink(missing_ok=True)


def is_complete(out_dir: str | Path, suite: str) -> bool:
    return suite_paths(out_dir, suite)[0].is_file()


def _check_rows(suite: str, rows: list[dict]) -> list[dict]:
    clean = []
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            raise SuiteError(f"suite {suite!r}: row {n} is not a dict: {row!r}")
        row = dict(row)
        row.setdefault("suite", suite)
        missing = [k for k in ROW_KEYS if k not in row]
        if missing:
            raise SuiteError(f"suite {suite!r}: row {n} lacks {missing}: {row!r}")
        try:
            value = float(row["value"])
        except (TypeError, ValueError):
            raise SuiteError(f"suite {suite!r}: row {n} value is not a number: {row!r}") from None
        if math.isinf(value):
            raise SuiteError(f"suite {suite!r}: row {n} value is infinite: {row!r}")
        row["value"] = value
        row["item_id"] = str(row["item_id"])
        ordered = {k: row[k] for k in ROW_KEYS}
        ordered.update({k: v for k, v in row.items() if k not in ordered})
        clean.append(ordered)
    return clean


def limited(suite: str, settings: dict, n: int) -> dict:
    """At most n items of a suite, taken as its own selection takes them (adherence's round
    robin, lm-eval's limit, HumanEval's order), so a limited model's items are among a full
    one's and the two pair."""
    if suite == "benchmarks":  # one spec per benchmark, each with its own n
        return {name: limited(name, dict(spec or {}), n) for name, spec in settings.items()}
    return {**settings, "n": min(settings.get("n") or n, n)}


def run_suite(ctx: Any, suite: str, settings: dict | None = None, *, force: bool = False) -> Path:
    """Run one suite on ctx and write its files atomically; skip it if already complete.

    settings None: config["evaluation"]["suites"][suite].
    """
    rows_path, gens_path = suite_paths(ctx.out_dir, suite)
    if rows_path.is_file() and not force:
        return rows_path
    fn = get_suite(suite)
    if settings is None:
        settings = ctx.suite_settings(suite)
    ctx.generations = []
    start = time.perf_counter()
    rows = _check_rows(suite, list(fn(ctx, dict(settings)) or []))
    elapsed = time.perf_counter() - start
    if ctx.generations:
        write_jsonl(gens_path, ctx.generations)
    ctx.generations = []
    write_jsonl(rows_path, rows)  # last: its presence marks the suite complete
    ctx.last_suite_seconds = elapsed
    return rows_path
