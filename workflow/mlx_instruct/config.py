"""Load and validate a study config; resolve experiments into concrete training runs.

A study is one self-contained YAML file. The JSON schema (workflow/schemas) rejects bad
configs before any compute, and every error names the key path and the file.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "workflow" / "schemas" / "config.schema.yaml"
TUNED_METHODS = ("lora", "dora", "full", "hybrid", "qlora")


class ConfigError(ValueError):
    """A study config that cannot run; the message names the file and key path."""


@dataclass(frozen=True)
class Run:
    """One training run: an experiment at one seed, with its fully resolved settings."""

    experiment: str
    seed: int
    settings: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.experiment}/s{self.seed}"

    @property
    def method(self) -> str:
        return self.settings["method"]

    @property
    def rank(self) -> int | None:
        return (
            self.settings.get("rank")
            if self.method in ("lora", "dora", "hybrid", "qlora")
            else None
        )


def load_schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _key_path(error: jsonschema.ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "<top level>"


def validate(config: dict[str, Any], source: str = "<config>") -> dict[str, Any]:
    """Validate against the schema and cross-references; return the config unchanged."""
    if not isinstance(config, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(config).__name__}"
        )
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_key_path(e)}: {e.message}" for e in errors[:10]]
        raise ConfigError(f"{source}: invalid study config\n" + "\n".join(lines))
    experiments = config["experiments"]
    baselines = [
        name for name, exp in experiments.items() if resolve_method(config, name) == "none"
    ]
    if len(baselines) != 1:
        raise ConfigError(
            f"{source}: experiments: expected exactly one untuned baseline (method: none), "
            f"found {baselines or 'none'}"
        )
    for index, pair in enumerate(config.get("report", {}).get("pairs", [])):
        for name in pair:
            if name not in experiments:
                raise ConfigError(
                    f"{source}: report.pairs[{index}]: unknown experiment {name!r}; "
                    f"known: {sorted(experiments)}"
                )
    for name in experiments:
        settings = experiment_settings(config, name)
        if settings["method"] != "none" and settings["batch_size"] % settings["micro_batch_size"]:
            raise ConfigError(
                f"{source}: experiments.{name}: batch_size {settings['batch_size']} is not a "
                f"multiple of micro_batch_size {settings['micro_batch_size']}"
            )
        if settings.get("retention_fraction") and "retention" not in config["data"]:
            raise ConfigError(
                f"{source}: experiments.{name}.retention_fraction needs a data.retention source"
            )
    from mlx_instruct.resources import ResourceError, check_study

    try:
        check_study(config)
    except ResourceError as error:
        raise ConfigError(f"{source}: {error}") from None
    return config


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and validate one study file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such study config")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    return validate(config, str(path))


DEFAULT_TRAINING: dict[str, Any] = {
    "method": "lora",
    "rank": 32,
    "alpha": 16,
    "dropout": 0.0,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "num_layers": -1,
    "learning_rate": 2e-4,
    "schedule": "cosine",
    "warmup_fraction": 0.05,
    "min_lr_ratio": 0.0,
    "batch_size": 32,
    "micro_batch_size": 4,
    "steps": 200,
    "betas": [0.9, 0.98],
    "eps": 1e-8,
    "weight_decay": 0.01,
    "grad_clip": 1.0,
    "grad_checkpoint": False,
    "dtype": "float32",
    "eval_every": 50,
    "val_batches": 8,
    "checkpoint_every": 50,
    "sample_every": 100,
    "sample_max_tokens": 64,
    "early_stop_patience": 0,
    "divergence_factor": 4.0,
    "retention_fraction": 0.0,
    "seeds": [0],
}


def resolve_method(config: dict[str, Any], experiment: str) -> str:
    return config["experiments"][experiment].get("method", config["training"].get("method", "lora"))


def experiment_settings(config: dict[str, Any], experiment: str) -> dict[str, Any]:
    """Defaults <- study training section <- the experiment's overrides."""
    settings = copy.deepcopy(DEFAULT_TRAINING)
    settings.update(copy.deepcopy(config.get("training", {})))
    settings.update(copy.deepcopy(config["experiments"][experiment]))
    return settings


def runs(config: dict[str, Any], include_baseline: bool = True) -> list[Run]:
    """Every (experiment, seed) the study trains (the baseline runs at seed 0 only)."""
    resolved = []
    for name in config["experiments"]:
        settings = experiment_settings(config, name)
        if settings["method"] == "none":
            if include_baseline:
                resolved.append(Run(name, 0, settings))
            continue
        resolved.extend(Run(name, seed, settings) for seed in settings["seeds"])
    return resolved


def baseline(config: dict[str, Any]) -> str:
    return next(name for name in config["experiments"] if resolve_method(config, name) == "none")


def fingerprint(obj: Any) -> str:
    """A short stable hash of a JSON-able value: lets Snakemake rerun only what changed."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def study_dir(config: dict[str, Any]) -> Path:
    return Path(config.get("results_dir", "results")) / config["study"]
