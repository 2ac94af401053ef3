"""mlx_instruct.cluster: the per-rule resources the SLURM profile requests."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlx_instruct import cluster
from mlx_instruct.config import load_config

ROOT = Path(__file__).resolve().parents[1]
SMOKE = load_config(ROOT / "configs" / "smoke.yaml")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    from mlx_instruct.sources import prepare_model

    return str(prepare_model("random://mistral-tiny", tmp_path_factory.mktemp("m") / "base"))


def resources(study: dict, rule: str, model: str, results: Path, experiment: str, attempt=1):
    wildcards = {"experiment": experiment} if experiment else {}
    given_input = SimpleNamespace(model=model)
    return (
        cluster.mem_mb(study, rule, str(results))(wildcards, given_input, attempt),
        cluster.runtime(study, rule, str(results))(wildcards, given_input, attempt),
    )


def test_parameters_are_counted_exactly_without_loading_weights(model: str) -> None:
    import mlx.core as mx
    from mlx.utils import tree_flatten

    weights = mx.load(str(Path(model) / "model.safetensors"))
    shape = cluster.model_shape(model)
    assert shape.params == sum(v.size for v in weights.values())
    assert (shape.hidden, shape.layers, shape.vocab) == (64, 2, 32000)
    assert tree_flatten(weights)  # the file really held the weights counted


def test_the_plan_sizes_a_trained_arm_when_it_exists(model: str, tmp_path: Path) -> None:
    before = resources(SMOKE, "train", model, tmp_path, "lora-r8")
    (tmp_path / "plan").mkdir()
    (tmp_path / "plan" / "plan.csv").write_text(
        "experiment,peak_memory_gb,est_min_per_run,est_eval_min_per_run\n"
        "lora-r4,9.0,1.0,7.0\nlora-r8,2.5,40.0,7.0\n"
    )
    mem, minutes = resources(SMOKE, "train", model, tmp_path, "lora-r8")
    assert mem == math.ceil((cluster.BASELINE_MB + 2.5 * 1024) * cluster.HEADROOM)
    assert minutes == math.ceil(40.0 * cluster.HEADROOM + cluster.FIXED_MIN)
    assert (mem, minutes) != before
    # the base model is not a plan row: its evaluation costs what any model's does
    _, evaluate = resources(SMOKE, "evaluate", model, tmp_path, "base")
    assert evaluate == math.ceil(7.0 * cluster.HEADROOM + cluster.FIXED_MIN)


def test_each_retry_doubles_memory_and_time(model: str, tmp_path: Path) -> None:
    first = resources(SMOKE, "evaluate", model, tmp_path, "lora-r4")
    third = resources(SMOKE, "evaluate", model, tmp_path, "lora-r4", attempt=3)
    assert third[0] >= 4 * first[0] - 4 and third[1] >= 4 * first[1] - 4


def test_rules_without_a_model_get_the_baseline(tmp_path: Path) -> None:
    no_model = SimpleNamespace()
    mem = cluster.mem_mb(SMOKE, "aggregate", str(tmp_path))({}, no_model, 1)
    minutes = cluster.runtime(SMOKE, "figures", str(tmp_path))({}, no_model, 1)
    assert mem == math.ceil(cluster.BASELINE_MB * cluster.HEADROOM)
    assert minutes == cluster.FIXED_MIN


def test_a_model_not_made_yet_is_a_missing_input_snakemake_waits_for(tmp_path: Path) -> None:
    missing = str(tmp_path / "models" / "base")
    with pytest.raises(FileNotFoundError) as error:
        cluster.mem_mb(SMOKE, "train", str(tmp_path))(
            {"experiment": "lora-r8"}, SimpleNamespace(model=missing), 1
        )
    assert error.value.filename == missing  # what Snakemake matches against the job's input


def test_a_bad_dtype_names_the_key() -> None:
    study = copy.deepcopy(SMOKE)
    study["model"]["dtype"] = "int3"
    with pytest.raises(ValueError, match=r"model.dtype.*'int3'"):
        cluster._dtype_bytes(study)


def test_gpus_only_for_the_model_rules_on_a_cuda_build(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cluster.backend() in {"cpu", "metal"}  # this machine: mlx[cpu]
    assert all(cluster.gpus(rule) == 0 for rule in ("train", "evaluate", "aggregate"))
    monkeypatch.setattr(cluster, "backend", lambda: "cuda")
    assert [cluster.gpus(r) for r in ("train", "evaluate", "plan", "aggregate")] == [1, 1, 1, 0]


@settings(max_examples=40, deadline=None)
@given(
    steps=st.integers(1, 10_000),
    micro=st.sampled_from([1, 2, 4, 8]),
    seq=st.integers(16, 4096),
    params=st.integers(10**5, 10**11),
)
def test_size_rule_is_monotone(steps: int, micro: int, seq: int, params: int) -> None:
    """More to train never asks for less; the full fine-tune never less than LoRA;
    gradient checkpointing never more."""
    shape = cluster.Shape(params=params, hidden=4096, layers=32, vocab=32000)
    study = copy.deepcopy(SMOKE)
    study["data"]["max_seq_len"] = seq
    study["training"].update(steps=steps, micro_batch_size=micro, batch_size=micro * 2)
    lora = cluster.train_estimate(study, "lora-r8", shape)
    assert cluster.train_estimate(study, "full", shape)[0] > lora[0]
    study["training"]["steps"] = steps + 1
    assert cluster.train_estimate(study, "lora-r8", shape)[1] > lora[1]
    study["training"]["grad_checkpoint"] = True
    assert cluster.train_estimate(study, "lora-r8", shape)[0] <= lora[0]


def test_every_rule_with_a_command_requests_its_own_resources() -> None:
    stages = ("prepare", "train", "evaluate", "analyse", "plan", "report")
    for smk in (ROOT / "workflow" / "rules" / f"{stage}.smk" for stage in stages):
        for name, body in re.findall(r"^rule (\w+):\n((?:    .*\n|\n)*)", smk.read_text(), re.M):
            if "shell:" not in body:
                continue
            for key in ("mem_mb", "runtime"):
                assert f'{key}=cluster.{key}(study, "{name}", RESULTS)' in body, (smk.name, name)
            assert f'gpu=cluster.gpus("{name}")' in body, (smk.name, name)
