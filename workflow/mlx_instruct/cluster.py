"""Per-rule cluster resources (host memory, runtime, GPUs) for `--profile profiles/slurm`.

A scheduler kills a job at its limits and queues big requests longer, so each job asks for
what it is measured or computed to need. In order of preference:

1. **The plan** (`results/<study>/plan/plan.csv`, the `plan` rule or `mlx-instruct plan`): a
   trained arm's dry-run peak memory and its estimated training and evaluation minutes.
2. **A stated rule from the model's size and the study's settings**, where no plan exists
   yet: weights = parameters (counted on the model built lazily from its config.json, no
   weights loaded) x the study's bytes per parameter; training adds gradients and AdamW's two
   moments for what trains in full, and activations by Korthikanti et al. (2022): 34 x
   sequence x micro-batch x hidden bytes per layer at 16 bits (2 x that x bytes with gradient
   checkpointing), plus float32 logits and their gradient; evaluation adds a KV cache of
   2 x layers x hidden per token. Runtimes count FLOPs (6 per parameter and token where the
   weights train, 4 for frozen weights with adapters, 2 to evaluate) at FLOOR_GFLOPS.

Every figure gets HEADROOM plus FIXED_MIN, and doubles with each Snakemake retry
(`attempt`), the usual answer to a job killed for memory or time (`retries` in the profile).
Rules that read no model get the BASELINE_MB process and FIXED_MIN.
"""

from __future__ import annotations

import csv
import errno
import functools
import importlib.metadata
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlx_instruct import config as cfg

# The largest max RSS of any smoke-study job on the 2-core EPYC (evaluate: 522 MB, a 4.6M-
# parameter model: the interpreter, MLX, lm-eval and the sentence encoder), doubled.
BASELINE_MB = 1024
HEADROOM = 1.5  # on every estimate: a job killed at its limit costs a resubmission and a queue
# The slowest rate this study was measured at (docs/study.md: prefill on the 2-core EPYC's
# OpenBLAS), so a runtime without a plan errs long on faster hardware, never short.
FLOOR_GFLOPS = 24.0
FLOPS_PER_MIN = FLOOR_GFLOPS * 1e9 * 60
# What no FLOP count sees, per job: the smoke study's jobs, whose 4.2M-parameter model needs
# next to no FLOPs, took up to 3:25 as SLURM jobs on the 2-core VM under a load of 7 (evaluate:
# Snakemake starting twice in the job, imports, compilation, validation, the sentence
# encoder; docs/slurm-one-node.md), so 6 minutes.
FIXED_MIN = 6
GPU_RULES = frozenset({"train", "evaluate", "plan"})  # the rules that run the model on a device
MODEL_RULES = GPU_RULES | {"prepare_retention"}  # rules that load the model's weights
BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


@dataclass(frozen=True)
class Shape:
    """What memory and FLOPs depend on, from a model's config.json."""

    params: int
    hidden: int
    layers: int
    vocab: int


def backend() -> str:
    """Where this environment's MLX runs models: `cuda` where an mlx-cuda build is installed
    (read from the package metadata, so a GPU-less submit host of a GPU cluster says so too),
    `metal` on macOS, else `cpu`."""
    names = {(dist.metadata["Name"] or "").lower() for dist in importlib.metadata.distributions()}
    if any(name.startswith("mlx-cuda") for name in names):
        return "cuda"
    return "metal" if sys.platform == "darwin" else "cpu"


@functools.lru_cache(maxsize=8)
def model_shape(model_dir: str) -> Shape:
    """The model built from config.json without evaluating its (lazy) weights: params exact."""
    from mlx_lm.utils import _get_classes, get_total_parameters, load_config

    config = load_config(Path(model_dir))  # FileNotFoundError until prepare_model ran
    model_class, args_class = _get_classes(config)
    args = args_class.from_dict(config)
    return Shape(
        params=int(get_total_parameters(model_class(args))),
        hidden=int(config["hidden_size"]),
        layers=int(config["num_hidden_layers"]),
        vocab=int(config["vocab_size"]),
    )


def plan_row(results: str | Path, experiment: str) -> dict[str, str] | None:
    """The plan's row for `experiment` (any row for an untrained one: evaluation costs the
    same per model), or None where no plan was made."""
    path = Path(results) / "plan" / "plan.csv"
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return next((r for r in rows if r["experiment"] == experiment), rows[0] if rows else None)


def seq_len(study: dict[str, Any]) -> int:
    return int(study["data"]["max_seq_len"])


def _dtype_bytes(study: dict[str, Any], settings: dict[str, Any] | None = None) -> int:
    dtype = (settings or {}).get("dtype") or study["model"].get("dtype", "float32")
    if dtype not in BYTES:
        raise ValueError(f"model.dtype / training.dtype {dtype!r}: expected one of {sorted(BYTES)}")
    return BYTES[dtype]


def train_estimate(study: dict[str, Any], experiment: str, shape: Shape) -> tuple[float, float]:
    """(MB, minutes) one training run needs by the size rule (module docstring)."""
    s = cfg.experiment_settings(study, experiment)
    nbytes, seq, micro = (
        _dtype_bytes(study, s),
        seq_len(study),
        s["micro_batch_size"],
    )
    full = s["method"] == "full"
    weights = shape.params * nbytes * (4 if full else 1)  # + gradients and two AdamW moments
    per_layer = (2 * nbytes if s.get("grad_checkpoint") else 34 * nbytes / 2) * seq * micro
    activations = shape.layers * per_layer * shape.hidden + 2 * 4 * seq * micro * shape.vocab
    flops = (6 if full else 4) * shape.params * s["steps"] * s["batch_size"] * seq
    return (weights + activations) / 2**20, flops / FLOPS_PER_MIN


