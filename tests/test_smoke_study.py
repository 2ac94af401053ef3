"""The smoke study end to end through Snakemake, then the paper extended by one experiment.

This is what CI proves: every stage runs for every method, the tidy table and figures pick
up a new config entry with no code change, and editing the study reruns only what depends
on the edit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def snakemake(configfile: Path, results_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        "2",
        "--configfile",
        str(configfile),
        "--config",
        f"results_dir={results_dir}",
        *extra,
    ]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)


def _failure(result: subprocess.CompletedProcess, results: Path) -> str:
    logs = sorted(results.rglob("*.log"))
    tails = "\n".join(f"--- {log}\n{log.read_text()[-1500:]}" for log in logs[-4:])
    return f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}\n{tails}"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("smoke")
    results_dir = base / "results"
    configfile = base / "smoke.yaml"
    configfile.write_text((ROOT / "configs/smoke.yaml").read_text())
    result = snakemake(configfile, results_dir)
    assert result.returncode == 0, _failure(result, results_dir)
    return configfile, results_dir / "smoke"


def test_smoke_study_produces_table_summary_figures_and_report(smoke: tuple[Path, Path]) -> None:
    configfile, results = smoke
    study = yaml.safe_load(configfile.read_text())
    table = pd.read_parquet(results / "results.parquet")
    for column in (
        "study",
        "experiment",
        "method",
        "rank",
        "seed",
        "suite",
        "benchmark",
        "item_id",
        "metric",
        "value",
    ):
        assert column in table.columns
    assert set(table["experiment"]) == set(study["experiments"])
    assert set(table["suite"]) >= {"adherence", "safety", "efficiency"}
    assert table["value"].notna().all()
    summary = pd.read_csv(results / "summary.csv")
    assert len(summary) > 0
    figures = json.loads((results / "figures/index.json").read_text())
    assert figures, "no figures were drawn"
    status = (results / "report/STATUS.md").read_text()
    assert "Quarto" in status or "rendered" in status.lower()


def test_adding_an_experiment_extends_the_paper(smoke: tuple[Path, Path]) -> None:
    configfile, results = smoke
    study = yaml.safe_load(configfile.read_text())
    study["experiments"]["lora-r2"] = {"rank": 2}
    configfile.write_text(yaml.safe_dump(study, sort_keys=False))
    plan = snakemake(configfile, results.parent, "-n", "--quiet", "rules")
    assert plan.returncode == 0, plan.stderr[-3000:]
    jobs = {
        line.split()[0]: int(line.split()[1])
        for line in plan.stdout.splitlines()
        if len(line.split()) == 2 and line.split()[1].isdigit()
    }
    assert jobs.get("train") == 1, f"only the new experiment trains: {plan.stdout}"
    assert jobs.get("evaluate") == 1, f"only the new run is evaluated: {plan.stdout}"
    assert "prepare_data" not in jobs
    result = snakemake(configfile, results.parent)
    assert result.returncode == 0, _failure(result, results)
    table = pd.read_parquet(results / "results.parquet")
    assert "lora-r2" in set(table["experiment"])
    assert (table.loc[table["experiment"] == "lora-r2", "rank"] == 2).all()
    summary = pd.read_csv(results / "summary.csv")
    assert "lora-r2" in set(summary["experiment"])
    # The rank-sweep figure, drawn by the same artifact the figures rule ran, has rank 2.
    from analysis import artifacts
    from analysis.report import Study

    sweep = next(a for a in artifacts.FIGURES if a.name == "rank_sweep")
    figure = sweep.draw(
        Study(results, yaml.safe_load((results / "config.resolved.yaml").read_text()))
    )
    ticks = {label.get_text() for axis in figure.axes for label in axis.get_xticklabels()}
    assert "2" in ticks, ticks
