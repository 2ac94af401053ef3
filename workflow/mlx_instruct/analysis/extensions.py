"""The plan's extension experiments (section 15) that change one training setting: curriculum
ordering (`data_order`), mixed vs full precision (`dtype`) and the learning rate.

Each extension arm is compared with its control, the experiment whose resolved training
settings differ from the arm's in that one setting only (the arm sets it in its
`experiments:` entry, the control takes the study's value), at the training seeds both ran:
speed, peak memory and losses from run.json, loss curves from the logs, and paired item-level
contrasts of the outcomes (summary.compare, BCa). Facts only: the words are in
paper/sections/_extensions.qmd.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlx_instruct.analysis.report import Study, diff, num
from mlx_instruct.analysis.summary import compare
from mlx_instruct.config import TrainingSettings, experiment_settings

# the settings an extension experiment varies, in the report's order
EXTENSION_KEYS = ("data_order", "dtype", "learning_rate")
# run.json fields compared between an arm and its control
RUN_FIELDS = ("tokens_per_s", "peak_memory_gb", "train_time_s", "best_val_loss", "final_train_loss")
# outcomes compared, paired on the item: (suite, metric)
OUTCOMES = (("adherence", None), ("retention", "score"))


@dataclass(frozen=True)
class Arm:
    """One extension arm and its control: they differ in `key` alone."""

    key: str
    arm: str
    control: str
    value: Any  # the arm's setting
    control_value: Any
    seeds: tuple[int, ...]  # training seeds both ran


def _resolved(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every trained experiment's complete typed settings (seeds left out)."""
    out = {}
    for name in config["experiments"]:
        settings = experiment_settings(config, name)
        if settings["method"] != "none":
            typed = asdict(TrainingSettings.from_dict(settings))
            typed.pop("seeds")
            out[name] = {**typed, "_seeds": tuple(settings["seeds"])}
    return out


def arms(config: dict[str, Any], key: str | None = None) -> list[Arm]:
    """The study's extension arms (of one `key`, or all), each with its control."""
    resolved = _resolved(config)
    found = []
    for name, mine in resolved.items():
        for other, theirs in resolved.items():
            differ = [k for k in mine if k != "_seeds" and mine[k] != theirs[k]]
            if len(differ) != 1 or differ[0] not in EXTENSION_KEYS:
                continue
            k = differ[0]
            if k not in config["experiments"][name] or k in config["experiments"][other]:
                continue  # the arm sets the key; the control takes the study's value
            seeds = tuple(s for s in mine["_seeds"] if s in theirs["_seeds"])
            if seeds and (key is None or k == key):
                found.append(Arm(k, name, other, mine[k], theirs[k], seeds))
    return sorted(found, key=lambda a: (EXTENSION_KEYS.index(a.key), list(resolved).index(a.arm)))


def run_means(runs: pd.DataFrame, experiment: str, seeds: tuple[int, ...]) -> dict[str, float]:
    """Mean of each RUN_FIELDS value over `seeds` (NaN where absent)."""
    if runs is None or runs.empty:
        return {f: float("nan") for f in RUN_FIELDS}
    rows = runs[(runs["experiment"] == experiment) & runs["seed"].isin(seeds)]
    return {
        f: float(pd.to_numeric(rows[f], errors="coerce").mean())
        if f in rows and len(rows)
        else float("nan")
        for f in RUN_FIELDS
    }


def contrasts(study: Study, arm: Arm) -> dict[str, dict]:
    """Paired outcome contrasts arm - control on the seeds both ran ({} where not measured)."""
    results = study.results
    if results.empty:
        return {}
    shared = results[
        results["experiment"].isin([arm.arm, arm.control]) & results["seed"].isin(arm.seeds)
    ]
    out = {}
    for suite, metric in OUTCOMES:
        row = compare(shared, arm.control, arm.arm, suite, metric, boot=study.boot)
        if row:
            out[suite] = row
    return out


@dataclass(frozen=True)
class Facts:
    """What one subsection states about an arm."""

    arm: Arm
    runs: dict[str, float]  # the arm's RUN_FIELDS means
    control_runs: dict[str, float]
    outcomes: dict[str, dict]  # suite -> contrast row (arm - control)

    def ratio(self, field: str) -> float:
        """arm / control for a RUN_FIELDS value (speed-up, memory ratio)."""
        a, b = self.runs[field], self.control_runs[field]
        return a / b if np.isfinite(a) and np.isfinite(b) and b else float("nan")


def facts(study: Study, key: str) -> list[Facts]:
    """The facts of every arm of `key` in the study ([] when it has none)."""
    return [
        Facts(a, run_means(study.runs, a.arm, a.seeds), run_means(study.runs, a.control, a.seeds), contrasts(study, a))
        for a in arms(study.config, key)
    ]  # fmt: skip


def table(found: list[Facts]) -> pd.DataFrame:
    """One row per arm and one per control: the setting, speed, memory, losses and the paired
    outcome changes (on the arm's row)."""
    rows = []
    for f in found:
        for name, value, values, is_arm in (
            (f.arm.control, f.arm.control_value, f.control_runs, False),
            (f.arm.arm, f.arm.value, f.runs, True),
        ):
            row = {
                "experiment": name,
                "setting": f"{f.arm.key} = {value}",
                "seeds": len(f.arm.seeds),
            }
            row["tokens/s"] = num(values["tokens_per_s"], 0)
            row["peak memory (GB)"] = num(values["peak_memory_gb"], 2)
            row["train time (s)"] = num(values["train_time_s"], 0)
            row["best val loss"] = num(values["best_val_loss"], 3)
            row["final train loss"] = num(values["final_train_loss"], 3)
            for suite, _ in OUTCOMES:
                row[f"{suite} \u0394"] = (
                    diff(f.outcomes.get(suite), 1 if suite == "adherence" else 3)
                    if is_arm
                    else "(control)"
                )
            rows.append(row)
    return pd.DataFrame(rows)
