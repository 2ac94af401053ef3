"""A clone stands alone: the vendored data is complete and unaltered, nothing reads outside the
repository, and a study whose data is missing or wrong fails before any compute, naming the
key. (The smoke study end to end runs from a copy with nothing beside it: test_smoke_study.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlx_instruct import resources
from mlx_instruct.config import ConfigError, validate

ROOT = Path(__file__).resolve().parents[1]
# what a path out of the repository to the development machines' shared/ folder looks like
OUTSIDE = re.compile(r"""\.\./shared|["']shared["']\s*[/)]|parent\s*/\s*["']shared""")
RUN_TIME = ["workflow", "paper", "configs", "benchmarks", "Snakefile", "config.yaml"]


def test_no_run_time_path_reads_outside_the_repository() -> None:
    hits = []
    for top in RUN_TIME:
        base = ROOT / top
        files = [base] if base.is_file() else [p for p in base.rglob("*") if p.is_file()]
        for path in files:
            if path.suffix in {".pyc", ".png", ".svg", ".safetensors", ".md"}:
                continue  # .md: prose (e.g. how CI builds Quarto), never read by a stage
            text = path.read_text(encoding="utf-8", errors="replace")
            for number, line in enumerate(text.splitlines(), start=1):
                if OUTSIDE.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "run-time code refers to a folder outside the repository:\n" + "\n".join(hits)


def test_the_outside_pattern_catches_what_it_must() -> None:
    for line in (
        'ROOT.parent / "shared" / "data"',
        "test: ../shared/data/x.csv",
        "Path(root).parent/'shared'",
    ):
        assert OUTSIDE.search(line), line
    assert not OUTSIDE.search("requests that share a prefix (shared prefix)")


def test_every_vendored_file_matches_the_manifest() -> None:
    paths = resources.verify()
    listed = {p.relative_to(resources.DATA_DIR).as_posix() for p in paths}
    on_disk = {
        p.relative_to(resources.DATA_DIR).as_posix()
        for p in resources.DATA_DIR.rglob("*")
        if p.is_file() and p.parent.name != "LICENSES"
    } - {"README.md", "manifest.yaml"}
    assert listed == on_disk  # no unlisted file, no listed file missing
    assert len(paths) == 34


def test_the_readme_table_is_rendered_from_the_manifest() -> None:
    text = resources.README.read_text(encoding="utf-8")
    assert resources.render_readme(text) == text, (
        "resources/data/README.md is stale: run `uv run python -m mlx_instruct.resources readme`"
    )
    for dataset in resources.datasets().values():
        assert dataset.license and " @ " in dataset.source


def test_an_altered_vendored_file_stops_the_study_before_compute(vendored_copy: Path) -> None:
    target = vendored_copy / "xstest_prompts.csv"
    target.write_text(target.read_text(encoding="utf-8").replace("kill", "stop", 1))
    config = yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text())
    with pytest.raises(ConfigError) as error:
        validate(config, "smoke.yaml")
    message = str(error.value)
    assert "xstest_prompts.csv: sha256" in message and "does not match" in message
    assert "git checkout -- resources/data/xstest_prompts.csv" in message


def test_a_missing_vendored_file_names_the_suite_key(vendored_copy: Path) -> None:
    (vendored_copy / "alpaca_5000.json").unlink()
    config = yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text())
    with pytest.raises(ConfigError, match=r"evaluation\.suites\.semantic: .*alpaca_5000\.json: "):
        validate(config, "smoke.yaml")


def test_unknown_bbh_task_and_resource_are_config_errors() -> None:
    config = yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text())
    config["evaluation"]["suites"]["benchmarks"]["bbh"]["tasks"] = ["navigate", "snark"]
    with pytest.raises(ConfigError, match=r"bbh\.tasks\[1\]: no BBH task 'snark'"):
        validate(config, "smoke.yaml")
    config = yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text())
    config["data"]["sources"].append({"uri": "resource://dolly", "n": 10})
    with pytest.raises(ConfigError, match=r"data\.sources\[1\]\.uri: no vendored dataset 'dolly'"):
        validate(config, "smoke.yaml")


def test_resource_uri_reads_the_vendored_file() -> None:
    from mlx_instruct.data.readers import read_source

    records = read_source({"uri": "resource://alpaca", "n": 5}, seed=0)
    assert len(records) == 5 and all(r["instruction"] and r["output"] for r in records)


def test_check_config_cli_reports_a_bad_file_in_one_line(vendored_copy: Path) -> None:
    (vendored_copy / "bbh" / "navigate.json").write_text('{"examples": []}')
    from mlx_instruct.cli import check_config

    # in-process: the CLI sees the patched copy through mlx_instruct.resources
    assert check_config([str(ROOT / "configs" / "smoke.yaml")]) == 2


def test_resources_cli_verifies_the_repository_copy() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mlx_instruct.resources", "verify"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "34 vendored files match" in result.stdout
