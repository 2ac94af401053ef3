"""The paper: every code cell of paper/report.qmd runs against a study's results, and the
document's structure holds (front matter, cross-reference labels, figure files, citations).

Runs on a synthetic results tree (tests/fixtures/analysis) and, when it exists, on the smoke
study's real results (results/smoke) or on $MLX_INSTRUCT_TEST_RESULTS.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import yaml  # noqa: E402
from conftest import load_results_fixture  # noqa: E402

from mlx_instruct.analysis import artifacts, knit, paper  # noqa: E402
from mlx_instruct.analysis.__main__ import main as cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "paper"
REF = re.compile(r"@((?:fig|tbl|sec)-[A-Za-z0-9_-]+)")
CITE = re.compile(r"(?<![\w@])@([A-Za-z][\w:-]*\d{4}[\w-]*)")


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> Path:
    """The synthetic study, aggregated, with its figures and tables written by the CLIs."""
    study = load_results_fixture().aggregated(tmp_path_factory.mktemp("analysis"))
    assert cli(["figures", "--results", str(study), "--formats", "png"]) == 0
    assert cli(["tables", "--results", str(study)]) == 0
    return study


def _study_dirs() -> list:
    params = [pytest.param("synthetic", id="synthetic"), pytest.param("minimal", id="minimal")]
    smoke = Path(os.environ.get("MLX_INSTRUCT_TEST_RESULTS", ROOT / "results" / "smoke"))
    params.append(
        pytest.param(
            smoke,
            id=smoke.name,
            marks=pytest.mark.skipif(
                not (smoke / "results.parquet").is_file(),
                reason=f"no aggregated results at {smoke} (run the smoke study first)",
            ),
        )
    )
    return params


@pytest.fixture(scope="session", params=_study_dirs())
def knitted(request, tmp_path_factory) -> tuple[Path, Path]:
    """(results folder, executed report.md): every code cell and inline expression run."""
    if request.param == "synthetic":
        results = request.getfixturevalue("synthetic")
    elif request.param == "minimal":  # one adapter, two suites, no weights: every placeholder path
        results = load_results_fixture().aggregated(
            tmp_path_factory.mktemp("minimal"), minimal=True
        )
        assert cli(["figures", "--results", str(results), "--formats", "png"]) == 0
    else:
        results = Path(request.param)
    out = tmp_path_factory.mktemp("report")
    return results, knit.knit(PAPER / "report.qmd", out, results=results)


@pytest.fixture(scope="session")
def source() -> knit.Document:
    return knit.parse(PAPER / "report.qmd")


def _front(path: Path) -> dict:
    return knit._split_front(path.read_text(encoding="utf-8"))[0]


def test_the_quarto_project_renders_html_and_typst(source: knit.Document) -> None:
    project = yaml.safe_load((PAPER / "_quarto.yml").read_text())
    assert {"html", "typst"} <= set(project["format"])
    assert project["execute"]["echo"] is False
    assert source.front["title"] and {"html", "typst"} <= set(source.front["format"])
    assert (PAPER / project["bibliography"]).is_file()


def test_every_reference_has_a_label_and_every_citation_a_bib_entry(source: knit.Document) -> None:
    labels = {cell.label for cell in source.cells if cell.label}
    labels |= set(re.findall(r"\{#((?:sec|fig|tbl)-[A-Za-z0-9_-]+)", source.text))
    assert len([label for label in labels if label.startswith("fig-")]) >= 10
    missing = set(REF.findall(source.text)) - labels
    assert not missing, f"cross-references without a label: {sorted(missing)}"
    bib = (PAPER / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    cited = set(CITE.findall(source.text))
    assert cited and cited <= keys, f"citations missing from references.bib: {sorted(cited - keys)}"
    for needed in ("hu2022lora", "biderman2024lora", "roy2007effective", "efron1987better"):
        assert needed in cited


def test_every_cell_ran_and_every_figure_cell_produced_its_figure(
    knitted, source: knit.Document
) -> None:
    results, doc = knitted
    text = doc.read_text(encoding="utf-8")
    assert "`{python}" not in text and "```{python}" not in text
    for cell in source.cells:
        if cell.label and cell.label.startswith("fig-"):
            match = re.search(rf"!\[[^\]]*\]\(([^)]+)\)\{{#{cell.label}\b", text)
            assert match, f"{cell.label}: no figure in the output"
            image = doc.parent / match[1]
            assert image.is_file() and image.stat().st_size > 1000, image
        if cell.label and cell.label.startswith("tbl-"):
            assert re.search(rf"\|\n\n: [^\n]*\{{#{cell.label}\}}", text), (
                f"{cell.label}: no table before its caption"
            )


def test_the_report_shows_the_figures_the_figures_rule_wrote(knitted, source) -> None:
    """One path per figure: each `fig-` cell shows figures/<name>.png byte for byte (the
    file whose sidecar names the function that drew it); the report draws nothing again."""
    results, doc = knitted
    shown = {}
    for cell in source.cells:
        if cell.label and cell.label.startswith("fig-"):
            name = re.fullmatch(r'S\.figure\("(\w+)"\)\s*', cell.source)
            assert name, f"{cell.label}: a figure cell shows a written file: {cell.source!r}"
            shown[cell.label] = name[1]
    assert set(shown.values()) <= {a.name for a in artifacts.FIGURES}
    for label, name in shown.items():
        written = results / "figures" / f"{name}.png"
        assert (doc.parent / "report_files" / f"{label}.png").read_bytes() == written.read_bytes()
        assert json.loads(written.with_suffix(".json").read_text())["function"]


def test_a_missing_figure_file_says_which_rule_writes_it(tmp_path: Path) -> None:
    from mlx_instruct.analysis.report import Study

    study = load_results_fixture().aggregated(tmp_path, minimal=True)
    with pytest.raises(FileNotFoundError, match="analysis figures --results"):
        Study(study).figure("never_written")


def test_the_executed_report_is_well_formed(knitted) -> None:
    results, doc = knitted
    front = _front(doc)
    from mlx_instruct.analysis.report import Study

    study = Study(results)
    assert front["title"] == study.title and study.name in front["subtitle"]
    assert {"html", "typst"} <= set(front["format"]) and front["format"]["typst"][
        "papersize"
    ] == "a4"
    assert (doc.parent / front["bibliography"]).is_file()
    text = doc.read_text(encoding="utf-8")
    labels = set(re.findall(r"\{#((?:sec|fig|tbl)-[A-Za-z0-9_-]+)", text))
    assert set(REF.findall(text)) <= labels
    assert "nan" not in re.sub(r"[A-Za-z]nan|nan[A-Za-z]", "", text)  # no unformatted missing value
    for experiment in study.tuned:
        assert experiment in text


def test_figures_and_tables_clis_write_indexes_and_sidecars(synthetic: Path) -> None:
    index = json.loads((synthetic / "figures" / "index.json").read_text())
    assert [entry["name"] for entry in index["figures"]] == [a.name for a in artifacts.FIGURES]
    for entry in index["figures"]:
        sidecar = json.loads((synthetic / "figures" / f"{entry['name']}.json").read_text())
        assert sidecar["function"].startswith("mlx_instruct.analysis.figures")
        # every input the study has is hashed (the deployment stage's are absent here)
        present = [item for item in sidecar["inputs"] if (synthetic / item["path"]).is_file()]
        assert all(item["sha256"] for item in present), sidecar["inputs"]
        assert (synthetic / "figures" / f"{entry['name']}.png").stat().st_size > 1000
    tables = json.loads((synthetic / "tables" / "index.json").read_text())
    for entry in tables["tables"]:
        assert (synthetic / "tables" / f"{entry['name']}.csv").is_file()
        assert (synthetic / "tables" / f"{entry['name']}.md").read_text().startswith("|")


def _stub_knit(monkeypatch) -> None:
    def fake(qmd, out, results=None, config=None):
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text("---\ntitle: t\n---\n\nbody\n")
        return out / "report.md"

    monkeypatch.setattr(knit, "knit", fake)


def test_without_quarto_the_report_warns_and_succeeds_and_paper_fails(
    synthetic: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setattr(paper, "find_quarto", lambda: None)
    _stub_knit(monkeypatch)
    assert paper.main(str(synthetic), str(tmp_path / "report")) == 0
    err = capsys.readouterr().err
    assert (
        "WARNING: Quarto CLI not found: the paper was not rendered" in err and "quarto.org" in err
    )
    assert "Not rendered" in (tmp_path / "report" / "STATUS.md").read_text()
    assert "snakemake --cores 1 paper" in (tmp_path / "report" / "NOT_RENDERED.md").read_text()
    assert paper.main(str(synthetic), str(tmp_path / "report"), require=True) == 1
    assert "ERROR: Quarto CLI not found" in capsys.readouterr().err


def test_with_quarto_each_format_is_rendered(synthetic: Path, tmp_path: Path, monkeypatch) -> None:
    fake = tmp_path / "quarto"
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = "--version" ]; then echo 1.7.0; exit 0; fi\nstem="${2%.md}"\ncase "$4" in html) touch "$stem.html";; *) touch "$stem.pdf";; esac\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("QUARTO_PATH", str(fake))
    _stub_knit(monkeypatch)
    out = tmp_path / "report"
    out.mkdir()
    (out / "NOT_RENDERED.md").write_text("stale")
    assert paper.main(str(synthetic), str(out), require=True) == 0
    assert (out / "report.html").is_file() and (out / "report.pdf").is_file()
    assert not (out / "NOT_RENDERED.md").exists()
    assert "Quarto 1.7.0" in (out / "STATUS.md").read_text()


def test_paper_cli_exits_nonzero_with_the_message_when_quarto_is_missing(synthetic: Path) -> None:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent), "QUARTO_PATH": ""}
    if (Path(sys.executable).parent / "quarto").exists():  # PATH below hides any other
        pytest.skip("Quarto is installed into this environment")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlx_instruct.analysis",
            "paper",
            "--results",
            str(synthetic),
            "--out",
            str(synthetic / "report"),
            "--require",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Quarto CLI not found: the paper was not rendered" in done.stderr


def test_knit_reports_the_failing_cell_by_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "_part.qmd").write_text(
        "Value: `{python} x + 1`.\n\n```{python}\n#| label: fig-bad\n1 / 0\n```\n"
    )
    (tmp_path / "doc.qmd").write_text(
        '---\ntitle: "t"\n---\n\n```{python}\n#| include: false\nx = 41\n```\n\n{{< include _part.qmd >}}\n'
    )
    with pytest.raises(
        knit.KnitError, match=r"_part.qmd:3: cell fig-bad failed: ZeroDivisionError"
    ):
        knit.knit(tmp_path / "doc.qmd", tmp_path / "out")
    (tmp_path / "_part.qmd").write_text("Value: `{python} x + 1`.\n")
    text = knit.knit(tmp_path / "doc.qmd", tmp_path / "out").read_text()
    assert "Value: 42." in text and "x = 41" not in text


def test_preview_reexecutes_the_report_when_a_source_changes(synthetic: Path, tmp_path: Path):
    """The author's loop (`analysis preview`), with a stand-in for `quarto preview`: saving
    the document re-executes it into report Markdown that Quarto's server re-renders."""
    fake = tmp_path / "quarto"
    fake.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\nexec sleep 120\n')
    fake.chmod(0o755)
    doc = tmp_path / "paper" / "doc.qmd"
    doc.parent.mkdir()
    doc.write_text(
        '---\ntitle: "t"\n---\n\n```{python}\n#| include: false\nx = 1\n```\n\nValue: `{python} x`.\n'
    )
    out = tmp_path / "out"
    args = ["preview", "--results", str(synthetic), "--out", str(out), "--qmd", str(doc)]
    server = subprocess.Popen(
        [sys.executable, "-m", "mlx_instruct.analysis", *args, "--no-browser", "--port", "4999"],
        cwd=ROOT,
        env={**os.environ, "QUARTO_PATH": str(fake)},
    )

    def shows(text: str) -> bool:
        for _ in range(120):
            if (out / "doc.md").is_file() and text in (out / "doc.md").read_text():
                return True
            time.sleep(0.5)
        return False

    try:
        assert shows("Value: 1.")
        doc.write_text(doc.read_text().replace("x = 1", "x = 2"))
        assert shows("Value: 2.")
        assert (tmp_path / "args").read_text().split() == [
            "preview",
            "doc.md",
            "--to",
            "html",
            "--no-browser",
            "--port",
            "4999",
        ]
    finally:
        server.terminate()
        assert server.wait(timeout=60) == 0


