"""The study's `deployment` section: defaults, cross-checks and what the stage produces.

One place knows which models are exported, which variants exist and where each file lives,
so the rules (workflow/rules/deploy.smk), the aggregate and the report agree. Each exported
run is the first seed of its experiment: deployment asks what a trained model costs to run,
not how training seeds vary (the study's own contrasts cover that).
"""

from __future__ import annotations

import copy
from typing import Any

from mlx_instruct.config import ConfigError, experiment_settings

DEPLOY_TABLE = "deployment.parquet"  # tidy rows of every variant (deploy/aggregate.py)
DEPLOY_SUMMARY = "deployment_summary.csv"  # their estimates and contrasts, summary.csv's columns
FUSED = "fused"  # the run merged into the base: quality is the run's own evaluation
DEFAULTS: dict[str, Any] = {
    "quantize": [8, 4],
    "group_size": 64,
    "suites": ["adherence", "benchmarks"],
    "n": None,  # every item of each suite
    "dequantize": False,
    "profile": {"n": 8, "max_tokens": 32, "repeats": 2},
    "speculative": {"num_draft": [2, 4], "max_tokens": 48, "n": 8},
    "loadtest": {"concurrency": [1, 2, 4], "requests": 8, "max_tokens": 32, "timeout_s": 120},
}
MERGEABLE = ("lora",)  # rank-stacking merges plain LoRA adapters (deploy/merge.py)


def settings(config: dict[str, Any]) -> dict[str, Any] | None:
    """The deployment section over DEFAULTS (None when the study deploys nothing)."""
    section = config.get("deployment")
    if section is None:
        return None
    resolved = copy.deepcopy(DEFAULTS)
    for key, value in section.items():
        if isinstance(value, dict) and isinstance(resolved.get(key), dict):
            resolved[key] = {**resolved[key], **value}
        else:
            resolved[key] = copy.deepcopy(value)
    resolved.setdefault("experiments", list(config["experiments"]))
    generation = config.get("evaluation", {}).get("generation", {})
    if "batch_size" in generation:  # else the profile CLI's default, the evaluators' own
        resolved["profile"].setdefault("batch_size", generation["batch_size"])
    known = [
        e for e in resolved["experiments"] if e in config["experiments"]
    ]  # check() names the rest
    trained = [e for e in known if _method(config, e) != "none"]
    first = trained[0] if trained else resolved["experiments"][0]
    for part in ("speculative", "loadtest"):
        resolved[part].setdefault("experiment", first)
    resolved["speculative"].setdefault("draft_bits", min(resolved["quantize"], default=None))
    return resolved


def _method(config: dict[str, Any], experiment: str) -> str:
    return experiment_settings(config, experiment)["method"]


def check(config: dict[str, Any], source: str) -> None:
    """Cross-references the schema cannot express; each error names the key."""
    deploy = settings(config)
    if deploy is None:
        return
    experiments, suites = config["experiments"], config["evaluation"].get("suites", {})

    def known(key: str, name: str) -> None:
        if name not in experiments:
            raise ConfigError(
                f"{source}: deployment.{key}: unknown experiment {name!r}; known: {sorted(experiments)}"
            )

    for name in deploy["experiments"]:
        known("experiments", name)
    for suite in deploy["suites"]:
        if suite not in suites or suite == "efficiency":
            raise ConfigError(
                f"{source}: deployment.suites: {suite!r} is not a quality suite of "
                f"evaluation.suites ({sorted(s for s in suites if s != 'efficiency')})"
            )
    for part in ("speculative", "loadtest"):
        name = deploy[part]["experiment"]
        if name not in deploy["experiments"]:
            raise ConfigError(
                f"{source}: deployment.{part}.experiment: {name!r} is not exported; "
                f"deployment.experiments: {deploy['experiments']}"
            )
    if deploy["speculative"]["draft_bits"] not in deploy["quantize"]:
        raise ConfigError(
            f"{source}: deployment.speculative.draft_bits: "
            f"{deploy['speculative']['draft_bits']!r} is not in deployment.quantize "
            f"{deploy['quantize']} (the draft is that quantized variant of the target)"
        )
    merge = deploy.get("merge")
    if merge:
        if len(merge["weights"]) != len(merge["parents"]):
            raise ConfigError(
                f"{source}: deployment.merge.weights: {len(merge['weights'])} weights for "
                f"{len(merge['parents'])} parents"
            )
        if merge["name"] in experiments:
            raise ConfigError(
                f"{source}: deployment.merge.name: {merge['name']!r} is already an experiment"
            )
        for parent in merge["parents"]:
            known("merge.parents", parent)
            if _method(config, parent) not in MERGEABLE:
                raise ConfigError(
                    f"{source}: deployment.merge.parents: {parent!r} is a "
                    f"{_method(config, parent)} run; only {MERGEABLE} adapters merge"
                )


