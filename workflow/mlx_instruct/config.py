"""Load and validate a study config; resolve experiments into concrete training runs.

A study is one self-contained YAML file. The JSON schema (workflow/schemas) rejects bad
configs before any compute, and every error names the key path and the file.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "workflow" / "schemas" / "config.schema.yaml"
# The training methods (the schema's `method` enum adds "none", the untuned base). Here, not
# in train.methods, so the analysis reads them without loading MLX.
ADAPTER_METHODS = ("lora", "dora", "hybrid", "qlora")
METHODS = (*ADAPTER_METHODS, "full")


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
        return self.settings.get("rank") if self.method in ADAPTER_METHODS else None

    @property
    def training(self) -> TrainingSettings:
        """The typed settings (`settings` stays the plain dict other stages read)."""
        return TrainingSettings.from_dict(self.settings)


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
    from mlx_instruct.deploy.settings import check as check_deployment
    from mlx_instruct.resources import ResourceError, check_study

    check_deployment(config, source)

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


@dataclass(frozen=True)
class TrainingSettings:
    """One run's training settings, typed and complete (as mlx_lm's `TrainingArgs`).

    Built once per run from the resolved settings (`Run.training`, `from_dict`) and passed
    through the training code, so a default lives here and nowhere else, and a misspelt
    key is an error rather than a silent default. The field defaults are the study
    defaults (`DEFAULT_TRAINING` is derived from them).
    """

    # what is trained
    method: str = "lora"
    rank: int = 32
    alpha: float = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = (
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
    )  # fmt: skip
    num_layers: int = -1
    # the learning-rate schedule
    learning_rate: float = 2e-4
    schedule: str = "cosine"
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.0
    # batches and length
    batch_size: int = 32
    micro_batch_size: int = 4
    steps: int = 200
    # AdamW and clipping
    betas: tuple[float, ...] = (0.9, 0.98)
    eps: float = 1e-8
    weight_decay: float = 0.01
    grad_clip: float | None = 1.0
    # compute
    grad_checkpoint: bool = False
    dtype: str = "float32"
    # validation, checkpoints and samples, every so many steps
    eval_every: int = 50
    val_batches: int = 8
    checkpoint_every: int = 50
    sample_every: int = 100
    sample_max_tokens: int = 64
    # guards
    early_stop_patience: int = 0
    divergence_factor: float = 4.0
    # data mix and seeds
    retention_fraction: float = 0.0
    seeds: tuple[int, ...] = (0,)
    # Not in DEFAULT_TRAINING (a run's settings carry them only where a study sets them), so
    # the fingerprints of runs that leave them out stay as they were.
    processes: int = 1
    quantize_bits: int = 4
    train_norms: bool = True
    # full: what the optimizer is and which weights beyond the blocks train (docs/mistral-7b.md)
    optimizer: str = "adamw"
    train_embeddings: bool = False
    weight_delta: bool = True
    # the order of the micro-batches: shuffled (mlx_lm's), or a curriculum, easy to hard by
    # token length or by the untuned model's loss (train.batching.ORDERS)
    data_order: str = "shuffled"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            cast = _CASTS[f.type]
            if value is not None:
                object.__setattr__(self, f.name, cast(value))

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> TrainingSettings:
        """The typed settings of a resolved settings dict; an unknown key is a ConfigError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(f"training: unknown setting(s) {unknown}; known: {sorted(known)}")
        return cls(**settings)

    @classmethod
    def of(cls, settings: TrainingSettings | Mapping[str, Any]) -> TrainingSettings:
        """`settings` as the typed object (a dict, as benchmarks pass, is converted once)."""
        return settings if isinstance(settings, cls) else cls.from_dict(settings)

    @property
    def accumulation(self) -> int:
        """Micro-batches per optimizer step."""
        return self.batch_size // self.micro_batch_size


_CASTS: dict[str, Any] = {
    "str": str,
    "int": int,
    "float": float,
    "float | None": float,
    "bool": bool,
    "tuple[str, ...]": lambda v: tuple(str(x) for x in v),
    "tuple[float, ...]": lambda v: tuple(float(x) for x in v),
    "tuple[int, ...]": lambda v: tuple(int(x) for x in v),
}
_UNLISTED = (
    "processes", "quantize_bits", "train_norms", "optimizer", "train_embeddings", "weight_delta",
    "data_order",
)  # fmt: skip
DEFAULT_TRAINING: dict[str, Any] = {
    f.name: list(f.default) if isinstance(f.default, tuple) else f.default
    for f in fields(TrainingSettings)
    if f.name not in _UNLISTED
}


# The data section's defaults (data, train and evaluate stages all read them from here).
DEFAULT_DATA: dict[str, Any] = {
    "template": "chat",
    "max_seq_len": 1024,
    "on_too_long": "drop",
    "near_duplicate_threshold": 0.9,
    "packing": False,
}


def data_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The study's data section over `DEFAULT_DATA`."""
    return {**DEFAULT_DATA, **(config.get("data") or {})}


# data.quality: the section 9.2 framework (docs/data-quality.md); the data stage and the
# data_quality rule read it from here.
DEFAULT_QUALITY: dict[str, Any] = {
    "toxicity": "flag",
    "toxicity_threshold": 0.5,
    "embed_max": 300,
    "clusters": 8,
    "over_represented": 2.0,
}


def quality_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The study's data.quality over `DEFAULT_QUALITY`; a bad value is a ConfigError naming
    the key (the schema checks files; this also guards configs built in code)."""
    settings = {**DEFAULT_QUALITY, **((config.get("data") or {}).get("quality") or {})}
    if settings["toxicity"] not in ("flag", "drop"):
        raise ConfigError(
            f"data.quality.toxicity: expected 'flag' or 'drop', got {settings['toxicity']!r}"
        )
    if not 0 < float(settings["toxicity_threshold"]) < 1:
        raise ConfigError("data.quality.toxicity_threshold: expected a number in (0, 1)")
    if int(settings["embed_max"]) < 0 or int(settings["clusters"]) < 2:
        raise ConfigError("data.quality.embed_max must be >= 0 and data.quality.clusters >= 2")
    if float(settings["over_represented"]) <= 1:
        raise ConfigError("data.quality.over_represented: expected a factor > 1")
    return settings


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
