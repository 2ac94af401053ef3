"""deploy merge: the merged adapter's weight change is exactly the weighted sum of the parents'
(checked on logits against base weights + w1*delta1 + w2*delta2), it loads in mlx_lm and
load_trained, its run.json reads like a run, and parents that cannot merge are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlx.core as mx
import pytest
from mlx.utils import tree_flatten
from test_deploy_support import SMOKE, deploy_base, logits, make_lora_run  # noqa: F401

from mlx_instruct.deploy.merge import main


def _merge(out: Path, parents: list[Path], weights: list[float]) -> int:
    argv = ["--config", str(SMOKE), "--parents", *map(str, parents), "--out", str(out)]
    return main(argv + ["--weights", *map(str, weights)])


def _deltas(run: Path) -> dict[str, mx.array]:
    """{weight name: scale * B^T A^T} of a LoRA run (mlx_lm LoRALinear.fuse's delta)."""
    config = json.loads((run / "adapter_config.json").read_text())["lora_parameters"]
    tensors = mx.load(str(run / "adapters.safetensors"))
    return {
        name.removesuffix(".lora_a") + ".weight": config["scale"]
        * (tensors[name.replace("lora_a", "lora_b")].T @ value.T)
        for name, value in tensors.items()
        if name.endswith(".lora_a")
    }


@pytest.fixture(scope="module")
def parents(deploy_base, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("merge")
    a = make_lora_run(deploy_base, root / "lora-r4", rank=4, scale=2.0, seed=1)
    b = make_lora_run(deploy_base, root / "lora-r8", rank=8, scale=0.5, seed=2)
    return {"base": deploy_base, "a": a, "b": b, "root": root}


def test_merged_logits_equal_base_plus_weighted_deltas(parents, tmp_path):
    from mlx_lm import load

    from mlx_instruct.sources import load_model
    from mlx_instruct.train.outputs import load_trained

    weights = (0.7, 0.3)
    out = tmp_path / "merged"
    assert _merge(out, [parents["a"], parents["b"]], list(weights)) == 0
    expected, _ = load_model(parents["base"])
    params = dict(tree_flatten(expected.parameters()))
    da, db = _deltas(parents["a"]), _deltas(parents["b"])
    assert set(da) == set(db) and len(da) == 6
    expected.load_weights(
        [(n, params[n] + weights[0] * da[n] + weights[1] * db[n]) for n in da], strict=False
    )
    want = logits(expected)
    merged = logits(load_trained(parents["base"], out)[0])
    assert mx.allclose(merged, want, atol=1e-5).item()
    via_mlx_lm = logits(load(str(parents["base"]), adapter_path=str(out))[0])
    assert mx.allclose(via_mlx_lm, want, atol=1e-5).item()
    for parent in (parents["a"], parents["b"]):  # the merge is neither parent
        assert not mx.allclose(logits(load_trained(parents["base"], parent)[0]), want).item()


def test_merged_run_files_read_like_a_run(parents, tmp_path):
    out = tmp_path / "merged"
    assert _merge(out, [parents["a"], parents["b"]], [0.5, 0.5]) == 0
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["fine_tune_type"] == "lora" and config["lora_parameters"]["rank"] == 12
    assert config["lora_parameters"]["scale"] == 1.0
    record = json.loads((out / "run.json").read_text())
    assert (record["method"], record["rank"], record["status"]) == ("lora", 12, "completed")
    assert record["merge"]["weights"] == [0.5, 0.5] and record["merge"]["ranks"] == [4, 8]
    assert record["merge"]["parents"] == [str(parents["a"]), str(parents["b"])]
    assert record["trained"] == "nothing: a weighted merge of 0.5 x lora-r4, 0.5 x lora-r8"
    # 2 layers x (q: 64->64, v: 64->32, down: 128->64) x rank 12
    assert record["trainable_parameters"] == 2 * 12 * ((64 + 64) + (64 + 32) + (128 + 64))
    assert record["data"]["parents"] == ["data-1", "data-2"]
    assert record["git"]["commit"] and record["hardware"]["cpu_count"]
    assert sorted(p.name for p in out.iterdir()) == [
        "adapter_config.json",
        "adapters.safetensors",
        "run.json",
    ]


def _variant(parents: dict, tmp_path: Path, name: str, **kwargs) -> Path:
    return make_lora_run(parents["base"], tmp_path / name, **kwargs)


@pytest.mark.parametrize(
    ("make", "weights", "needle"),
    [
        (lambda p, t: p["b"], [0.5], "--weights: 1 values for 2 --parents"),
        (lambda p, t: p["b"], [0.5, float("nan")], "is not a finite number"),
        (
            lambda p, t: _variant(p, t, "keys", keys=("self_attn.q_proj",)),
            [0.5, 0.5],
            "target modules (lora_parameters.keys) differ",
        ),
        (
            lambda p, t: _variant(p, t, "layers", num_layers=1),
            [0.5, 0.5],
            "num_layers differ",
        ),
        (lambda p, t: _variant(p, t, "dora", method="dora"), [0.5, 0.5], "method 'dora'"),
        (
            lambda p, t: _variant(p, t, "hyb", method="hybrid"),
            [0.5, 0.5],
            "method 'hybrid'",
        ),
        (
            lambda p, t: _variant(p, t, "other", run_json={"model": {"source": {"uri": "x"}}}),
            [0.5, 0.5],
            "base model differ",
        ),
        (lambda p, t: t / "missing", [0.5, 0.5], "run directory not found"),
    ],
)
def test_parents_that_cannot_merge_are_refused(parents, tmp_path, capsys, make, weights, needle):
    other = make(parents, tmp_path)
    assert _merge(tmp_path / "out", [parents["a"], other], weights) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_full_run_and_layer_mismatch_are_refused(parents, tmp_path, capsys):
    from mlx_instruct.sources import load_model
    from mlx_instruct.train.outputs import save_full

    save_full(tmp_path / "full", load_model(parents["base"])[0], parents["base"])
    assert _merge(tmp_path / "out", [parents["a"], tmp_path / "full"], [0.5, 0.5]) == 2
    assert "a full fine-tune" in capsys.readouterr().err
    cut = tmp_path / "cut"
    shutil.copytree(parents["b"], cut)
    tensors = mx.load(str(cut / "adapters.safetensors"))
    dropped = {k: v for k, v in tensors.items() if not k.startswith("model.layers.0.")}
    mx.save_safetensors(str(cut / "adapters.safetensors"), dropped)
    assert _merge(tmp_path / "out", [parents["a"], cut], [0.5, 0.5]) == 2
    assert "adapt different layers: ['model.layers.0.mlp.down_proj'" in capsys.readouterr().err
