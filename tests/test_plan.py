"""`mlx-instruct plan`: a dry run per distinct training shape of a study on the tiny model,
the evaluation estimate (plan_eval), the table it prints and writes, the WARNING and exit
status 3 for an arm that does not fit, exit 2 for a bad study file, Snakemake asked for
missing inputs, and the report's plan tables (analysis.tables_plan)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from test_train_support import tiny  # noqa: F401

from mlx_instruct import plan

ROOT = Path(__file__).resolve().parents[1]


# a few cheap suites: generation (seed prompts, safety, efficiency) and scoring (TruthfulQA)
SUITES = {
    "seed_prompts": {"max_tokens": 6},
    "safety": {"n": 1, "max_tokens": 5},
    "benchmarks": {"truthfulqa_mc1": {"n": 2}},
    "efficiency": {"batch_sizes": [1, 2], "max_tokens": 4, "repeats": 1},
}


def _study(tmp_path: Path, experiments: dict) -> Path:
    """configs/smoke.yaml with only `experiments` and a few cheap suites (a short test)."""
    study = yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text())
    study["experiments"] = {"base": {"method": "none"}, **experiments}
    study.pop("deployment")  # it names experiments and suites this study replaces
    study["evaluation"]["suites"] = SUITES
    study["evaluation"]["workers"] = 2
    study["report"]["pairs"] = []
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def _results(tiny, tmp_path: Path) -> Path:  # noqa: F811
    """A results dir holding the session's tiny model and data, as the workflow lays them out."""
    from test_train_support import rows, write_jsonl

    results = tmp_path / "results" / "smoke"
    (results / "models").mkdir(parents=True)
    (results / "models" / "base").symlink_to(tiny["model"], target_is_directory=True)
    (results / "data").mkdir()
    for name in ("train", "valid", "retention"):
        (results / "data" / f"{name}.jsonl").symlink_to(tiny["data"] / f"{name}.jsonl")
    write_jsonl(results / "data" / "test.jsonl", rows(6, tiny["tokenizer"], offset=300))
    return results


def test_plan_prints_a_row_per_trained_arm_and_writes_the_table(tiny, tmp_path, capsys):  # noqa: F811
    experiments = {
        "lora-r8": {"rank": 8, "seeds": [0, 1]},
        "full": {"method": "full", "learning_rate": 1.0e-4},
        # the same shape as lora-r8 (data mix, learning rate, steps differ): its dry run is reused
        "lora-r8-retention": {"rank": 8, "retention_fraction": 0.25, "learning_rate": 2.0e-3,
                              "steps": 12},
    }  # fmt: skip
    config, results = _study(tmp_path, experiments), _results(tiny, tmp_path)
    assert plan.main([str(config), "--results", str(results)]) == plan.EXIT_OK
    out, err = capsys.readouterr()
    assert "WARNING" not in err and "study total" in out and "min per model" in out
    lines = out.splitlines()
    for name in [*experiments, *SUITES]:
        assert any(line.split()[:1] == [name] for line in lines), name
    assert not any(line.startswith("base ") for line in lines)  # the untuned baseline
    table = results / "plan" / "plan.csv"
    with table.open() as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == plan.COLUMNS
        rows = {row["experiment"]: row for row in reader}
    assert list(rows) == list(experiments)
    for row in rows.values():
        assert float(row["step_s"]) > 0 and float(row["peak_memory_gb"]) > 0
        assert float(row["tokens_per_s"]) > 0 and row["fits"] == "yes"
        assert 0 < float(row["trainable_pct"]) <= 100
        assert float(row["est_eval_min_per_run"]) > 0
    lora, reused = rows["lora-r8"], rows["lora-r8-retention"]
    assert lora["seeds"] == "2" and lora["rank"] == "8" and rows["full"]["rank"] == ""
    assert float(lora["est_min_all_seeds"]) == pytest.approx(
        2 * float(lora["est_min_per_run"]), abs=0.02
    )
    assert float(lora["est_eval_min_all_seeds"]) == pytest.approx(
        2 * float(lora["est_eval_min_per_run"]), abs=0.02
    )
    # one dry run per shape: the retention arm reuses lora-r8's, rescaled to its 12 steps
    assert reused["measured_as"] == "lora-r8" and rows["full"]["measured_as"] == "full"
    assert not (results / "plan" / "lora-r8-retention").exists()
    assert reused["step_s"] == lora["step_s"] and reused["peak_memory_gb"] == lora["peak_memory_gb"]
    steps = yaml.safe_load(config.read_text())["training"]["steps"]
    assert float(reused["est_min_per_run"]) == pytest.approx(
        float(lora["est_min_per_run"]) * 12 / steps, abs=0.02
    )
    head = json.loads(table.with_suffix(".json").read_text())
    assert head["machine"]["cpu_count"] and head["device"] and "mlx" in head["versions"]
    assert len(head["rows"]) == 3
    evaluation = head["evaluation"]
    assert set(evaluation["suites"]) == set(SUITES) and evaluation["models"] == 5  # base + 4
    assert evaluation["all_models_min"] == pytest.approx(5 * evaluation["per_model_min"])
    train = sum(float(r["est_min_all_seeds"]) for r in rows.values())
    assert evaluation["study_total_min"] == pytest.approx(
        train + evaluation["all_models_min"], abs=0.05
    )
    assert evaluation["suites"]["benchmarks"]["scored_tokens"] > 0  # lm-eval's requests
    assert evaluation["suites"]["safety"]["generate"][0]["max_tokens"] == 5
    md = table.with_suffix(".md").read_text()
    assert "| lora-r8 |" in md and "| seed_prompts |" in md and "as the KV cache grows" in md
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