def exported(config: dict[str, Any]) -> list[tuple[str, int]]:
    """(experiment, seed) of every exported model: the first seed of each."""
    deploy = settings(config)
    if deploy is None:
        return []
    return [(name, first_seed(config, name)) for name in deploy["experiments"]]


def first_seed(config: dict[str, Any], experiment: str) -> int:
    found = experiment_settings(config, experiment)
    return 0 if found["method"] == "none" else int(found["seeds"][0])


def served(config: dict[str, Any], part: str) -> str:
    """`<experiment>/s<seed>` of the model the speculative or load-test rule runs."""
    experiment = settings(config)[part]["experiment"]
    return f"{experiment}/s{dict(exported(config))[experiment]}"


def variants(config: dict[str, Any]) -> list[str]:
    deploy = settings(config) or {"quantize": []}
    return [FUSED, *(variant_name(bits) for bits in deploy["quantize"])]


def quantized(config: dict[str, Any]) -> list[str]:
    return [v for v in variants(config) if v != FUSED]


def variant_name(bits: int) -> str:
    return f"q{bits}"


def evaluated_as(experiment: str, variant: str) -> str:
    """The experiment name a variant's evaluation is filed under in the study's results: the
    fused model is the run itself (the same weights up to rounding), a quantized one its own arm."""
    return experiment if variant == FUSED else f"{experiment}-{variant}"


def targets(config: dict[str, Any]) -> list[str]:
    """Every file of the stage, relative to the study's results folder."""
    deploy = settings(config)
    if deploy is None:
        return []
    files = []
    for experiment, seed in exported(config):
        folder = f"deploy/{experiment}/s{seed}"
        files.append(f"{folder}/export.json")
        for variant in variants(config):
            files += [f"{folder}/{variant}/profile.jsonl", f"{folder}/{variant}/README.md"]
            if variant != FUSED:
                files += [f"{folder}/{variant}/evals/{s}.jsonl" for s in deploy["suites"]]
    merge = deploy.get("merge")
    if merge:
        files += [f"deploy/merge/{merge['name']}/evals/{s}.jsonl" for s in deploy["suites"]]
    files += ["deploy/speculative.jsonl", "deploy/loadtest.jsonl"]
    return files


def eval_flags(config: dict[str, Any], quantized_variant: bool) -> str:
    """The evaluate CLI's flags for a deployed model: the item cap and, for a quantized
    variant, scoring with its dequantized weights."""
    deploy = settings(config)
    flags = [] if deploy["n"] is None else [f"--limit {deploy['n']}"]
    if quantized_variant and deploy["dequantize"]:
        flags.append("--dequantize")
    return " ".join(flags)


def profile_flags(config: dict[str, Any]) -> str:
    """The profile CLI's counts: deployment.profile over DEFAULTS."""
    profile = settings(config)["profile"]
    flags = {
        "n": "--n",
        "max_tokens": "--max-tokens",
        "repeats": "--repeats",
        "batch_size": "--batch-size",
    }
    return " ".join(f"{flag} {profile[key]}" for key, flag in flags.items() if key in profile)


def tables(config: dict[str, Any]) -> list[str]:
    """The aggregate's two tables, which the figures, tables and report read (if deployed)."""
    return [DEPLOY_TABLE, DEPLOY_SUMMARY] if settings(config) is not None else []


def outputs(config: dict[str, Any]) -> list[str]:
    """What `snakemake` builds for the stage: its files and the aggregate's two tables."""
    return [*targets(config), *tables(config)]
