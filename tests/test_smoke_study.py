"""The smoke study end to end through Snakemake, then the paper extended by one experiment.

This is what CI proves: every stage runs for every method, the report renders with real
Quarto to HTML and PDF with every figure, table, cross-reference and citation resolved and
reads in a browser without errors, editing a section of the paper re-renders it, the tidy
table and figures pick up a new config entry with no code change, and editing the study
reruns only what depends on the edit. It all runs in a copy of the repository placed where
nothing is beside it (no ../shared), importing the copy's own code, so the study proves it
stands alone. The render checks need Quarto, poppler-utils and
Chromium: skipped where they are missing, failed under CI (tests/report_checks.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import report_checks
import yaml

from mlx_instruct.evaluate.metrics import COLUMNS

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def standalone_copy(dest: Path) -> Path:
    """The repository's tracked and new (not ignored) files copied to dest/mlx-instruct, the
    only entry of dest: a clone as a user has it, nothing beside it."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    clone = dest / "mlx-instruct"
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    return clone


def standalone_path(clone: Path) -> str:
    return str(clone / "workflow")


def clone_of(results_dir: Path) -> Path:
    return results_dir.parent / "alone" / "mlx-instruct"


def snakemake(configfile: Path, results_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    """Snakemake in the standalone copy beside `results_dir`, on the copy's own code (its
    workflow/ first on PYTHONPATH, ahead of the editable install)."""
    clone = clone_of(results_dir)
    env = {**os.environ, "PYTHONPATH": standalone_path(clone)}
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
    return subprocess.run(command, cwd=clone, env=env, capture_output=True, text=True, timeout=1800)


def _failure(result: subprocess.CompletedProcess, results: Path) -> str:
    logs = sorted(results.rglob("*.log"))
    tails = "\n".join(f"--- {log}\n{log.read_text()[-1500:]}" for log in logs[-4:])
    return f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}\n{tails}"


def run_smoke_study(base: Path) -> tuple[Path, Path]:
    """(config file, study results) of the whole smoke study run in a standalone copy under
    base: conftest.py's session fixture `smoke`, shared with tests/test_slurm_cluster.py."""
    results_dir = base / "results"
    configfile = base / "smoke.yaml"
    configfile.write_text((ROOT / "configs/smoke.yaml").read_text())
    clone = standalone_copy(base / "alone")
    assert clone == clone_of(results_dir) and [p.name for p in clone.parent.iterdir()] == [
        clone.name
    ]
    env = {**os.environ, "PYTHONPATH": standalone_path(clone)}
    probe = (
        "import mlx_instruct.resources as r, mlx_instruct.analysis as a; "
        "print(r.DATA_DIR, a.__file__)"
    )
    where = subprocess.run(
        [sys.executable, "-c", probe], cwd=clone, env=env, capture_output=True, text=True
    )
    assert all(Path(p).is_relative_to(clone) for p in where.stdout.split()), where
    result = snakemake(configfile, results_dir)
    assert result.returncode == 0, _failure(result, results_dir)
    return configfile, results_dir / "smoke"


def test_smoke_study_produces_table_summary_figures_and_report(smoke: tuple[Path, Path]) -> None:
    configfile, results = smoke
    study = yaml.safe_load(configfile.read_text())
    table = pd.read_parquet(results / "results.parquet")
    assert list(table.columns[: len(COLUMNS)]) == list(COLUMNS)  # docs/contracts.md
    assert set(table["experiment"]) == set(study["experiments"])
    assert set(table["suite"]) >= {"adherence", "safety", "efficiency"}
    assert table["value"].notna().all()
    summary = pd.read_csv(results / "summary.csv")
    assert len(summary) > 0
    figures = json.loads((results / "figures/index.json").read_text())
    assert figures, "no figures were drawn"
    status = (results / "report/STATUS.md").read_text()
    assert "Quarto" in status or "rendered" in status.lower()
    # the deployment stage: every variant profiled and carded, the drift paired per item
    deployed = pd.read_parquet(results / "deployment.parquet")
    assert {"base", "base-q4", "lora-r8", "lora-r8-q4"} <= set(deployed["experiment"])
    assert {"profile", "speculative", "loadtest"} <= set(deployed["suite"])
    adherence = deployed.query("suite == 'adherence'").groupby("experiment")["item_id"]
    items = {name: set(ids) for name, ids in adherence}
    study = pd.read_parquet(results / "results.parquet").query(
        "suite == 'adherence' and experiment == 'lora-r8'"
    )
    assert items["lora-r8-q4"] == items["lora-r8"] < set(study["item_id"])  # deployment.n: 8
    drift = pd.read_csv(results / "deployment_summary.csv").query("kind == 'pair'")
    assert {("lora-r8-q4", "lora-r8"), ("merge-r8-retention", "lora-r8")} <= set(
        zip(drift["experiment"], drift["reference"], strict=True)
    )
    card = (results / "deploy/lora-r8/s0/q4/README.md").read_text()
    assert card.startswith("---\n") and "base_model" in card


