"""Peak memory and step time of each way to fine-tune a study's model (issue 12, item 1).

    python benchmarks/full_finetune_memory.py --config configs/mistral-7b.yaml --out DIR \\
        [--arms full,full-adafactor,...] [--timeout 150]

Why: the full fine-tune of configs/mistral-7b.yaml peaked at 112.3 GB in a dry run, and the
user's Mac lets the GPU wire about 48 GB. This measures every option (optimizer, which
weights train, the ||W - W0|| copy) with the trainer's own `--dry-run`, at the study's
shape and dtype but random weights (`random://mistral-7b?weights=false`, no download) and
synthetic rows whose longest reach the study's max_seq_len, so the worst micro-batch is
what a real run's worst is. Each arm runs in its own process, so each peak is its own.
Writes DIR/options.json (every dry run's record) and DIR/options.md (the table).
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

# Overrides on the study's own experiment (the key before ":"); the order is the run order,
# the configurations most likely to exceed the card's memory last.
ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "full-adafactor-nodelta": ("full", {"optimizer": "adafactor", "weight_delta": False}),
    "full-adafactor": ("full", {"optimizer": "adafactor"}),
    "lora-r32": ("lora-r32", {}),
    "full-adamw-l16-nodelta": ("full", {"num_layers": 16, "weight_delta": False}),
    "full-adafactor-nodelta-emb": (
        "full",
        {"optimizer": "adafactor", "weight_delta": False, "train_embeddings": True},
    ),
    "lora-r64": ("lora-r64", {}),
    "full-adamw-l8-nodelta": ("full", {"num_layers": 8, "weight_delta": False}),
    "lora-r32-mb1": ("lora-r32", {"micro_batch_size": 1}),
    "full-adafactor-l16-nodelta": (
        "full",
        {"num_layers": 16, "weight_delta": False, "optimizer": "adafactor"},
    ),
    "full-adamw-nodelta": ("full", {"weight_delta": False}),
    "full": ("full", {}),
    # diagnostics: does gradient accumulation (32 micro-batches per step) hold the memory?
    "full-adafactor-nodelta-b1": (
        "full",
        {"optimizer": "adafactor", "weight_delta": False, "batch_size": 1},
    ),
    "full-adafactor-nodelta-b4": (
        "full",
        {"optimizer": "adafactor", "weight_delta": False, "batch_size": 4},
    ),
    "full-adafactor-l4-nodelta": (
        "full",
        {"num_layers": 4, "weight_delta": False, "optimizer": "adafactor"},
    ),
}
FIELDS = ("peak_memory_gb", "step_s", "first_step_s", "tokens_per_s", "tokens_per_step")


def derived_study(study: dict[str, Any], arms: list[str], model_uri: str) -> dict[str, Any]:
    """The study with one experiment per arm (and its baseline), on random weights."""
    out = copy.deepcopy(study)
    out["study"] = f"{study['study']}-memory-options"
    out["model"] = {**study["model"], "source": model_uri}
    base = next(k for k, v in study["experiments"].items() if v.get("method") == "none")
    experiments: dict[str, Any] = {base: {"method": "none"}}
    for arm in arms:
        parent, overrides = ARMS[arm]
        experiments[arm] = {**study["experiments"][parent], **overrides}
    out["experiments"] = experiments
    out.get("report", {}).pop("pairs", None)
    return out


def synthetic_rows(tokenizer: Any, max_len: int, n: int = 48) -> list[dict[str, Any]]:
    """Alpaca-template rows whose token lengths spread up to just under `max_len`."""
    prompt = (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nExplain, step by step, how {k}.\n\n"
        "### Response:\n"
    )
    sentence = "The quick brown fox jumps over the lazy dog near river bank number {i}. "
    rows = []
    for k in range(n):
        target = max_len - 8 if k >= n - 16 else 64 + (max_len - 64) * k // n
        text, i = "", 0
        while len(tokenizer.encode(prompt.format(k=k) + text + sentence.format(i=i))) < target:
            text += sentence.format(i=i)
            i += 1
        rows.append({"id": f"synthetic-{k}", "prompt": prompt.format(k=k), "completion": text})
    return rows


def prepare(args: argparse.Namespace, work: Path) -> tuple[Path, Path, Path]:
    """(derived study file, model dir, data dir), made under `work`."""
    from mlx_instruct.config import data_settings, load_config
    from mlx_instruct.io import write_jsonl
    from mlx_instruct.sources import load_model

    study = load_config(args.config)
    model_dir, data_dir = work / "model", work / "data"
    uri = args.model_uri
    if not (model_dir / "config.json").is_file():
        dtype = study["model"].get("dtype", "float32")
        cmd = [sys.executable, "-m", "mlx_instruct.sources", "prepare", uri, str(model_dir)]
        subprocess.run([*cmd, "--dtype", dtype], check=True)
    _, tokenizer = load_model(model_dir)  # random weights stay lazy: nothing is computed
    rows = synthetic_rows(tokenizer, int(data_settings(study)["max_seq_len"]))
    write_jsonl(data_dir / "train.jsonl", rows)
    write_jsonl(data_dir / "valid.jsonl", rows[:8])
    derived = work / "study.yaml"
    derived.write_text(yaml.safe_dump(derived_study(study, args.arms, uri), sort_keys=False))
    return derived, model_dir, data_dir


def dry_run(arm: str, study: Path, model: Path, data: Path, out: Path, timeout: int) -> dict:
    """One arm's dry run in its own process: its dry_run.json fields, or why it failed."""
    cmd = [sys.executable, "-m", "mlx_instruct.train", "--config", str(study), "--experiment",
           arm, "--seed", "0", "--model", str(model), "--data", str(data), "--out",
           str(out / arm), "--dry-run", "--no-progress"]  # fmt: skip
    tic = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"arm": arm, "error": f"timeout after {timeout} s"}
    wall = time.perf_counter() - tic
    record = out / arm / "dry_run.json"
    if done.returncode != 0 or not record.is_file():
        tail = (done.stdout + done.stderr).strip().splitlines()[-6:]
        return {"arm": arm, "error": f"exit {done.returncode}", "tail": tail, "wall_s": wall}
    report = json.loads(record.read_text())
    result = {k: report["dry_run"][k] for k in FIELDS}
    return {
        "arm": arm,
        "wall_s": wall,
        **result,
        "trainable_params": report["dry_run"]["trainable_params"],
        "optimizer": report.get("optimizer"),
        "trained": report.get("trained"),
        "settings": {k: report["settings"].get(k) for k in ("micro_batch_size", "batch_size")},
        "versions": report.get("versions"),
        "hardware": report.get("hardware"),
    }


def table(results: list[dict[str, Any]]) -> str:
    """The markdown table of the arms."""
    lines = [
        "| arm | trains | trainable params | peak GB | step s | tokens/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['arm']} | failed: {r['error']} | | | | |")
            continue
        lines.append(
            f"| {r['arm']} | {r['trained']} | {r['trainable_params'] / 1e9:.3f} B | "
            f"{r['peak_memory_gb']:.1f} | {r['step_s']:.2f} | {r['tokens_per_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--arms", default=",".join(ARMS), type=lambda s: s.split(","))
    parser.add_argument("--model-uri", default="random://mistral-7b?weights=false")
    parser.add_argument("--timeout", type=int, default=150, help="seconds per arm")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.arms) - set(ARMS))
    if unknown:
        parser.error(f"--arms: unknown {unknown}; known: {list(ARMS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    study, model, data = prepare(args, args.out / "work")
    results = []
    for arm in args.arms:
        results.append(dry_run(arm, study, model, data, args.out / "runs", args.timeout))
        brief = {k: v for k, v in results[-1].items() if k not in ("versions", "hardware")}
        print(json.dumps(brief), flush=True)
        (args.out / "options.json").write_text(json.dumps(results, indent=1))
        (args.out / "options.md").write_text(table(results))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
