"""The extension arms of a study (the plan's section 15): each found with the control that
differs from it in exactly one training setting, compared at the seeds both ran."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import yaml

from mlx_instruct.analysis import extensions as E
from mlx_instruct.analysis import figures_extensions as FE

ROOT = Path(__file__).resolve().parents[1]


def _smoke() -> dict:
    return yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text())


def _config(**experiments) -> dict:
    config = copy.deepcopy(_smoke())
    config.pop("deployment")  # it names smoke.yaml's experiments, which this study replaces
    config["experiments"] = {
        "base": {"method": "none"},
        "lora-r8": {"rank": 8, "seeds": [0, 1]},
        **experiments,
    }
    return config


def test_each_arm_finds_the_control_that_differs_in_its_key_alone() -> None:
    config = _config(
        **{
            "lora-r4": {"rank": 4},
            "cur": {"rank": 8, "data_order": "length"},
            "bf16": {"rank": 8, "dtype": "bfloat16"},
            "lr-a": {"rank": 8, "learning_rate": 3.0e-3},
            "lr-b": {"rank": 8, "learning_rate": 3.0e-4, "seeds": [1]},
            # two keys away from every other experiment: no control
            "two": {"rank": 8, "dtype": "float16", "learning_rate": 5.0e-3},
            "full": {"method": "full", "learning_rate": 1.0e-4},  # method differs too
        }
    )
    found = [(a.key, a.arm, a.control, a.seeds) for a in E.arms(config)]
    assert found == [
        ("data_order", "cur", "lora-r8", (0,)),
        ("dtype", "bf16", "lora-r8", (0,)),
        ("learning_rate", "lr-a", "lora-r8", (0,)),
        ("learning_rate", "lr-b", "lora-r8", (1,)),
    ]
    assert [a.arm for a in E.arms(config, "dtype")] == ["bf16"]
    lr = E.arms(config, "learning_rate")[0]
    assert (lr.value, lr.control_value) == (3.0e-3, config["training"]["learning_rate"])


def test_a_study_without_arms_has_none() -> None:
    assert E.arms(_config()) == []
    assert FE.curves(pd.DataFrame(), []).axes  # a placeholder figure, not an error


def test_run_means_average_the_shared_seeds_and_table_has_arm_and_control() -> None:
    runs = pd.DataFrame(
        {
            "experiment": ["lora-r8", "lora-r8", "cur"],
            "seed": [0, 1, 0],
            "tokens_per_s": [100.0, 300.0, 120.0],
            "peak_memory_gb": [1.0, 1.0, 1.1],
            "train_time_s": [10.0, 10.0, 9.0],
            "best_val_loss": [2.0, 2.2, 1.9],
            "final_train_loss": [2.1, 2.3, 2.0],
        }
    )
    arm = E.arms(_config(cur={"rank": 8, "data_order": "length"}))[0]
    facts = E.Facts(
        arm, E.run_means(runs, "cur", arm.seeds), E.run_means(runs, "lora-r8", arm.seeds), {}
    )
    assert facts.control_runs["tokens_per_s"] == 100.0  # seed 1 left out: the arm did not run it
    assert facts.ratio("tokens_per_s") == 1.2
    frame = E.table([facts])
    assert list(frame["experiment"]) == ["lora-r8", "cur"]
    assert list(frame["setting"]) == ["data_order = shuffled", "data_order = length"]
    assert (
        frame.loc[0, "adherence \u0394"] == "(control)"
        and frame.loc[1, "adherence \u0394"] == "n/a"
    )