def _rendered(results: Path) -> Path:
    report_checks.need("quarto", "install Quarto (README: Prerequisites) to render the report")
    report = results / "report"
    assert (report / "report.html").is_file() and (report / "report.pdf").is_file(), (
        report / "STATUS.md"
    ).read_text()
    return report


def test_the_report_renders_and_every_reference_resolves(smoke: tuple[Path, Path]) -> None:
    report = _rendered(smoke[1])
    assert "Rendered" in (report / "STATUS.md").read_text()
    assert report_checks.html_problems(report / "report.html") == []
    text, pages = report_checks.pdf_text(report / "report.pdf")
    assert 5 <= pages <= 60, f"{pages} pages"
    assert report_checks.HEADLINE in text, "the headline table (tbl-adherence) is not in the PDF"
    study = yaml.safe_load((smoke[1] / "config.resolved.yaml").read_text())
    for experiment in study["experiments"]:
        assert experiment in text
    assert not report_checks.UNRESOLVED.search(text) and "Bibliography" not in text
    assert not re.search(r"\b(?:experi|adher)-\s*$", text, re.M), "a table cell hyphenated"


def test_the_report_reads_in_a_browser(smoke: tuple[Path, Path]) -> None:
    report = _rendered(smoke[1])
    screenshot = report / "screenshot.png"
    state = report_checks.browse(report / "report.html", screenshot)
    # Kept past pytest's rotation of its tmp folders, to look at: results/ is git-ignored.
    keep = Path(os.environ.get("MLX_INSTRUCT_ARTIFACTS", ROOT / "results" / "test-artifacts"))
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy2(screenshot, keep / "report-first-screen.png")
    print(f"screenshot of the report's first screen: {keep / 'report-first-screen.png'}")
    assert screenshot.stat().st_size > 10_000
    assert state["errors"] == [], state["errors"]
    assert state["broken"] == [] and state["images"] >= len(report_checks.labels()["fig"])
    expected = report_checks.labels()
    assert set(expected["sec"]) <= set(state["sections"]), "sections missing or hidden"
    toc = [f"#{label}" for label in expected["toc"]]
    assert [href for href in state["toc"] if href in toc] == toc, (
        f"table of contents: {state['toc']}"
    )


def test_editing_a_section_or_the_analysis_code_rerenders_the_report(
    smoke: tuple[Path, Path],
) -> None:
    configfile, results = smoke
    clone = clone_of(results.parent)
    for edited in (
        clone / "paper/sections/_setup.qmd",
        clone / "workflow/mlx_instruct/analysis/narrative.py",
    ):
        # A real edit (Snakemake compares checksums, so a touch alone reruns nothing),
        # undone right after the dry run with the file's original mtime.
        original, before = edited.read_bytes(), edited.stat()
        edited.write_bytes(original + b"\n")
        try:
            plan = snakemake(configfile, results.parent, "-n", "--quiet", "rules")
        finally:
            edited.write_bytes(original)
            os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert plan.returncode == 0, plan.stderr[-3000:]
        jobs = _jobs(plan.stdout)
        assert jobs.get("report") == 1 and "train" not in jobs, f"{edited.name}: {plan.stdout}"


def _jobs(stdout: str) -> dict[str, int]:
    return {
        line.split()[0]: int(line.split()[1])
        for line in stdout.splitlines()
        if len(line.split()) == 2 and line.split()[1].isdigit()
    }


def test_adding_an_experiment_extends_the_paper(smoke: tuple[Path, Path]) -> None:
    configfile, results = smoke
    study = yaml.safe_load(configfile.read_text())
    study["experiments"]["lora-r2"] = {"rank": 2}
    configfile.write_text(yaml.safe_dump(study, sort_keys=False))
    plan = snakemake(configfile, results.parent, "-n", "--quiet", "rules")
    assert plan.returncode == 0, plan.stderr[-3000:]
    jobs = _jobs(plan.stdout)
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
    assert "lora-r2" in (results / "report/report.md").read_text()  # the report, re-executed
    # The rank-sweep figure, drawn by the same artifact the figures rule ran, has rank 2.
    from mlx_instruct.analysis import artifacts
    from mlx_instruct.analysis.report import Study

    sweep = next(a for a in artifacts.FIGURES if a.name == "rank_sweep")
    figure = sweep.draw(
        Study(results, yaml.safe_load((results / "config.resolved.yaml").read_text()))
    )
    ticks = {label.get_text() for axis in figure.axes for label in axis.get_xticklabels()}
    assert "2" in ticks, ticks
