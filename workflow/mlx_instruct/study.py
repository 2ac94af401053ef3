"""What the Snakefile needs to know about a study, so that no logic hides in .smk files.

The Snakefile hands its `config` dict here. A study is one self-contained file: when
`--configfile` names one, it is the whole study; otherwise `config.yaml` is. `--config`
key=value overrides are merged on top of either.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from mlx_instruct import config as cfg
from mlx_instruct.io import write_text

DEFAULT_STUDY_FILE = "config.yaml"


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve_study(snakemake_config: dict[str, Any], root: Path) -> dict[str, Any]:
    """The validated study: the --configfile file, else config.yaml, plus --config overrides."""
    if "study" in snakemake_config:
        study = copy.deepcopy(snakemake_config)
        source = "the --configfile study"
    else:
        default = root / DEFAULT_STUDY_FILE
        study = _merge(yaml.safe_load(default.read_text(encoding="utf-8")), snakemake_config)
        source = str(default)
    return cfg.validate(study, source)


def write_resolved(study: dict[str, Any]) -> Path:
    """Save the resolved study beside its results (rewritten only when it changed)."""
    path = cfg.study_dir(study) / "config.resolved.yaml"
    text = yaml.safe_dump(study, sort_keys=False)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        write_text(path, text)
    return path


def suites(study: dict[str, Any]) -> list[str]:
    return list(study["evaluation"].get("suites", {}))


def run_dirs(study: dict[str, Any]) -> list[str]:
    return [f"runs/{run.experiment}/s{run.seed}" for run in cfg.runs(study, include_baseline=False)]


def eval_targets(study: dict[str, Any]) -> list[str]:
    return [
        f"evals/{run.experiment}/s{run.seed}/{suite}.jsonl"
        for run in cfg.runs(study)
        for suite in suites(study)
    ]


def is_baseline(study: dict[str, Any], experiment: str) -> bool:
    return cfg.resolve_method(study, experiment) == "none"


def replays_retention(study: dict[str, Any]) -> bool:
    """Whether some trained arm mixes in data/retention.jsonl (so the plan needs it too)."""
    return any(run.settings.get("retention_fraction") for run in cfg.runs(study, False))


def training_params(study: dict[str, Any], experiment: str, seed: int) -> str:
    """Everything that changes a training result, as one fingerprint (a rule param)."""
    settings = cfg.experiment_settings(study, experiment)
    settings.pop("seeds", None)
    if cfg.data_settings(study)["packing"]:  # keyed only when on: unpacked runs keep theirs
        settings["data.packing"] = True
    return cfg.fingerprint(
        {"settings": settings, "seed": int(seed), "study_seed": study.get("seed", 0)}
    )


def data_params(study: dict[str, Any]) -> str:
    data = copy.deepcopy(study["data"])
    data.pop("retention", None)
    data.pop("packing", None)  # how training batches the data, not the data
    quality = data.pop("quality", None) or {}  # only the toxicity screen changes the data
    data.update({f"quality.{k}": v for k, v in quality.items() if k.startswith("toxicity")})
    return cfg.fingerprint(
        {"data": data, "seed": study.get("seed", 0), "eval": study["evaluation"].get("suites", {})}
    )


def quality_params(study: dict[str, Any]) -> str:
    """The data_quality rule's fingerprint: the data it assesses and its own settings."""
    return cfg.fingerprint({"data": data_params(study), "quality": cfg.quality_settings(study)})


def retention_params(study: dict[str, Any]) -> str:
    return cfg.fingerprint(
        {"retention": study["data"].get("retention"), "seed": study.get("seed", 0)}
    )


def eval_params(study: dict[str, Any]) -> str:
    evaluation = study["evaluation"]
    return cfg.fingerprint(
        {
            "suites": evaluation.get("suites"),
            "generation": evaluation.get("generation"),
            "template": study["data"].get("template"),
        }
    )


def report_params(study: dict[str, Any]) -> str:
    return cfg.fingerprint(
        {"bootstrap": study["evaluation"].get("bootstrap"), "report": study.get("report")}
    )
