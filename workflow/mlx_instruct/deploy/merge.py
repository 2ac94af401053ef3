"""`python -m mlx_instruct.deploy merge`: a weighted merge of LoRA runs, as a run of its own.

    python -m mlx_instruct.deploy merge --config <study.yaml> \\
        --parents results/S/runs/A/s0 results/S/runs/B/s0 --weights 0.5 0.5 \\
        --out results/S/runs/<merge>/s0

The merged adapter's weight change is exactly sum_i w_i * scale_i * B_i A_i (per adapted
layer). Averaging the A's and the B's separately is not that sum: (A1+A2)(B1+B2)/4 carries the
cross terms A1 B2 and A2 B1, which neither parent learned, and loses half of each parent's own
delta. Concatenating ranks keeps it exact: A = [A_1 | A_2] (inputs x r1+r2) and
B = [w_1 s_1 B_1 ; w_2 s_2 B_2] with the LoRA scale set to 1, so x A B = sum_i w_i s_i x A_i B_i.
The parents' ranks may therefore differ; the merged rank is their sum.

The output is mlx_lm's adapter format (`mlx_lm generate --adapter-path`, `load_trained` and the
evaluate CLI's --run accept it) plus run.json: method "lora" (what it is to every loader and to
the analysis, which groups arms by method), rank = the concatenated rank (what the file holds),
and `merge` = the parents, their weights, ranks and scales. Only plain LoRA merges this way:
DoRA renormalises each weight, hybrid also trains norms, full and qlora deltas are not low-rank
products over the same base; those are refused, as are parents over different bases, layers or
target modules. Errors: one line naming the flag and parent, exit 2, before any weight loads.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import mlx.core as mx

from mlx_instruct.config import ConfigError, fingerprint, load_config
from mlx_instruct.io import atomic_dir, write_json
from mlx_instruct.provenance import git_state
from mlx_instruct.train.outputs import ADAPTER_CONFIG, ADAPTER_FILE, save_safetensors

EXIT_USAGE = 2
BASE_IDENTITY = ("uri", "resolved", "sha256", "seed")  # source.json fields that name the weights


class MergeError(ValueError):
    """Parents or weights that cannot merge exactly (names the flag and the parent)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlx_instruct.deploy merge", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--config", required=True, help="resolved study YAML")
    parser.add_argument("--parents", nargs="+", required=True, help="LoRA run directories")
    parser.add_argument("--weights", nargs="+", type=float, required=True, help="one per parent")
    parser.add_argument("--out", required=True, help="run directory to write")
    return parser


def _read_parent(run: Path) -> dict[str, Any]:
    """A parent's adapter_config.json and run.json, refusing any method but plain LoRA."""
    if not run.is_dir():
        raise MergeError(f"--parents {run}: run directory not found")
    if not (run / ADAPTER_CONFIG).is_file():
        kind = "a full fine-tune" if (run / "config.json").is_file() else "not a run"
        raise MergeError(f"--parents {run}: {kind} (no {ADAPTER_CONFIG}); only LoRA runs merge")
    adapter = json.loads((run / ADAPTER_CONFIG).read_text())
    method = adapter.get("method", adapter.get("fine_tune_type"))
    if method != "lora" or adapter.get("fine_tune_type") != "lora":
        raise MergeError(
            f"--parents {run}: method {method!r}; only plain LoRA adapters merge exactly"
        )
    if not (run / "run.json").is_file():
        raise MergeError(f"--parents {run}: no run.json (the base model it trained on)")
    record = json.loads((run / "run.json").read_text())
    return {"dir": run, "adapter": adapter, "run": record}


def _base_identity(parent: dict[str, Any]) -> dict[str, Any]:
    model = parent["run"].get("model") or {}
    source = model.get("source") or {}
    identity = {key: source.get(key) for key in BASE_IDENTITY if key in source}
    return identity or {"dir": str(Path(model.get("dir", "?")).resolve())}


def check_parents(parents: list[dict[str, Any]], weights: list[float]) -> None:
    """The same base, blocks and target modules in every parent; finite weights."""
    if len(weights) != len(parents):
        raise MergeError(
            f"--weights: {len(weights)} values for {len(parents)} --parents; give one per parent"
        )
    if len(parents) < 2:
        raise MergeError(f"--parents: {len(parents)} run; a merge needs at least two")
    bad = [w for w in weights if not math.isfinite(w)]
    if bad:
        raise MergeError(f"--weights: {bad} is not a finite number")
    first = parents[0]
    for other in parents[1:]:
        for what, get in (
            ("base model", _base_identity),
            ("num_layers", lambda p: p["adapter"].get("num_layers")),
            ("target modules (lora_parameters.keys)", _keys),
        ):
            if get(first) != get(other):
                raise MergeError(
                    f"--parents: {what} differ: {first['dir']} has {get(first)}, "
                    f"{other['dir']} has {get(other)}"
                )


