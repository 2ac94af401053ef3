"""Assemble the tidy tables of a study from the files the stages wrote (docs/contracts.md).

`results.parquet` has one row per observation: study, experiment, method, rank, seed, suite,
benchmark, item_id, metric, value, plus one column per dimension that experiments of the
study vary (learning_rate, retention_fraction, ...) and any extra field an evaluator wrote.
Training curves, per-layer norms, samples, generations and run metadata get tables of their
own, each tidy, each keyed by the same experiment/seed columns.
"""

from __future__ import annotations

import json
import math
import numbers
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlx_instruct.config import ADAPTER_METHODS, experiment_settings, load_config
from mlx_instruct.evaluate.metrics import COLUMNS as TIDY_COLUMNS
from mlx_instruct.io import iter_jsonl

# The tidy schema is defined once, by the evaluation stage that writes the rows.
BASE_COLUMNS = list(TIDY_COLUMNS)
EVAL_KEYS = ("suite", "benchmark", "item_id", "metric", "value")
RUN_KEYS = ("study", "experiment", "method", "rank", "seed")
# Experiment settings that are structure, not a varied dimension.
NOT_DIMENSIONS = {"method", "rank", "seeds"}


class ResultsError(ValueError):
    """A results file that does not follow the contract; the message names file, line, field."""


def load_study(path: str | Path) -> dict[str, Any]:
    """Read and validate a study config."""
    return load_config(Path(path))


def study_config(results: str | Path, config: str | Path | None = None) -> dict[str, Any]:
    """The study config: the one given, else the resolved copy the Snakefile left in results."""
    path = Path(config) if config else Path(results) / "config.resolved.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no study config (pass --config)")
    return load_study(path)


def experiments(config: dict[str, Any]) -> pd.DataFrame:
    """One row per experiment: method, rank, seeds, baseline flag and every varied dimension."""
    names = list(config["experiments"])
    dims = sorted(
        {key for name in names for key in config["experiments"][name] if key not in NOT_DIMENSIONS}
    )

    rows = []
    for order, name in enumerate(names):
        settings = experiment_settings(config, name)
        method = settings["method"]
        lowrank = method in ADAPTER_METHODS
        row = {
            "experiment": name,
            "order": order,
            "method": method,
            "rank": settings.get("rank") if lowrank else None,
            "is_baseline": method == "none",
            "seeds": [0] if method == "none" else list(settings["seeds"]),
            "alpha": settings.get("alpha") if lowrank else None,
            "learning_rate": settings.get("learning_rate") if method != "none" else None,
            "steps": settings.get("steps") if method != "none" else None,
            "batch_size": settings.get("batch_size") if method != "none" else None,
            "retention_fraction": settings.get("retention_fraction", 0.0)
            if method != "none"
            else 0.0,
        }
        for key in dims:
            if method == "none" and key in row:
                continue
            value = None if method == "none" else settings.get(key)
            row[key] = json.dumps(value) if isinstance(value, (list, dict)) else value
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["rank"] = frame["rank"].astype("Int64")
    return frame


def dimension_columns(config: dict[str, Any]) -> list[str]:
    """Settings some experiment overrides (besides method/rank/seeds): extra result columns."""
    return sorted(
        {key for exp in config["experiments"].values() for key in exp if key not in NOT_DIMENSIONS}
    )


def run_keys(config: dict[str, Any]) -> list[dict[str, Any]]:
    """(experiment, seed) pairs the study evaluates, with their identifying columns."""
    meta = experiments(config)
    keys = []
    for row in meta.itertuples():
        for seed in row.seeds:
            rank = None if pd.isna(row.rank) else int(row.rank)
            keys.append(
                {
                    "study": config["study"],
                    "experiment": row.experiment,
                    "method": row.method,
                    "rank": rank,
                    "seed": int(seed),
                }
            )
    return keys


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """JSON lines; a malformed record names the file and line."""
    rows = []
    for number, record in iter_jsonl(path, error=ResultsError, objects=True):
        record["_line"] = number
        rows.append(record)
    return rows


def _as_value(raw: Any, path: Path, line: int) -> float:
    if raw is None:
        return math.nan
    if isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, (int, float)):
        return float(raw)
    raise ResultsError(f"{path}:{line}: field 'value' must be a number or null, got {raw!r}")