def _suite_items(study: dict[str, Any]) -> int:
    """Items over every suite: each suite's (or benchmark's) `n`, else the test split."""
    test = int(study["data"].get("split", {}).get("test", 0))
    total = 0
    for name, settings in study["evaluation"].get("suites", {}).items():
        nested = settings.values() if name == "benchmarks" else [settings]
        for one in nested:
            one = one if isinstance(one, dict) else {}
            total += int(one.get("n", test)) * max(len(one.get("tasks", [])), 1)
    return total


def evaluate_estimate(study: dict[str, Any], shape: Shape) -> tuple[float, float]:
    """(MB, minutes) evaluating one model needs by the size rule (module docstring)."""
    nbytes, seq = _dtype_bytes(study), seq_len(study)
    generation = study["evaluation"].get("generation", {})
    per_sequence = seq + int(generation.get("max_tokens", 256))
    cache = (
        2
        * shape.layers
        * shape.hidden
        * nbytes
        * per_sequence
        * int(generation.get("batch_size", 8))
    )
    flops = 2 * shape.params * _suite_items(study) * per_sequence
    return (shape.params * nbytes + cache) / 2**20, flops / FLOPS_PER_MIN


def estimate(
    study: dict[str, Any],
    rule: str,
    model_dir: str | None,
    results: str | Path,
    experiment: str | None,
) -> tuple[float, float]:
    """(MB beyond the baseline process, minutes of work) of one job, before headroom."""
    if rule not in MODEL_RULES or model_dir is None:
        return 0.0, 0.0
    shape = model_shape(str(model_dir))
    trained = [r.experiment for r in cfg.runs(study, include_baseline=False)]
    if rule == "plan":  # one dry run per arm in turn, then one evaluation probe
        arms = [train_estimate(study, e, shape) for e in dict.fromkeys(trained)]
        evaluation = evaluate_estimate(study, shape)
        return max(m for m, _ in [*arms, evaluation]), sum(t for _, t in arms) / max(
            len(trained), 1
        )
    if rule == "prepare_retention":  # generates answers with the base model
        retention = study["data"].get("retention", {})
        tokens = int(retention.get("n", 0)) * (seq_len(study) + int(retention.get("max_tokens", 0)))
        return evaluate_estimate(study, shape)[0], 2 * shape.params * tokens / FLOPS_PER_MIN
    row = plan_row(results, experiment or "")
    if rule == "train":
        mb, minutes = train_estimate(study, experiment, shape)
        if row and row["experiment"] == experiment:
            mb, minutes = float(row["peak_memory_gb"]) * 1024, float(row["est_min_per_run"])
        return mb, minutes
    mb, minutes = evaluate_estimate(study, shape)
    if row and row.get("est_eval_min_per_run"):
        minutes = float(row["est_eval_min_per_run"])
    return mb, minutes


def host_mb(study: dict[str, Any], rule: str, model_dir: str | None, device_mb: float) -> float:
    """Host memory: on CUDA the arrays live on the GPU and the host holds one weights copy
    while loading; on the CPU and Metal (unified memory) the host holds everything."""
    if backend() != "cuda" or rule not in GPU_RULES or model_dir is None:
        return device_mb
    return model_shape(str(model_dir)).params * _dtype_bytes(study) / 2**20


def _model_dir(input: Any) -> str | None:
    """The rule's base model dir; FileNotFoundError naming the input until it exists, which
    Snakemake takes as "evaluate once the input is made"."""
    model = getattr(input, "model", None)  # a Snakemake Namedlist: named inputs are attributes
    if model is None:
        return None
    if not Path(model, "config.json").is_file():
        raise FileNotFoundError(errno.ENOENT, "the base model is not made yet", str(model))
    return str(model)


def mem_mb(study: dict[str, Any], rule: str, results: str) -> Callable[..., int]:
    """The `mem_mb` resource of `rule` (a Snakemake callable: evaluated once its input exists)."""

    def resource(wildcards: Any, input: Any, attempt: int) -> int:
        model = _model_dir(input)
        device, _ = estimate(study, rule, model, results, wildcards.get("experiment"))
        needed = (BASELINE_MB + host_mb(study, rule, model, device)) * HEADROOM
        return int(math.ceil(needed * 2 ** (attempt - 1)))

    return resource


def runtime(study: dict[str, Any], rule: str, results: str) -> Callable[..., int]:
    """The `runtime` resource (minutes) of `rule`."""

    def resource(wildcards: Any, input: Any, attempt: int) -> int:
        _, minutes = estimate(study, rule, _model_dir(input), results, wildcards.get("experiment"))
        return int(math.ceil((minutes * HEADROOM + FIXED_MIN) * 2 ** (attempt - 1)))

    return resource


def gpus(rule: str) -> int:
    """GPUs for one job of `rule`: one for the rules that run the model, on a CUDA build."""
    return int(rule in GPU_RULES and backend() == "cuda")