def _keys(parent: dict[str, Any]) -> list[str] | None:
    keys = parent["adapter"]["lora_parameters"].get("keys")
    return sorted(keys) if keys is not None else None


def _layers(weights: dict[str, mx.array], run: Path) -> dict[str, tuple[mx.array, mx.array]]:
    """{module path: (A, B)} of one adapter file."""
    layers: dict[str, dict[str, mx.array]] = {}
    for name, value in weights.items():
        module, leaf = name.rsplit(".", 1)
        if leaf not in ("lora_a", "lora_b"):
            raise MergeError(f"--parents {run}: {ADAPTER_FILE} holds {name}, not a LoRA matrix")
        layers.setdefault(module, {})[leaf] = value
    return {m: (ab["lora_a"], ab["lora_b"]) for m, ab in layers.items()}


def merge_adapters(
    adapters: list[dict[str, tuple[mx.array, mx.array]]], factors: list[float], runs: list[Path]
) -> dict[str, mx.array]:
    """Rank-concatenated A and B whose product is sum_i factor_i * B_i A_i (factor = w * s)."""
    modules = set(adapters[0])
    for layers, run in zip(adapters[1:], runs[1:], strict=True):
        if set(layers) != modules:
            only = sorted(modules.symmetric_difference(layers))
            raise MergeError(f"--parents: {runs[0]} and {run} adapt different layers: {only}")
    merged = {}
    for module in sorted(modules):
        a = mx.concatenate([layers[module][0] for layers in adapters], axis=1)
        b = mx.concatenate(
            [factor * layers[module][1] for layers, factor in zip(adapters, factors, strict=True)],
            axis=0,
        )
        merged[f"{module}.lora_a"], merged[f"{module}.lora_b"] = a, b
    return merged


def merge(args: argparse.Namespace) -> dict[str, Any]:
    """Validate, merge, and write the run directory (run.json last)."""
    started = time.time()
    config = load_config(args.config)
    parents = [_read_parent(Path(p)) for p in args.parents]
    check_parents(parents, args.weights)
    runs = [p["dir"] for p in parents]
    scales = [float(p["adapter"]["lora_parameters"]["scale"]) for p in parents]
    ranks = [int(p["adapter"]["lora_parameters"]["rank"]) for p in parents]
    adapters = [_layers(mx.load(str(run / ADAPTER_FILE)), run) for run in runs]
    factors = [w * s for w, s in zip(args.weights, scales, strict=True)]
    merged = merge_adapters(adapters, factors, runs)
    first = parents[0]["adapter"]
    adapter_config = {
        **{k: v for k, v in first.items() if k not in ("alpha", "lora_parameters")},
        "lora_parameters": {
            **first["lora_parameters"],
            "rank": sum(ranks),
            "scale": 1.0,  # folded into B
            "dropout": 0.0,
        },
    }
    lineage = {
        "parents": [str(run) for run in runs],
        "weights": list(args.weights),
        "ranks": ranks,
        "scales": scales,
        "parent_fingerprints": [p["run"].get("fingerprint") for p in parents],
    }
    out = Path(args.out)
    record = _run_record(args, config, parents, lineage, merged, adapter_config)
    with atomic_dir(out) as tmp:
        save_safetensors(tmp / ADAPTER_FILE, merged)
        write_json(tmp / ADAPTER_CONFIG, {**adapter_config, "merge": lineage})
        write_json(tmp / "run.json", {**record, "wall_time_s": time.time() - started})
    return record


def _run_record(
    args: argparse.Namespace,
    config: dict[str, Any],
    parents: list[dict[str, Any]],
    lineage: dict[str, Any],
    merged: dict[str, mx.array],
    adapter_config: dict[str, Any],
) -> dict[str, Any]:
    """run.json: the fields the analysis reads from a trained run, and the merge's lineage."""
    from mlx_instruct.train.instrument import hardware, versions

    names = [f"{p['run'].get('experiment', p['dir'].parent.name)}" for p in parents]
    data = [(p["run"].get("data") or {}).get("fingerprint") for p in parents]
    return {
        "study": config["study"],
        "method": "lora",
        "rank": adapter_config["lora_parameters"]["rank"],
        "scale": 1.0,
        "status": "completed",
        "trained": "nothing: a weighted merge of "
        + ", ".join(f"{w:g} x {n}" for w, n in zip(lineage["weights"], names, strict=True)),
        "trainable_parameters": sum(v.size for v in merged.values()),
        "merge": lineage,
        "fingerprint": fingerprint({"parents": lineage["parent_fingerprints"], "w": args.weights}),
        "config": {"file": str(args.config), "fingerprint": fingerprint(config)},
        "data": {"fingerprint": fingerprint(data), "parents": data},
        "model": parents[0]["run"].get("model"),
        "versions": versions(),
        "git": git_state(),
        "hardware": hardware(),
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        record = merge(args)
    except (ConfigError, MergeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"merge: {record['trained']} -> {args.out} (rank {record['rank']})")
    return 0
