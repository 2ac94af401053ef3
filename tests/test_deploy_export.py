"""deploy export: the fused model equals base + adapter, quantized variants stay close and open
in mlx_lm, export.json/provenance.json describe them, and bad settings fail before compute."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_deploy_support import SMOKE, deploy_base, logits, make_lora_run  # noqa: F401

from mlx_instruct.deploy.export import ExportError, check_quantization, main


def _export(base: Path, out: Path, experiment: str, run: Path | None, *extra: str) -> int:
    argv = ["--config", str(SMOKE), "--experiment", experiment, "--seed", "0",
            "--model", str(base), "--out", str(out), *extra]  # fmt: skip
    return main(argv + (["--run", str(run)] if run is not None else []))


def _relative(a: mx.array, b: mx.array) -> float:
    return (mx.linalg.norm(a - b) / mx.linalg.norm(b)).item()


@pytest.fixture(scope="module")
def exported(deploy_base, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("export")
    run = make_lora_run(deploy_base, root / "lora-r4")
    out = root / "out"
    assert _export(deploy_base, out, "lora-r4", run, "--bits", "8", "4", "--group-size", "64") == 0
    return {"base": deploy_base, "run": run, "out": out}


def test_fused_equals_base_plus_adapter_and_quantized_stay_close(exported):
    from mlx_instruct.sources import load_model
    from mlx_instruct.train.outputs import load_trained

    tuned = logits(load_trained(exported["base"], exported["run"])[0])
    base = logits(load_model(exported["base"])[0])
    fused = logits(load_model(exported["out"] / "fused")[0])
    assert mx.allclose(fused, tuned, atol=1e-5).item()
    assert _relative(base, tuned) > 0.1  # the adapter matters, so equality above means something
    q8 = _relative(logits(load_model(exported["out"] / "q8")[0]), fused)
    q4 = _relative(logits(load_model(exported["out"] / "q4")[0]), fused)
    assert 0 < q8 < 0.03 and q8 < q4 < _relative(base, fused)


def test_dequantized_variant_computes_what_the_quantized_one_does(exported):
    """deployment.dequantize scores a variant at float speed: the same function up to the
    order of float additions, far closer to the quantized model than to the fused one."""
    from mlx_lm.utils import dequantize_model

    from mlx_instruct.sources import load_model

    fused = logits(load_model(exported["out"] / "fused")[0])
    for name in ("q8", "q4"):
        quantized = load_model(exported["out"] / name)[0]
        expected = logits(quantized)
        dequantized = dequantize_model(quantized)
        assert not any(isinstance(m, nn.QuantizedLinear) for _, m in dequantized.named_modules())
        got = logits(dequantized)
        assert got.dtype == mx.float32
        assert _relative(got, expected) < 1e-5 < _relative(expected, fused)
        assert (mx.argmax(got, -1) == mx.argmax(expected, -1)).all().item()


def test_export_json_and_provenance(exported):
    out = exported["out"]
    summary = json.loads((out / "export.json").read_text())
    variants = summary["variants"]
    assert list(variants) == ["fused", "q8", "q4"]
    assert (variants["q8"]["bits"], variants["q4"]["group_size"]) == (8, 64)
    assert variants["fused"]["bits"] is None
    assert len({v["parameters"] for v in variants.values()}) == 1
    sizes = [variants[name]["weights_bytes"] for name in ("fused", "q8", "q4")]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] > 0
    for name, variant in variants.items():
        assert variant["bytes_on_disk"] > variant["weights_bytes"]
        record = json.loads((out / name / "provenance.json").read_text())
        assert record["variant"] == name and record["experiment"] == "lora-r4"
        assert record["method"] == "lora" and record["data_fingerprint"] == "data-0"
        assert record["base_model"]["source"]["uri"] == "random://mistral-tiny"
        assert record["git"]["commit"] and record["versions"]["mlx-lm"]
        assert len(record["config"]["fingerprint"]) == 16
    quant = json.loads((out / "q4" / "provenance.json").read_text())["quantization"]
    assert quant == {"bits": 4, "group_size": 64, "mode": "affine"}
    config = json.loads((out / "q4" / "config.json").read_text())
    assert config["quantization"]["bits"] == 4


def test_each_variant_loads_and_generates_in_mlx_lm(exported):
    from mlx_lm import generate, load

    for name in ("fused", "q8", "q4"):
        model, tokenizer = load(str(exported["out"] / name))
        text = generate(model, tokenizer, prompt="hello", max_tokens=4)
        assert isinstance(text, str) and len(tokenizer.encode(text, add_special_tokens=False)) > 0


@pytest.mark.slow
def test_mlx_lm_generate_cli_opens_the_quantized_variant(exported):
    command = [sys.executable, "-m", "mlx_lm", "generate", "--model",
               str(exported["out"] / "q4"), "--prompt", "hello", "--max-tokens", "3"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Generation:" in done.stdout


def test_base_and_full_runs_export(deploy_base, tmp_path):  # noqa: F811
    from mlx_instruct.sources import load_model
    from mlx_instruct.train.outputs import save_full

    base_model = load_model(deploy_base)[0]
    assert _export(deploy_base, tmp_path / "base", "base", None, "--bits", "8") == 0
    assert mx.array_equal(logits(load_model(tmp_path / "base" / "fused")[0]), logits(base_model))
    assert not (tmp_path / "base" / "q4").exists()

    layer = base_model.layers[0].mlp.down_proj
    layer.weight = layer.weight + 0.05
    save_full(tmp_path / "full-run", base_model, deploy_base)
    assert _export(deploy_base, tmp_path / "full", "full", tmp_path / "full-run", "--bits") == 0
    fused = logits(load_model(tmp_path / "full" / "fused")[0])
    assert mx.allclose(fused, logits(base_model), atol=1e-5).item()
    assert list(json.loads((tmp_path / "full" / "export.json").read_text())["variants"]) == [
        "fused"
    ]


@pytest.mark.parametrize(
    ("experiment", "method", "quantization"),
    [
        ("dora-r8", "dora", None),
        ("hybrid-r8", "hybrid", None),
        ("qlora-r8", "qlora", {"base_quantization": {"bits": 8, "group_size": 64}}),
    ],
)
def test_every_adapter_method_fuses_to_what_its_run_computes(
    deploy_base,  # noqa: F811
    tmp_path,
    experiment,
    method,
    quantization,
):
    from mlx_instruct.sources import load_model
    from mlx_instruct.train.outputs import load_trained

    run = make_lora_run(deploy_base, tmp_path / "run", method=method, quantization=quantization)
    assert _export(deploy_base, tmp_path / "out", experiment, run, "--bits") == 0
    tuned = logits(load_trained(deploy_base, run)[0])
    fused = load_model(tmp_path / "out" / "fused")[0]
    assert mx.allclose(logits(fused), tuned, atol=1e-5).item()
    assert _relative(logits(load_model(deploy_base)[0]), tuned) > 0.1
    assert not any(isinstance(m, nn.QuantizedLinear) for _, m in fused.named_modules())


@pytest.mark.parametrize(
    ("experiment", "extra", "needle"),
    [
        ("lora-r4", ["--bits", "7"], "--bits 7: The requested number of bits 7 is not supported"),
        ("lora-r4", ["--bits", "4", "4"], "--bits: [4, 4] repeats a value"),
        ("lora-r4", ["--group-size", "48"], "--group-size 48: The requested group size 48"),
        ("lora-r4", ["--group-size", "0"], "--group-size 0: expected a positive integer"),
        ("lora-r4", ["--group-size", "128"], "input width 64 of layer lm_head"),
        ("lora-r4", ["--no-run"], "--run: experiments.lora-r4 trains (lora)"),
        ("base", [], "experiments.base is the untuned base"),
        ("nope", [], "no experiment 'nope'"),
    ],
)
def test_bad_settings_fail_before_compute(
    deploy_base,  # noqa: F811
    tmp_path,
    capsys,
    experiment,
    extra,
    needle,
):
    run = None if "--no-run" in extra else make_lora_run(deploy_base, tmp_path / "run")
    extra = [e for e in extra if e != "--no-run"]
    assert _export(deploy_base, tmp_path / "out", experiment, run, *extra) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@settings(max_examples=40, deadline=None)
@given(
    bits=st.integers(-1, 10),
    group_size=st.one_of(st.sampled_from([32, 64, 128]), st.integers(-1, 300)),
)
def test_check_quantization_accepts_exactly_what_mlx_quantizes(bits, group_size):
    model = nn.Sequential(nn.Linear(max(group_size, 1) * 2, 4))
    try:
        check_quantization([bits], group_size)
    except ExportError as error:
        assert str(error).startswith(("--bits", "--group-size"))
        if group_size > 0:  # MLX itself crashes (SIGFPE) on a group size of 0
            with pytest.raises(ValueError):
                nn.quantize(model, group_size=group_size, bits=bits)
        return
    nn.quantize(model, group_size=group_size, bits=bits)
    assert isinstance(model.layers[0], nn.QuantizedLinear)