def test_same_shape_ignores_only_settings_that_cannot_change_memory_or_step_time():
    settings = {"method": "lora", "rank": 8, "micro_batch_size": 2, "learning_rate": 1e-3,
                "seeds": [0], "retention_fraction": 0.0, "steps": 6}  # fmt: skip
    same = {**settings, "learning_rate": 5e-4, "seeds": [1, 2], "retention_fraction": 0.25,
            "steps": 12, "data_order": "length"}  # fmt: skip
    assert plan.shape_key(same) == plan.shape_key(settings)
    for key, value in [("rank", 16), ("micro_batch_size", 4), ("method", "dora"),
                       ("grad_checkpoint", True), ("optimizer", "adafactor"), ("new_key", 1)]:  # fmt: skip
        assert plan.shape_key({**settings, key: value}) != plan.shape_key(settings), key


def test_missing_inputs_are_asked_of_snakemake(tmp_path, monkeypatch):
    study = yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text())
    results = tmp_path / "results" / study["study"]
    (results / "data").mkdir(parents=True)
    (results / "data" / "train.jsonl").write_text("")
    commands = []
    monkeypatch.setattr(plan, "_run", lambda command, capture: commands.append(command))
    plan.ensure_inputs(study, ROOT / "configs" / "smoke.yaml", results)
    (command,) = commands
    assert command[1:3] == ["-m", "snakemake"] and "--configfile" in command
    assert command[-2:] == ["--config", f"results_dir={results.resolve().parent}"]
    targets = {Path(t).relative_to(results.resolve()).as_posix() for t in command[3:7]}
    # the smoke study has a retention arm; train.jsonl is there already
    assert targets == {"models/base", "data/valid.jsonl", "data/test.jsonl",
                       "data/retention.jsonl"}  # fmt: skip
    with pytest.raises(plan.PlanError, match="under <results_dir>/smoke"):
        plan.ensure_inputs(study, ROOT / "configs" / "smoke.yaml", tmp_path / "elsewhere")


