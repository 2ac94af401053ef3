"""The training CLI the Snakemake rule calls: outputs, mlx_lm compatibility, SIGKILL resume,
every method end to end, dry run, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import pytest
from test_train_support import read_log, tiny, write_study  # noqa: F401

from mlx_instruct.train.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def _argv(tiny, config: Path, out: Path, experiment: str = "lora", *extra: str) -> list[str]:  # noqa: F811
    return [
        "--config", str(config), "--experiment", experiment, "--seed", "0",
        "--model", str(tiny["model"]), "--data", str(tiny["data"]), "--out", str(out),
        "--no-progress", *extra,
    ]  # fmt: skip


def test_lora_run_outputs_and_mlx_lm_accepts_the_adapters(tiny, tmp_path, monkeypatch):  # noqa: F811
    from mlx_lm import load

    config = write_study(tmp_path / "study.yaml")
    run = tmp_path / "run"
    assert main(_argv(tiny, config, run)) == 0
    for name in ("adapter_config.json", "adapters.safetensors", "train_log.jsonl", "val_log.jsonl",
                 "layer_log.jsonl", "samples.jsonl", "run.json"):  # fmt: skip
        assert (run / name).is_file(), name
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and record["steps_done"] == 6
    assert {"settings", "data", "versions", "git", "hardware", "fingerprint"} <= set(record)
    assert record["data"]["files_sha256"]["train.jsonl"]
    train = read_log(run, "train_log")
    assert [r["step"] for r in train] == list(range(1, 7))
    assert {
        "step",
        "tokens",
        "loss",
        "ppl",
        "lr",
        "grad_norm",
        "tokens_per_s",
        "step_time_s",
        "peak_memory_gb",
    } <= set(train[0])
    assert [r["step"] for r in read_log(run, "val_log")] == [0, 3, 6]
    samples = read_log(run, "samples")
    assert len(samples) == 5 and {s["step"] for s in samples} == {6}

    base, tokenizer = load(str(tiny["model"]))
    tuned, _ = load(str(tiny["model"]), adapter_path=str(run))
    ids = mx.array([tokenizer.encode("Repeat the word 'apple' twice.")])
    assert not mx.allclose(base(ids), tuned(ids)).item()  # the adapters change the output
    generate = [sys.executable, "-m", "mlx_lm", "generate", "--model", str(tiny["model"]),
                "--adapter-path", str(run), "--prompt", "hello", "--max-tokens", "3"]  # fmt: skip
    done = subprocess.run(generate, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert main(_argv(tiny, config, run, "lora", "--resume")) == 0  # already complete: no work
    from mlx_lm import fuse

    argv = [
        "mlx_lm.fuse",
        "--model",
        str(tiny["model"]),
        "--adapter-path",
        str(run),
        "--save-path",
        str(tmp_path / "fused"),
    ]
    monkeypatch.setattr(sys, "argv", argv)
    fuse.main()
    fused, _ = load(str(tmp_path / "fused"))
    assert mx.allclose(fused(ids), tuned(ids), atol=1e-4).item()


# The training CLI with a hook that SIGKILLs the process once step 4 is done (before step 5).
KILL_AFTER_STEP_4 = """
import os, signal, sys
from mlx_instruct.train import trainer
from mlx_instruct.train.__main__ import main

def kill(run, step):
    if step == 5:
        os.kill(os.getpid(), signal.SIGKILL)

