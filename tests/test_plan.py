"""`mlx-instruct plan`: a dry run per trained arm of a study on the tiny model, the table it
prints and writes, the WARNING and exit status 3 for an arm that does not fit, and exit 2
for a bad study file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from test_train_support import tiny  # noqa: F401

from mlx_instruct import plan

ROOT = Path(__file__).resolve().parents[1]


def _study(tmp_path: Path, experiments: dict) -> Path:
    """configs/smoke.yaml with only `experiments` (a few arms keep the test short)."""
    study = yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text())
    study["experiments"] = {"base": {"method": "none"}, **experiments}
    study["report"]["pairs"] = []
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def _results(tiny, tmp_path: Path) -> Path:  # noqa: F811
    """A results dir holding the session's tiny model and data, as the workflow lays them out."""
    results = tmp_path / "results" / "smoke"
    (results / "models").mkdir(parents=True)
    (results / "models" / "base").symlink_to(tiny["model"], target_is_directory=True)
    (results / "data").symlink_to(tiny["data"], target_is_directory=True)
    return results


def test_plan_prints_a_row_per_trained_arm_and_writes_the_table(tiny, tmp_path, capsys):  # noqa: F811
    experiments = {
        "lora-r8": {"rank": 8, "seeds": [0, 1]},
        "full": {"method": "full", "learning_rate": 1.0e-4},
        "lora-r8-retention": {"rank": 8, "retention_fraction": 0.25},
    }
    config, results = _study(tmp_path, experiments), _results(tiny, tmp_path)
    assert plan.main([str(config), "--results", str(results)]) == plan.EXIT_OK
    out, err = capsys.readouterr()
    assert "WARNING" not in err and "evaluation time not estimated" in out
    assert "study training total" in out
    lines = out.splitlines()
    for name in experiments:
        assert any(line.split()[:1] == [name] for line in lines), name
    assert not any(line.startswith("base ") for line in lines)  # the untuned baseline
    with (results / "plan.csv").open() as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == plan.COLUMNS
        rows = {row["experiment"]: row for row in reader}
    assert list(rows) == list(experiments)
    for row in rows.values():
        assert float(row["step_s"]) > 0 and float(row["peak_memory_gb"]) > 0
        assert float(row["tokens_per_s"]) > 0 and row["fits"] == "yes"
        assert 0 < float(row["trainable_pct"]) <= 100
    lora = rows["lora-r8"]
    assert lora["seeds"] == "2" and lora["rank"] == "8" and rows["full"]["rank"] == ""
    assert float(lora["est_min_all_seeds"]) == pytest.approx(
        2 * float(lora["est_min_per_run"]), abs=0.02
    )
    head = json.loads((results / "plan.json").read_text())
    assert head["machine"]["cpu_count"] and head["device"] and "mlx" in head["versions"]
    assert len(head["rows"]) == 3
    assert "| lora-r8 |" in (results / "plan.md").read_text()
    assert (results / "plan" / "full" / "dry_run.json").is_file()


def test_an_arm_that_does_not_fit_warns_and_exits_3(tiny, tmp_path, capsys, monkeypatch):  # noqa: F811
    forced = plan.Budget(1e-6, "forced by the test", "buy more memory")
    monkeypatch.setattr(plan, "usable_memory", lambda: forced)
    config, results = _study(tmp_path, {"lora": {"rank": 4}}), _results(tiny, tmp_path)
    out_file = tmp_path / "elsewhere" / "table.csv"
    assert (
        plan.main([str(config), "--results", str(results), "--out", str(out_file)])
        == plan.EXIT_NO_FIT
    )
    out, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if line.startswith("WARNING:")]
    assert len(warnings) == 1 and "lora" in warnings[0] and "does NOT fit" in warnings[0]
    assert "buy more memory" in warnings[0]
    assert out_file.is_file() and out_file.with_suffix(".md").is_file()
    assert " NO " in out


@pytest.mark.parametrize(
    "peak, usable, expected",
    [(1.0, 10.0, "yes"), (9.5, 10.0, "tight"), (10.5, 10.0, "NO"), (1.0, None, "?")],
)
def test_fits_column_keeps_a_ten_percent_margin(peak, usable, expected):
    settings = {"method": "lora", "rank": 8, "seeds": [0, 1, 2]}
    measured = {"peak_memory_gb": peak, "estimated_train_s": 120.0, "trainable_params": 10,
                "total_params": 1000, "step_s": 0.5, "tokens_per_s": 100.0}  # fmt: skip
    row = plan.row_for("arm", settings, measured, plan.Budget(usable, "test", ""))
    assert row["fits"] == expected
    assert row["est_min_per_run"] == 2.0 and row["est_min_all_seeds"] == 6.0
    assert row["trainable_pct"] == 1.0


def test_usable_memory_on_the_cpu_is_the_system_ram():
    import mlx.core as mx

    from mlx_instruct.provenance import memory_gb

    if mx.metal.is_available() or mx.cuda.is_available():
        pytest.skip("a GPU's budget is its own memory, not the RAM")

    budget = plan.usable_memory()
    assert budget.gb == memory_gb() and "RAM" in budget.source


def test_a_bad_study_exits_2_naming_the_key(tmp_path, capsys):
    study = yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text())
    study["training"]["rank"] = "eight"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(study))
    assert plan.main([str(path)]) == plan.EXIT_CONFIG
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "training.rank" in err and err.startswith("error:")