def eval_frame(path: str | Path, keys: dict[str, Any]) -> pd.DataFrame:
    """One suite file of one run as tidy rows, keyed by the run's identifying columns."""
    path = Path(path)
    records = []
    for record in read_jsonl(path):
        line = record.pop("_line")
        missing = [key for key in EVAL_KEYS if key not in record]
        if missing:
            raise ResultsError(
                f"{path}:{line}: missing field(s) {missing} (contract: {list(EVAL_KEYS)})"
            )
        record["value"] = _as_value(record["value"], path, line)
        for key in ("suite", "benchmark", "item_id", "metric"):
            record[key] = str(record[key])
        for key in RUN_KEYS:  # the path and config, not the evaluator, say which run this is
            if key in record and record[key] != keys[key]:
                record[f"eval_{key}"] = record[key]
        record.update(keys)
        records.append(record)
    return pd.DataFrame.from_records(records)


def assemble(
    frames: Iterable[pd.DataFrame], dims: dict[str, dict[str, Any]] | None = None
) -> pd.DataFrame:
    """Concatenate per-file frames into the tidy table: base columns first, extras preserved."""
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        table = pd.DataFrame(
            {
                column: pd.Series(dtype="float64" if column == "value" else "object")
                for column in BASE_COLUMNS
            }
        )
    else:
        table = pd.concat(frames, ignore_index=True, sort=False)
    for experiment, values in (dims or {}).items():
        mask = table["experiment"] == experiment
        for key, value in values.items():
            if key not in table:
                table[key] = pd.Series([None] * len(table), dtype="object")
            table.loc[mask, key] = value
    extras = [column for column in table.columns if column not in BASE_COLUMNS]
    table = table[BASE_COLUMNS + extras]
    table["rank"] = pd.array(table["rank"], dtype="Int64")
    table["seed"] = table["seed"].astype("int64")
    table["value"] = table["value"].astype("float64")
    for column in extras:  # parquet wants one type per column
        table[column] = _one_type(table[column])
    return table


