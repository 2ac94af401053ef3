"""deploy card: the model card's front matter parses as YAML with the Hub's keys, its results
and intervals are the study's summary.csv rows, missing contrasts say "not evaluated", and the
data licenses come from the vendored manifest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import load_results_fixture
from test_deploy_support import deploy_base, make_lora_run  # noqa: F401

from mlx_instruct.deploy.card import interval, main
from mlx_instruct.deploy.export import main as export
from mlx_instruct.deploy.settings import evaluated_as


@pytest.fixture(scope="module")
def study(deploy_base, tmp_path_factory):  # noqa: F811
    """The minimal synthetic study (base, lora-r8) and lora-r8's export (fused, q4)."""
    root = tmp_path_factory.mktemp("card")
    results = load_results_fixture().aggregated(root / "fixture", minimal=True)
    run = make_lora_run(deploy_base, root / "lora-r8", rank=8)
    argv = ["--config", str(results / "config.resolved.yaml"), "--experiment", "lora-r8",
            "--seed", "0", "--model", str(deploy_base), "--run", str(run), "--bits", "4",
            "--out", str(root / "out")]  # fmt: skip
    assert export(argv) == 0
    return {"results": results, "out": root / "out", "root": root}


def _card(variant: Path, results: Path, out: Path) -> tuple[dict, str]:
    assert main(["--variant-dir", str(variant), "--results", str(results), "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("---\n")
    front, body = text.removeprefix("---\n").split("\n---\n", 1)
    return yaml.safe_load(front), body


def _with_variant_rows(study: dict, tmp_path: Path) -> Path:
    """A copy of the results whose summary also holds lora-r8-q4 vs base and vs lora-r8."""
    results = tmp_path / "results"
    shutil.copytree(study["results"], results)
    summary = pd.read_csv(results / "summary.csv")
    name = evaluated_as("lora-r8", "q4")
    own = summary[summary["experiment"] == "lora-r8"].assign(experiment=name, mean=0.5)
    pair = own.assign(kind="pair", reference="lora-r8", diff=-0.125, diff_low=-0.25, diff_high=0.0)
    pd.concat([summary, own, pair]).to_csv(results / "summary.csv", index=False)
    return results


def test_fused_card_front_matter_and_results_from_summary(study, tmp_path):
    front, body = _card(study["out"] / "fused", study["results"], tmp_path / "README.md")
    assert front["library_name"] == "mlx" and front["pipeline_tag"] == "text-generation"
    assert front["base_model"] == "random://mistral-tiny"
    assert {"mlx", "lora", "fused"} <= set(front["tags"])
    assert front["datasets"] == ["generator://verifiable"]
    summary = pd.read_csv(study["results"] / "summary.csv")
    row = summary.query("experiment == 'lora-r8' and level == 'suite' and metric == 'adherence'")
    row = row.iloc[0]
    [index] = front["model-index"]
    assert index["name"] == "minimal/lora-r8/s0/fused"
    metrics = {r["metrics"][0]["type"]: r["metrics"][0] for r in index["results"]}
    assert metrics["adherence"]["value"] == pytest.approx(row["mean"], abs=1e-6)
    assert f"{row['ci_low']:.4g} to {row['ci_high']:.4g}" in metrics["adherence"]["name"]
    assert interval(row["diff"], row["diff_low"], row["diff_high"]) in body
    assert "### The source run against the base model" in body
    assert "against its fused source" not in body  # the fused model is the run itself
    for section in ("## Intended use", "## Limitations", "## Provenance", "## Data and licenses"):
        assert section in body
    assert "| config fingerprint |" in body and "| rank | 8 |" in body


def test_quantized_card_without_its_evaluation_says_not_evaluated(study, tmp_path):
    front, body = _card(study["out"] / "q4", study["results"], tmp_path / "README.md")
    assert front["model-index"] == [] and "4-bit" in front["tags"]
    assert body.count("Not evaluated") == 2
    assert "quantized to 4 bits (group size 64, affine)" in body


def test_quantized_card_shows_drift_against_its_fused_source(study, tmp_path):
    results = _with_variant_rows(study, tmp_path)
    front, body = _card(study["out"] / "q4", results, tmp_path / "README.md")
    assert "Not evaluated" not in body
    assert "| lora-r8-q4 | lora-r8 | difference |" in body
    assert "-0.125 [-0.25, 0]" in body
    values = {r["metrics"][0]["value"] for r in front["model-index"][0]["results"]}
    assert values == {0.5}


def test_data_licenses_come_from_the_manifest(study, tmp_path):
    from mlx_instruct.resources import datasets

    results = tmp_path / "results"
    shutil.copytree(study["results"], results)
    config = yaml.safe_load((results / "config.resolved.yaml").read_text())
    config["data"]["sources"].append({"uri": "resource://alpaca", "n": 100})
    (results / "config.resolved.yaml").write_text(yaml.safe_dump(config))
    front, body = _card(study["out"] / "fused", results, tmp_path / "README.md")
    license = datasets()["alpaca"].license
    assert front["data_licenses"]["alpaca"] == license
    assert f"| alpaca | training | {license} |" in body


def test_base_model_card_has_no_training_section(study, deploy_base, tmp_path):  # noqa: F811
    argv = ["--config", str(study["results"] / "config.resolved.yaml"), "--experiment", "base",
            "--seed", "0", "--model", str(deploy_base), "--bits", "--out", str(tmp_path / "b")]  # fmt: skip
    assert export(argv) == 0
    front, body = _card(tmp_path / "b" / "fused", study["results"], tmp_path / "README.md")
    assert front["datasets"] == [] and front["data_licenses"] == {}
    assert "Nothing was trained" in body and "| dataset |" not in body
    assert "| method | none |" in body and "| rank |" not in body
    assert "### The base model" in body and "Not evaluated" not in body


def test_missing_inputs_name_the_file(study, tmp_path, capsys):
    out = tmp_path / "README.md"
    argv = ["--variant-dir", str(tmp_path), "--results", str(study["results"]), "--out", str(out)]
    assert main(argv) == 2
    assert f"{tmp_path / 'provenance.json'}: not found" in capsys.readouterr().err
    argv = [
        "--variant-dir",
        str(study["out"] / "q4"),
        "--results",
        str(tmp_path),
        "--out",
        str(out),
    ]
    assert main(argv) == 2
    assert "summary.csv: not found" in capsys.readouterr().err
    assert not out.exists()
