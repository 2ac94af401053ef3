"""deploy profile: rows for batch 1, batch B and the model, finite and positive where they must
be; size on disk is the safetensors bytes (a q4 export is smaller than the fused one); an
unfused run adds its adapters; bad inputs give one clear error."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_deploy_support import SMOKE, deploy_base, make_lora_run  # noqa: F401

from mlx_instruct.deploy.__main__ import main as deploy_main
from mlx_instruct.deploy.profile import parse_args
from mlx_instruct.evaluate.efficiency import GB
from mlx_instruct.io import read_jsonl, write_jsonl

N, BATCH, REPEATS = 3, 4, 2
TIMED = ("ttft_s", "prompt_tokens_per_s", "decode_tokens_per_s", "peak_memory_gb")


def _profile(model: Path, prompts: Path, out: Path, *extra: str) -> int:
    argv = ["profile", "--model", str(model), "--prompts", str(prompts), "--out", str(out),
            "--n", str(N), "--max-tokens", "6", "--batch-size", str(BATCH),
            "--repeats", str(REPEATS), *extra]  # fmt: skip
    return deploy_main(argv)


def _safetensors_bytes(*dirs: Path) -> int:
    return sum(p.stat().st_size for d in dirs for p in d.glob("*.safetensors"))


@pytest.fixture(scope="module")
def profiled(deploy_base, tmp_path_factory):  # noqa: F811
    from mlx_instruct.deploy.export import main as export_main

    root = tmp_path_factory.mktemp("profile")
    run = make_lora_run(deploy_base, root / "lora-r4")
    exported = root / "export"
    argv = ["--config", str(SMOKE), "--experiment", "lora-r4", "--seed", "0",
            "--model", str(deploy_base), "--run", str(run), "--out", str(exported),
            "--bits", "4", "--group-size", "64"]  # fmt: skip
    assert export_main(argv) == 0
    prompts = root / "test.jsonl"
    texts = ["Name a colour.", "Count to three.", "Say hello.", "Not used: beyond --n."]
    write_jsonl(prompts, [{"id": f"t{i}", "prompt": t} for i, t in enumerate(texts)])
    outs = {}
    for name, model, extra in (
        ("fused", exported / "fused", ()),
        ("q4", exported / "q4", ()),
        ("unfused", deploy_base, ("--run", str(run))),
    ):
        outs[name] = root / f"{name}.jsonl"
        assert _profile(model, prompts, outs[name], *extra) == 0
    return {"base": deploy_base, "run": run, "export": exported, "outs": outs}


def _values(path: Path, benchmark: str, metric: str) -> list[float]:
    return [
        r["value"] for r in read_jsonl(path) if (r["benchmark"], r["metric"]) == (benchmark, metric)
    ]


def test_rows_present_finite_and_positive(profiled):
    for path in profiled["outs"].values():
        rows = read_jsonl(path)
        assert {r["suite"] for r in rows} == {"profile"}
        items = {r["item_id"] for r in rows if r["benchmark"] == "batch1"}
        assert items == {f"t{i}-r{k}" for i in range(N) for k in range(REPEATS)}
        for metric in TIMED:
            values = _values(path, "batch1", metric)
            assert len(values) == N * REPEATS and all(math.isfinite(v) and v > 0 for v in values)
        for metric in ("tokens_per_s", "peak_memory_gb"):
            values = _values(path, f"batch{BATCH}", metric)
            assert len(values) == REPEATS and all(math.isfinite(v) and v > 0 for v in values)
        assert _values(path, "batch1", "ttft_s")[0] < 60


def test_summary_holds_the_medians(profiled):
    path = profiled["outs"]["fused"]
    summary = json.loads(path.with_suffix(".json").read_text())
    assert (summary["n"], summary["batch_size"], summary["repeats"]) == (N, BATCH, REPEATS)
    assert [len(summary["load_average"][k]) for k in ("before", "after")] == [3, 3]
    for metric in TIMED:
        assert summary["medians"]["batch1"][metric] == statistics.median(
            _values(path, "batch1", metric)
        )
    assert summary["medians"]["model"]["parameters"] == _values(path, "model", "parameters")[0]


def test_size_on_disk_is_the_safetensors_and_q4_is_smaller(profiled):
    export, outs = profiled["export"], profiled["outs"]
    sizes = {name: _values(outs[name], "model", "size_on_disk_gb")[0] for name in outs}
    assert sizes["fused"] * GB == pytest.approx(_safetensors_bytes(export / "fused"), rel=1e-9)
    assert sizes["q4"] * GB == pytest.approx(_safetensors_bytes(export / "q4"), rel=1e-9)
    unfused = _safetensors_bytes(profiled["base"]) + _safetensors_bytes(profiled["run"])
    assert sizes["unfused"] * GB == pytest.approx(unfused, rel=1e-9)
    assert sizes["q4"] < 0.5 * sizes["fused"]
    params = {name: _values(outs[name], "model", "parameters")[0] for name in outs}
    assert params["q4"] == params["fused"] < params["unfused"]  # the adapter's own weights


def test_bad_inputs_name_the_flag(deploy_base, tmp_path, capsys):  # noqa: F811
    prompts = tmp_path / "test.jsonl"
    write_jsonl(prompts, [{"id": "a", "prompt": "Hi."}])
    out = tmp_path / "p.jsonl"
    assert _profile(tmp_path / "missing", prompts, out) == 2
    assert "--model" in capsys.readouterr().err
    assert _profile(deploy_base, prompts, out, "--run", str(tmp_path)) == 2
    assert "--run" in capsys.readouterr().err
    assert _profile(deploy_base, tmp_path / "none.jsonl", out) == 2
    assert "--prompts" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit) as exit_info:
        _profile(deploy_base, prompts, out, "--n", "0")
    assert exit_info.value.code == 2
    assert "--n must be >= 1, got 0" in capsys.readouterr().err


@settings(max_examples=30, deadline=None)
@given(
    flag=st.sampled_from(["--n", "--max-tokens", "--batch-size", "--repeats"]),
    value=st.integers(-5, 5),
)
def test_counts_must_be_positive(flag, value):
    argv = ["--model", "m", "--prompts", "p.jsonl", "--out", "o.jsonl", flag, str(value)]
    if value >= 1:
        assert getattr(parse_args(argv), flag[2:].replace("-", "_")) == value
    else:
        with pytest.raises(SystemExit):
            parse_args(argv)