def test_eval_cost_model_scales_calls_by_measured_rates_and_schedules_the_pool():
    from mlx_instruct import plan_eval

    rates = {"batch_size": 4, "prefill_s_per_token": 0.01, "decode_step_s_batch1": 0.1,
             "decode_step_s": 0.4, "score_s_per_token": 0.001}  # fmt: skip
    assert plan_eval.step_seconds(rates, 1) == pytest.approx(0.1)
    assert plan_eval.step_seconds(rates, 4) == pytest.approx(0.4)
    assert plan_eval.step_seconds(rates, 2) == pytest.approx(0.2)
    calls = plan_eval.Calls(
        generate=[{"prompts": 5, "prefill_tokens": 100, "max_tokens": 10, "batch_size": 4}],
        scored_tokens=1000,
    )
    # prefill 1 s + one wave of 4 (0.4 s/step) and one of 1 (0.1 s/step) x 10 steps + scoring 1 s
    assert plan_eval.model_seconds(calls, rates) == pytest.approx(1 + 5 + 1)
    suite_s = {"benchmarks": 10.0, "safety": 6.0, "adherence": 5.0, "efficiency": 2.0}
    # pool of 2 (longest first): [load+10, load+6+5], then efficiency alone after a reload
    assert plan_eval.schedule(suite_s, 2, 1.0) == pytest.approx(12 + 1 + 2)
    assert plan_eval.schedule(suite_s, 1, 1.0) == pytest.approx(1 + 23)


def _plan_json(results: Path) -> None:
    rows = [
        {"experiment": "lora", "method": "lora", "trainable_params": 1000, "trainable_pct": 1.0,
         "peak_memory_gb": 0.5, "usable_gb": 8.0, "fits": "yes", "step_s": 0.2, "seeds": 2,
         "est_min_per_run": 2.0, "est_min_all_seeds": 4.0, "measured_as": "lora",
         "est_eval_min_per_run": 1.0, "est_eval_min_all_seeds": 2.0},
        {"experiment": "full", "method": "full", "trainable_params": 90000, "trainable_pct": 90.0,
         "peak_memory_gb": 9.0, "usable_gb": 8.0, "fits": "NO", "step_s": 0.5, "seeds": 1,
         "est_min_per_run": 3.0, "est_min_all_seeds": 3.0, "measured_as": "full",
         "est_eval_min_per_run": 1.0, "est_eval_min_all_seeds": 1.0},
    ]  # fmt: skip
    record = {"machine": {"processor": "cpu", "platform": "Linux"}, "device": "cpu",
              "usable_memory_gb": 8.0, "usable_memory_source": "RAM", "git": {"commit": "abc"},
              "rows": rows, "evaluation": {"per_model_min": 1.0, "models": 4,
              "all_models_min": 4.0, "train_total_min": 7.0, "study_total_min": 11.0}}  # fmt: skip
    (results / "plan").mkdir(parents=True)
    (results / "plan" / "plan.json").write_text(json.dumps(record))


def test_report_tables_show_the_plan_and_set_it_against_the_runs(tmp_path):
    import pandas as pd

    from mlx_instruct.analysis import tables_plan as TP

    assert TP.plan_record(tmp_path) is None  # report.plan off: the section is skipped
    assert TP.plan_table(None).empty and TP.plan_totals(None) is None
    assert TP.plan_vs_measured(None, None, None).empty
    _plan_json(tmp_path)
    record = TP.plan_record(tmp_path)
    table = TP.plan_table(record)
    assert list(table["experiment"]) == ["lora", "full"] and list(table["fits"]) == ["yes", "NO"]
    assert {"peak GB", "usable GB", "est. train min", "est. eval min"} <= set(table.columns)
    assert TP.plan_totals(record)["study_total_min"] == 11.0
    assert TP.machine_line(record)["device"] == "cpu"
    runs = pd.DataFrame({"experiment": ["lora", "lora"], "seed": [0, 1],
                         "wall_time_s": [180.0, 300.0]})  # fmt: skip
    timing = pd.DataFrame({"rule": ["evaluate", "evaluate", "train"],
                           "wildcards": ["lora-s0", "lora-s1", "lora-s0"],
                           "seconds": [60.0, 120.0, 180.0]})  # fmt: skip
    versus = TP.plan_vs_measured(record, runs, timing)
    assert list(versus["experiment"]) == ["lora"]  # full has no run: left out
    row = versus.iloc[0]
    assert row["measured train min"] == 4.0 and row["train measured / est."] == 2.0
    assert row["measured eval min"] == 1.5 and row["est. eval min"] == 1.0
