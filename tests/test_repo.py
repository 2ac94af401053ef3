"""What a new user sees: the README's commands, CI, and a workflow that plans every study."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TEST_COMMAND = "bash workflow/setup.sh && uv run pytest"
MAIN_COMMAND = "bash workflow/setup.sh && uv run snakemake --cores 1"


def test_readme_shows_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert MAIN_COMMAND in readme
    assert TEST_COMMAND in readme
    ci_lines = [
        line
        for line in (ROOT / ".ci/run").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # .ci/run installs the render checks' tools (Quarto, Chromium, poppler-utils), then
    # runs exactly the README's command, once, as its last line.
    assert ci_lines[-1] == TEST_COMMAND and ci_lines.count(TEST_COMMAND) == 1
    assert "install-quarto.sh" in (ROOT / ".ci/run").read_text()


def _snakemake(*args: str, results_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--cores",
            "1",
            "-n",
            "--quiet",
            "rules",
            *args,
            "--config",
            f"results_dir={results_dir}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("study", [None, "configs/smoke.yaml", "configs/mistral-7b.yaml"])
def test_dry_run_plans_the_whole_study(study: str | None, tmp_path: Path) -> None:
    args = ["--configfile", study] if study else []
    result = _snakemake(*args, results_dir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    config = yaml.safe_load((ROOT / (study or "config.yaml")).read_text())
    # report.plan (default true) puts the plan rule in the DAG; config.yaml turns it off
    planned = ["plan"] if config.get("report", {}).get("plan", True) else []
    for rule in (
        "prepare_model",
        "prepare_data",
        "train",
        "evaluate",
        "aggregate",
        "figures",
        *planned,
        "report",
    ):
        assert rule in _rules(result.stdout), (
            f"{rule} missing from the DAG of {study or 'config.yaml'}"
        )


def _rules(stdout: str) -> set[str]:
    """Rule names of `snakemake -n --quiet rules` (the first word of each table row)."""
    return {line.split()[0] for line in stdout.splitlines() if line.split()}


def test_report_plan_false_leaves_the_plan_rule_out(tmp_path: Path) -> None:
    study = yaml.safe_load((ROOT / "configs/smoke.yaml").read_text())
    study["report"]["plan"] = False
    path = tmp_path / "no-plan.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    result = _snakemake("--configfile", str(path), results_dir=tmp_path / "results")
    assert result.returncode == 0, result.stderr[-3000:]
    rules = _rules(result.stdout)
    assert "report" in rules and "plan" not in rules


def test_bad_study_fails_before_any_compute(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = (
        (ROOT / "configs/smoke.yaml")
        .read_text()
        .replace("rank: 8\n  alpha", "rank: -8\n  alpha", 1)
    )
    bad.write_text(text)
    result = _snakemake("--configfile", str(bad), results_dir=tmp_path / "results")
    assert result.returncode != 0
    assert "training.rank" in result.stderr + result.stdout
