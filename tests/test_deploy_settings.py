"""The deployment section: defaults, the errors that name a key, and what the stage builds."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from mlx_instruct import config as cfg
from mlx_instruct.deploy import settings as deploy

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def smoke() -> dict:
    return yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text())


def with_deployment(study: dict, **section) -> dict:
    study = copy.deepcopy(study)
    study["deployment"] = {**study["deployment"], **section}
    return study


def test_a_study_without_the_section_deploys_nothing(smoke: dict) -> None:
    del smoke["deployment"]
    cfg.validate(smoke)
    assert deploy.settings(smoke) is None
    assert deploy.outputs(smoke) == [] and deploy.tables(smoke) == []


def test_defaults_fill_what_the_study_leaves_out(smoke: dict) -> None:
    smoke["deployment"] = {}
    resolved = deploy.settings(smoke)
    assert resolved["experiments"] == list(smoke["experiments"])
    assert resolved["quantize"] == [8, 4] and resolved["group_size"] == 64
    # the served and drafted model is the first trained experiment; its draft the lowest bits
    assert resolved["loadtest"]["experiment"] == resolved["speculative"]["experiment"] == "lora-r4"
    assert resolved["speculative"]["draft_bits"] == 4


def test_the_smoke_study_builds_every_file_of_the_stage(smoke: dict) -> None:
    files = deploy.outputs(cfg.validate(smoke))
    assert "deploy/lora-r8/s0/q4/evals/adherence.jsonl" in files
    assert "deploy/base/s0/fused/README.md" in files and "deploy/base/s0/q4/profile.jsonl" in files
    assert "deploy/merge/merge-r8-retention/evals/adherence.jsonl" in files
    assert files[-2:] == [deploy.DEPLOY_TABLE, deploy.DEPLOY_SUMMARY]
    assert not any("fused/evals" in f for f in files)  # fused quality is the run's own


@pytest.mark.parametrize(
    ("section", "named"),
    [
        ({"experiments": ["base", "nope"]}, "deployment.experiments: unknown experiment 'nope'"),
        ({"suites": ["efficiency"]}, "deployment.suites: 'efficiency'"),
        ({"suites": ["ifeval"]}, "deployment.suites: 'ifeval'"),
        ({"quantize": [8], "speculative": {"draft_bits": 4}}, "deployment.speculative.draft_bits"),
        (
            {"loadtest": {"experiment": "full"}},
            "deployment.loadtest.experiment: 'full' is not exported",
        ),
        (
            {"merge": {"name": "m", "parents": ["lora-r8", "lora-r4"], "weights": [0.3, 0.3, 0.4]}},
            "deployment.merge.weights: 3 weights for 2 parents",
        ),
        (
            {"merge": {"name": "m", "parents": ["lora-r8", "dora-r8"], "weights": [0.5, 0.5]}},
            "deployment.merge.parents: 'dora-r8' is a dora run",
        ),
        (
            {"merge": {"name": "full", "parents": ["lora-r8", "lora-r4"], "weights": [0.5, 0.5]}},
            "deployment.merge.name: 'full' is already an experiment",
        ),
    ],
)
def test_bad_sections_name_the_key(smoke: dict, section: dict, named: str) -> None:
    with pytest.raises(cfg.ConfigError, match=re.escape(named)):
        cfg.validate(with_deployment(smoke, **section), "smoke.yaml")


@pytest.mark.parametrize(("key", "value"), [("quantize", [7]), ("group_size", 48)])
def test_settings_mlx_cannot_quantize_with_fail_the_schema(smoke: dict, key: str, value) -> None:
    with pytest.raises(cfg.ConfigError, match=f"deployment.{key}"):
        cfg.validate(with_deployment(smoke, **{key: value}), "smoke.yaml")


def test_the_rules_flags_follow_n_dequantize_and_the_profile(smoke: dict) -> None:
    assert deploy.eval_flags(smoke, True) == "--limit 8"  # smoke: n 8, scored quantized
    study = with_deployment(smoke, n=32, dequantize=True)
    assert deploy.eval_flags(study, True) == "--limit 32 --dequantize"
    assert deploy.eval_flags(study, False) == "--limit 32"  # fused and merged models: float
    del study["deployment"]["n"]
    assert deploy.eval_flags(study, False) == ""
    batch = smoke["evaluation"]["generation"]["batch_size"]
    assert deploy.profile_flags(smoke) == f"--n 4 --max-tokens 8 --repeats 1 --batch-size {batch}"
    del smoke["evaluation"]["generation"]["batch_size"]  # the profile CLI's own default then
    assert "--batch-size" not in deploy.profile_flags(smoke)
    study = with_deployment(smoke, profile={"batch_size": 2})
    assert deploy.profile_flags(study).endswith("--batch-size 2")