def _one_type(column: pd.Series) -> pd.Series:
    """Numbers stay numbers (ints and floats mixed become float); anything else mixed, text."""
    if column.dtype != object:
        return column
    present = [v for v in column if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if present and all(
        isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in present
    ):
        return pd.to_numeric(column, errors="coerce").astype("float64")
    kinds = {type(v) for v in present}
    if len(kinds) > 1 or (kinds and not kinds <= {str, bool}):
        return pd.Series(
            [
                None
                if v is None or (isinstance(v, float) and math.isnan(v))
                else json.dumps(v)
                if isinstance(v, (list, dict))
                else str(v)
                for v in column
            ],
            index=column.index,
            dtype="object",
        )
    return column


def results_table(results: str | Path, config: dict[str, Any], log=sys.stderr) -> pd.DataFrame:
    """Every eval file of every run the study defines, as the tidy results table."""
    results = Path(results)
    suites = list(config["evaluation"].get("suites", {}))
    meta = experiments(config).set_index("experiment")
    dim_names = dimension_columns(config)
    frames = []
    for keys in run_keys(config):
        folder = results / "evals" / keys["experiment"] / f"s{keys['seed']}"
        for suite in suites:
            path = folder / f"{suite}.jsonl"
            if not path.is_file():
                print(f"aggregate: WARNING: {path} missing; its rows are absent", file=log)
                continue
            frames.append(eval_frame(path, keys))
    dims = {name: {key: meta.loc[name, key] for key in dim_names} for name in meta.index}
    table = assemble(frames, dims)
    return table


def _run_rows(
    results: Path, config: dict[str, Any], filename: str
) -> Iterable[tuple[dict[str, Any], list[dict[str, Any]]]]:
    for keys in run_keys(config):
        if keys["method"] == "none":
            continue
        path = results / "runs" / keys["experiment"] / f"s{keys['seed']}" / filename
        if path.is_file():
            yield keys, read_jsonl(path)


def training_curves(results: str | Path, config: dict[str, Any]) -> pd.DataFrame:
    """Tidy train and validation logs: experiment, seed, split, step, metric, value."""
    rows = []
    for split, filename in (("train", "train_log.jsonl"), ("val", "val_log.jsonl")):
        for keys, records in _run_rows(Path(results), config, filename):
            for record in records:
                step = record.get("step")
                for metric, value in record.items():
                    if (
                        metric in ("step", "_line")
                        or not isinstance(value, (int, float))
                        or isinstance(value, bool)
                    ):
                        continue
                    rows.append(
                        {
                            **keys,
                            "split": split,
                            "step": step,
                            "metric": metric,
                            "value": float(value),
                        }
                    )
    columns = [*RUN_KEYS, "split", "step", "metric", "value"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["rank"] = pd.array(frame["rank"], dtype="Int64")
    return frame


def layer_norms(results: str | Path, config: dict[str, Any]) -> pd.DataFrame:
    """Tidy per-layer, per-module grad and delta norms: step, layer, module, kind, value.

    These logs can hold millions of rows (every step x layer x module), so they are read
    with pandas' JSON-lines reader; a malformed file falls back to the line-checking reader,
    whose error names the line."""
    frames = []
    for keys in run_keys(config):
        path = Path(results) / "runs" / keys["experiment"] / f"s{keys['seed']}" / "layer_log.jsonl"
        if keys["method"] == "none" or not path.is_file() or path.stat().st_size == 0:
            continue
        try:
            frame = pd.read_json(path, lines=True, dtype=False)
        except ValueError:
            frame = pd.DataFrame(read_jsonl(path)).drop(columns="_line")
        frames.append(frame.assign(**keys))
    columns = [*RUN_KEYS, "step", "layer", "module", "kind", "value"]
    if not frames:
        return pd.DataFrame(columns=columns)
    frame = pd.concat(frames, ignore_index=True)
    frame["rank"] = pd.array(frame["rank"], dtype="Int64")
    frame["layer"] = frame["layer"].astype(str)
    return frame[[c for c in columns if c in frame] + [c for c in frame if c not in columns]]


def samples(results: str | Path, config: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for keys, records in _run_rows(Path(results), config, "samples.jsonl"):
        for record in records:
            record.pop("_line", None)
            rows.append(
                {**keys, **{k: record.get(k) for k in ("step", "prompt_id", "prompt", "response")}}
            )
    return pd.DataFrame(rows, columns=[*RUN_KEYS, "step", "prompt_id", "prompt", "response"])


def generations(results: str | Path, config: dict[str, Any]) -> pd.DataFrame:
    """Every `<suite>.generations.jsonl`: experiment, seed, suite, item_id, prompt, response."""
    results = Path(results)
    rows = []
    for keys in run_keys(config):
        folder = results / "evals" / keys["experiment"] / f"s{keys['seed']}"
        for path in sorted(folder.glob("*.generations.jsonl")):
            suite = path.name.removesuffix(".generations.jsonl")
            for record in read_jsonl(path):
                record.pop("_line", None)
                rows.append(
                    {
                        **{k: record.get(k) for k in ("item_id", "prompt", "response")},
                        **record,
                        **keys,
                        "suite": suite,
                    }
                )
    columns = [*RUN_KEYS, "suite", "item_id", "prompt", "response"]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame["item_id"] = frame["item_id"].astype(str)
    for column in frame.columns:  # extra fields (instruction, reference, status, ...) kept
        if column not in columns:
            frame[column] = _one_type(frame[column])
    return frame[columns + [c for c in frame.columns if c not in columns]]


def omitted(results: str | Path, config: dict[str, Any]) -> pd.DataFrame:
    """Every `<suite>.omitted.jsonl`: what an optional benchmark left out, per run, and why."""
    rows = [
        {**keys, **{k: record.get(k) for k in ("suite", "benchmark", "reason")}}
        for keys in run_keys(config)
        for path in sorted(
            (Path(results) / "evals" / keys["experiment"] / f"s{keys['seed']}").glob(
                "*.omitted.jsonl"
            )
        )
        for record in read_jsonl(path)
    ]
    return pd.DataFrame(rows, columns=[*RUN_KEYS, "suite", "benchmark", "reason"])


def _flat(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def runs_table(results: str | Path, config: dict[str, Any]) -> pd.DataFrame:
    """One row per trained run: run.json's scalar fields (nested ones as JSON text)."""
    rows = []
    for keys in run_keys(config):
        row = dict(keys)
        path = Path(results) / "runs" / keys["experiment"] / f"s{keys['seed']}" / "run.json"
        if path.is_file():
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as error:
                raise ResultsError(f"{path}: malformed JSON ({error.msg})") from None
            for key, value in record.items():
                if key not in RUN_KEYS:
                    row[key] = _flat(value)
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["rank"] = pd.array(frame["rank"], dtype="Int64")
    for column in frame.columns:
        if column not in RUN_KEYS:
            frame[column] = _one_type(frame[column])
    return frame