class Trainer(trainer.Trainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.hooks.append(kill)

trainer.Trainer = Trainer
sys.exit(main(sys.argv[1:]))
"""


def test_resume_after_sigkill_matches_an_uninterrupted_run(tiny, tmp_path):  # noqa: F811
    config = write_study(tmp_path / "study.yaml", dropout=0.1)
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert main(_argv(tiny, config, whole)) == 0
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_STEP_4, *_argv(tiny, config, broken, "lora", "--resume")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (broken / "run.json").exists()
    assert json.loads((broken / "checkpoint" / "state.json").read_text())["step"] == 3
    assert [r["step"] for r in read_log(broken, "train_log")] == [1, 2, 3, 4]
    assert main(_argv(tiny, config, broken, "lora", "--resume")) == 0
    for name in ("train_log", "val_log"):
        a, b = read_log(whole, name), read_log(broken, name)
        assert [r["step"] for r in a] == [r["step"] for r in b]
        key = "loss" if name == "train_log" else "val_loss"
        assert [r[key] for r in b] == pytest.approx([r[key] for r in a], rel=1e-6, abs=1e-7)
    layers_a = [(r["step"], r["module"], r["kind"]) for r in read_log(whole, "layer_log")]
    assert layers_a == [(r["step"], r["module"], r["kind"]) for r in read_log(broken, "layer_log")]
    wa, wb = (
        mx.load(str(whole / "adapters.safetensors")),
        mx.load(str(broken / "adapters.safetensors")),
    )
    assert all(mx.allclose(wa[k], wb[k], rtol=1e-5, atol=1e-7).item() for k in wa)
    assert json.loads((broken / "run.json").read_text())["resumed_at"] == [3]


def test_every_method_trains_end_to_end(tiny, tmp_path):  # noqa: F811
    from mlx_lm import load

    from mlx_instruct.train import load_trained

    config = write_study(
        tmp_path / "study.yaml", steps=2, eval_every=2, sample_every=2, checkpoint_every=1
    )
    for experiment in ("dora", "hybrid", "qlora", "full", "retention"):
        run = tmp_path / experiment
        assert main(_argv(tiny, config, run, experiment)) == 0, experiment
        record = json.loads((run / "run.json").read_text())
        assert record["status"] == "completed" and record["method"] in experiment + "lora"
        model, tokenizer = load_trained(tiny["model"], run)
        assert model(mx.array([[1, 2, 3]])).shape[-1] == tokenizer.vocab_size
        if experiment == "full":
            assert (run / "model.safetensors").is_file() and not (run / "checkpoint").exists()
            load(str(run))
        else:
            assert (run / "adapters.safetensors").is_file()
        if experiment == "hybrid":
            assert (run / "norms.safetensors").is_file()
        if experiment == "retention":
            assert record["data"]["rows_retention"] == 8 and record["data"]["rows_mixed"] == 40


def test_dry_run_writes_a_memory_report_only(tiny, tmp_path, capsys):  # noqa: F811
    config = write_study(tmp_path / "study.yaml")
    run = tmp_path / "run"
    assert main(_argv(tiny, config, run, "lora", "--dry-run")) == 0
    report = json.loads((run / "dry_run.json").read_text())["dry_run"]
    assert report["peak_memory_gb"] > 0 and report["tokens_per_step"] > 0
    assert not (run / "run.json").exists() and not (run / "train_log.jsonl").exists()
    assert "peak memory" in capsys.readouterr().out


@pytest.mark.parametrize(
    "case, expected",
    [("unknown", "no experiment 'nope'"), ("baseline", "untuned baseline"), ("no-data", "no such file"),
     ("bad-json", "train.jsonl:2"), ("no-field", "'completion'"), ("bad-config", "invalid study config")],
)  # fmt: skip
def test_config_and_data_errors_exit_2_with_one_line(tiny, tmp_path, capsys, case, expected):  # noqa: F811
    config = write_study(tmp_path / "study.yaml")
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train.jsonl", "valid.jsonl"):
        data.joinpath(name).write_text((tiny["data"] / name).read_text())
    experiment = {"unknown": "nope", "baseline": "base"}.get(case, "lora")
    if case == "no-data":
        data.joinpath("train.jsonl").unlink()
    elif case == "bad-json":
        lines = data.joinpath("train.jsonl").read_text().splitlines()
        data.joinpath("train.jsonl").write_text(
            "\n".join([lines[0], "{not json", *lines[2:]]) + "\n"
        )
    elif case == "no-field":
        row = json.loads(data.joinpath("valid.jsonl").read_text().splitlines()[0])
        del row["completion"]
        data.joinpath("valid.jsonl").write_text(json.dumps(row) + "\n")
    elif case == "bad-config":
        config.write_text(config.read_text().replace("micro_batch_size: 2", "micro_batch_size: 0"))
    argv = _argv(tiny, config, tmp_path / "run", experiment)
    argv[argv.index("--data") + 1] = str(data)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and "Traceback" not in err


def test_runs_over_a_base_without_written_weights_load_like_the_written_one(tiny, tmp_path):  # noqa: F811
    """A random:// base prepared with weights=false (the 7B-shape GPU check) trains, and
    load_trained rebuilds it for evaluation: on the H100 it once went through mlx_lm.load,
    which found no safetensors. Same seed, same weights: the outputs match the written base."""
    from mlx_instruct.sources import prepare_model
    from mlx_instruct.train import load_trained

    lazy = prepare_model("random://mistral-tiny?weights=false", tmp_path / "lazy")
    assert not list(lazy.glob("*.safetensors"))
    config = write_study(tmp_path / "study.yaml", steps=1, eval_every=1, sample_every=1)
    run = tmp_path / "lora"
    argv = _argv(tiny, config, run)
    argv[argv.index("--model") + 1] = str(lazy)
    assert main(argv) == 0
    x = mx.array([[1, 5, 9, 300]])
    for trained in (None, run):
        model, _ = load_trained(lazy, trained)
        written, _ = load_trained(tiny["model"], trained)
        assert mx.allclose(model(x), written(x), atol=1e-5), trained
