"""The study config: schema, cross-references, experiment resolution, study selection."""

from __future__ import annotations

import copy
from dataclasses import fields
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlx_instruct import config as cfg
from mlx_instruct import study as study_lib

ROOT = Path(__file__).resolve().parents[1]
STUDIES = [
    "config.yaml",
    "configs/smoke.yaml",
    "configs/mistral-7b.yaml",
    "configs/mistral-7b-gpu-check.yaml",
]


@pytest.fixture
def default() -> dict:
    return cfg.load_config(ROOT / "config.yaml")


@pytest.mark.parametrize("name", STUDIES)
def test_every_shipped_study_is_valid(name: str) -> None:
    study = cfg.load_config(ROOT / name)
    assert cfg.baseline(study) == "base"
    # every kind of arm the paper compares: the base, LoRA, a full fine-tune, a retention mix
    runs = cfg.runs(study)
    assert {"lora", "full"} <= {run.method for run in runs}
    assert any(run.settings.get("retention_fraction") for run in runs)


def test_design_card_matrix_in_default(default: dict) -> None:
    methods = {run.experiment: (run.method, run.rank) for run in cfg.runs(default)}
    assert methods["base"] == ("none", None)
    # LoRA at more than one rank (the power analysis of docs/study.md put the hour into
    # adherence items rather than a third rank or second seeds), a full fine-tune, a mix
    ranks = {rank for method, rank in methods.values() if method == "lora"}
    assert len(ranks) >= 2 and 32 in ranks
    assert methods["full"][0] == "full"
    assert cfg.experiment_settings(default, "lora-r32-retention")["retention_fraction"] > 0
    assert {s["uri"].split(":")[0] for s in default["data"]["sources"]} == {"resource", "generator"}


def test_experiment_overrides_defaults(default: dict) -> None:
    settings = cfg.experiment_settings(default, "full")
    assert settings["learning_rate"] == default["experiments"]["full"]["learning_rate"]
    assert settings["learning_rate"] != default["training"]["learning_rate"]
    assert settings["betas"] == default["training"]["betas"]
    assert settings["alpha"] == 16


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["training"].update(rank="x"), "training.rank"),
        (lambda c: c["training"].update(learning_rate=-1), "training.learning_rate"),
        (lambda c: c["experiments"]["lora-r8"].update(lr=1), "experiments.lora-r8"),
        (lambda c: c.update(colour="blue"), "colour"),
        (lambda c: c["data"]["sources"][0].update(uri=""), "data.sources[0].uri"),
        (lambda c: c["training"].update(target_modules=["qq_proj"]), "training.target_modules[0]"),
        (lambda c: c["experiments"]["full"].update(method="magic"), "experiments.full.method"),
        (lambda c: c["training"].update(warmup_fraction=1.5), "training.warmup_fraction"),
        (lambda c: c["evaluation"]["suites"].update(vibes={}), "evaluation.suites"),
    ],
)
def test_bad_config_names_key_path(default: dict, mutate, expected: str) -> None:
    bad = copy.deepcopy(default)
    mutate(bad)
    with pytest.raises(cfg.ConfigError) as error:
        cfg.validate(bad, "study.yaml")
    assert "study.yaml" in str(error.value)
    assert expected in str(error.value)


def test_cross_reference_errors(default: dict) -> None:
    bad = copy.deepcopy(default)
    bad["report"]["pairs"] = [["lora-r32", "nope"]]
    with pytest.raises(cfg.ConfigError, match=r"report.pairs\[0\].*'nope'"):
        cfg.validate(bad)
    bad = copy.deepcopy(default)
    bad["experiments"]["base2"] = {"method": "none"}
    with pytest.raises(cfg.ConfigError, match="exactly one untuned baseline"):
        cfg.validate(bad)
    bad = copy.deepcopy(default)
    bad["experiments"]["lora-r8"]["micro_batch_size"] = 3
    with pytest.raises(cfg.ConfigError, match="not a multiple"):
        cfg.validate(bad)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(cfg.ConfigError, match="no such study config"):
        cfg.load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("study: [unclosed\n")
    with pytest.raises(cfg.ConfigError, match="broken.yaml: not valid YAML"):
        cfg.load_config(broken)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(cfg.ConfigError, match="expected a mapping"):
        cfg.load_config(listy)


def test_configfile_study_replaces_default_entirely() -> None:
    smoke = yaml.safe_load((ROOT / "configs/smoke.yaml").read_text())
    resolved = study_lib.resolve_study(copy.deepcopy(smoke), ROOT)
    assert resolved["study"] == "smoke"
    assert "lora-r32-retention" not in resolved["experiments"]  # nothing inherited from config.yaml


def test_config_overrides_merge_into_default() -> None:
    resolved = study_lib.resolve_study({"training": {"steps": 7}}, ROOT)
    assert resolved["study"] == "default"
    assert resolved["training"]["steps"] == 7
    assert resolved["training"]["rank"] == 32


def test_fingerprint_changes_only_for_the_edited_experiment(default: dict) -> None:
    before = {
        r.name: study_lib.training_params(default, r.experiment, r.seed) for r in cfg.runs(default)
    }
    edited = copy.deepcopy(default)
    edited["experiments"]["lora-r8"]["alpha"] = 32
    after = {
        r.name: study_lib.training_params(edited, r.experiment, r.seed) for r in cfg.runs(edited)
    }
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"lora-r8/s0"}


@settings(max_examples=50, deadline=None)
@given(
    rank=st.integers(min_value=-5, max_value=300),
    lr=st.floats(min_value=-1, max_value=2, allow_nan=False),
)
def test_schema_accepts_exactly_the_valid_ranges(rank: int, lr: float) -> None:
    candidate = cfg.load_config(ROOT / "config.yaml")
    candidate["training"].update(rank=rank, learning_rate=lr)
    valid = rank >= 1 and 0 < lr <= 1
    if valid:
        cfg.validate(candidate)
    else:
        with pytest.raises(cfg.ConfigError):
            cfg.validate(candidate)


def test_training_settings_are_one_typed_object(default: dict) -> None:
    """Every schema key is a field (and back); defaults are the dataclass's; typos fail."""
    schema_keys = set(cfg.load_schema()["$defs"]["training"]["properties"])
    assert schema_keys == {f.name for f in fields(cfg.TrainingSettings)}
    assert cfg.DEFAULT_TRAINING["betas"] == [0.9, 0.98]
    assert cfg.DEFAULT_TRAINING["weight_decay"] == 0.01 and cfg.DEFAULT_TRAINING["eval_every"] == 50
    for run in cfg.runs(default):
        typed = run.training
        assert typed.learning_rate == run.settings["learning_rate"]
        assert list(typed.betas) == run.settings["betas"]
    with pytest.raises(cfg.ConfigError, match="lerning_rate"):
        cfg.TrainingSettings.from_dict({**cfg.DEFAULT_TRAINING, "lerning_rate": 1e-3})


def test_data_settings_fill_the_one_set_of_data_defaults():
    from mlx_instruct.config import DEFAULT_DATA, data_settings

    study = {"data": {"max_seq_len": 160}}
    assert data_settings(study) == {**DEFAULT_DATA, "max_seq_len": 160}
    assert data_settings({"data": None}) == DEFAULT_DATA
