"""The plan before compute in the report: the `plan` rule's table (results/<study>/plan/
plan.json) and its estimates next to what the runs measured (runs.parquet, benchmarks).

Facts only; the setup section words them. Every function returns None or an empty frame when
its input is absent (a study with `report.plan: false`, or a plan made before evaluation
estimates existed), so the section is skipped cleanly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PLAN_FILE = Path("plan") / "plan.json"


def plan_record(results: str | Path) -> dict[str, Any] | None:
    """plan.json of the study (header, rows, evaluation), or None when there is none."""
    path = Path(results) / PLAN_FILE
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(record, dict) or not isinstance(record.get("rows"), list):
        raise ValueError(f"{path}: expected an object with a 'rows' list (mlx-instruct plan)")
    return record


def machine_line(record: dict[str, Any]) -> dict[str, Any]:
    """Where the plan was measured: processor, platform, device, usable memory and source."""
    machine = record.get("machine") or {}
    return {
        "processor": machine.get("processor") or "unknown processor",
        "platform": machine.get("platform") or "",
        "device": record.get("device") or "",
        "usable_gb": record.get("usable_memory_gb"),
        "usable_source": record.get("usable_memory_source") or "",
        "commit": (record.get("git") or {}).get("commit") or "",
        "measured_at": record.get("measured_at") or "",
    }


def plan_table(record: dict[str, Any] | None) -> pd.DataFrame:
    """One row per trained arm: trained parameters, peak memory against usable memory, step
    time, estimated training and evaluation minutes (all seeds), fits, whose dry run."""
    if not record or not record["rows"]:
        return pd.DataFrame()
    rows = pd.DataFrame(record["rows"])
    table = pd.DataFrame(
        {
            "experiment": rows["experiment"],
            "method": rows["method"],
            "trained params": rows["trainable_params"].map(lambda v: f"{int(v):,}"),
            "trained %": rows["trainable_pct"],
            "peak GB": rows["peak_memory_gb"],
            "usable GB": rows["usable_gb"],
            "fits": rows["fits"],
            "step s": rows["step_s"],
            "seeds": rows["seeds"],
            "est. train min": rows["est_min_all_seeds"],
        }
    )
    if "est_eval_min_all_seeds" in rows:
        table["est. eval min"] = rows["est_eval_min_all_seeds"]
    if "measured_as" in rows:
        table["dry run of"] = rows["measured_as"]
    return table


def plan_totals(record: dict[str, Any] | None) -> dict[str, float] | None:
    """Estimated minutes: training, evaluation per model and for all models, study total."""
    evaluation = (record or {}).get("evaluation")
    if not evaluation:
        return None
    keys = ("train_total_min", "per_model_min", "all_models_min", "study_total_min", "models")
    return {k: float(evaluation[k]) for k in keys if k in evaluation}


def _measured_eval_min(timing: pd.DataFrame | None) -> dict[str, float]:
    """Mean measured minutes of the `evaluate` rule per experiment (benchmarks/evaluate/)."""
    if timing is None or not len(timing) or "rule" not in timing:
        return {}
    jobs = timing[timing["rule"] == "evaluate"]
    experiment = jobs["wildcards"].str.rsplit("-s", n=1).str[0]
    return (jobs["seconds"].groupby(experiment).mean() / 60).to_dict()


def plan_vs_measured(
    record: dict[str, Any] | None, runs: pd.DataFrame | None, timing: pd.DataFrame | None
) -> pd.DataFrame:
    """Per trained arm: the plan's estimated minutes per run next to the measured mean over
    its seeds (training: run.json's wall time; evaluation: the `evaluate` benchmark), and
    measured / estimated. Empty when there is no plan or nothing was measured."""
    table = plan_table(record)
    if table.empty or runs is None or not len(runs) or "wall_time_s" not in runs:
        return pd.DataFrame()
    rows = pd.DataFrame(record["rows"]).set_index("experiment")
    wall = runs.groupby("experiment")["wall_time_s"].mean() / 60
    evals = _measured_eval_min(timing)
    out = []
    for experiment, row in rows.iterrows():
        measured = float(wall.get(experiment, np.nan))
        estimated = float(row["est_min_per_run"])
        entry = {
            "experiment": experiment,
            "est. train min": estimated,
            "measured train min": measured,
            "train measured / est.": measured / estimated if estimated > 0 else np.nan,
        }
        if "est_eval_min_per_run" in row and experiment in evals:
            entry["est. eval min"] = float(row["est_eval_min_per_run"])
            entry["measured eval min"] = evals[experiment]
        out.append(entry)
    frame = pd.DataFrame(out)
    return frame[frame["measured train min"].notna()].reset_index(drop=True)