def test_knit_rejects_a_cell_option_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "doc.qmd").write_text("```{python}\n#| label: fig-x\n#| fig-width: 4\n1\n```\n")
    with pytest.raises(knit.KnitError, match=r"doc.qmd:1: cell option\(s\) fig-width not"):
        knit.parse(tmp_path / "doc.qmd")


def test_the_report_rule_depends_on_every_paper_source_and_the_code_it_imports() -> None:
    sources = {p.relative_to(ROOT).as_posix() for p in knit.sources()}
    sections = {p.relative_to(ROOT).as_posix() for p in (PAPER / "sections").glob("*.qmd")}
    assert sections and sections <= sources
    assert {"paper/report.qmd", "paper/_quarto.yml", "paper/references.bib"} <= sources
    assert {
        "paper/theme.scss",
        "paper/table-widths.lua",
        "workflow/mlx_instruct/analysis/knit.py",
    } <= sources
    assert "workflow/mlx_instruct/analysis/narrative.py" in sources
    assert (
        "workflow/mlx_instruct/analysis/stats.py" in sources
    )  # imported by a module the cells import
    rule = (ROOT / "workflow/rules/report.smk").read_text()
    assert "knit_lib.sources(" in rule and "figures/index.json" in rule
    drawing = {p.relative_to(ROOT).as_posix() for p in knit.figure_sources()}
    assert {
        "workflow/mlx_instruct/analysis/figures.py",
        "workflow/mlx_instruct/analysis/figures_weights.py",
    } <= drawing
    assert "knit_lib.figure_sources()" in (ROOT / "workflow/rules/analyse.smk").read_text()
