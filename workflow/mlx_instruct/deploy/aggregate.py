"""`python -m mlx_instruct.deploy aggregate`: the deployment stage's tidy table and contrasts.

deployment.parquet holds one row per item of every deployed model in the study's tidy
format, plus `variant` (fused / q8 / q4 / merge) and `source` (the run it came from):
- quality: the deployment suites of each quantized variant and of the merge; the fused
  model's rows are the run's own (results.parquet: fusing changes logits by ~1e-7, tests);
- speed and memory: each variant's profile (suite "profile");
- serving: the speculative-decoding and load-test rows (suites "speculative", "loadtest").
deployment_summary.csv is analysis.summary's table over the quality rows, with the pairs
"variant vs its fused source" and "merge vs each parent": the same paired BCa bootstrap,
improved/unchanged/regressed counts and columns as the study's summary.csv.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from mlx_instruct.analysis import stats, summary, tidy
from mlx_instruct.analysis.aggregate import write_csv, write_parquet
from mlx_instruct.config import baseline
from mlx_instruct.deploy import settings as deploy_lib

PERF_SUITES = ("profile", "speculative", "loadtest")


def _frame(path: Path, keys: dict[str, Any], **extra: Any) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (run the deployment rules first)")
    frame = tidy.eval_frame(path, keys)
    for column, value in extra.items():
        frame[column] = value
    return frame


def quality_rows(results: Path, config: dict[str, Any], study: pd.DataFrame) -> list[pd.DataFrame]:
    """Every deployed model's rows on the deployment suites, labelled by variant."""
    deploy = deploy_lib.settings(config)
    suites = deploy["suites"]
    fused, frames = [], []
    base = baseline(config)
    runs = {(base, 0)} | set(deploy_lib.exported(config))
    merge = deploy.get("merge")
    if merge:  # its parents are the references of the merge's contrasts
        runs |= {(p, deploy_lib.first_seed(config, p)) for p in merge["parents"]}
    for experiment, seed in sorted(runs):
        own = study[
            (study["experiment"] == experiment)
            & (study["seed"] == seed)
            & study["suite"].isin(suites)
        ]
        fused.append(own.assign(variant=deploy_lib.FUSED, source=experiment))
    for experiment, seed in deploy_lib.exported(config):
        keys = run_keys(config, experiment, seed)
        for variant in deploy_lib.quantized(config):
            folder = results / "deploy" / experiment / f"s{seed}" / variant / "evals"
            label = {**keys, "experiment": deploy_lib.evaluated_as(experiment, variant)}
            frames += [
                _frame(folder / f"{s}.jsonl", label, variant=variant, source=experiment)
                for s in suites
            ]
    if merge:
        keys = {"study": config["study"], "experiment": merge["name"], "method": "merge"}
        keys.update(rank=None, seed=0)
        folder = results / "deploy" / "merge" / merge["name"] / "evals"
        frames += [
            _frame(folder / f"{s}.jsonl", keys, variant="merge", source="+".join(merge["parents"]))
            for s in suites
        ]
    if deploy["n"] is not None and frames:  # the fused rows on the deployed models' items
        fused = [_on_items(frame, frames) for frame in fused]
    return fused + frames


ITEM = ["suite", "benchmark", "item_id", "metric"]


def _on_items(frame: pd.DataFrame, limited: list[pd.DataFrame]) -> pd.DataFrame:
    """frame's rows on the items the deployment.n-limited evaluations scored, so a variant's
    estimate and its fused source's are of the same items (the pairs need that anyway)."""
    items = pd.concat([f[ITEM] for f in limited]).drop_duplicates()
    return frame.merge(items, on=ITEM, how="inner")


def run_keys(config: dict, experiment: str, seed: int) -> dict[str, Any]:
    """A run's identifying columns, as the study's tidy table has them (tidy.run_keys)."""
    return next(
        keys
        for keys in tidy.run_keys(config)
        if keys["experiment"] == experiment and keys["seed"] == seed
    )


def perf_rows(results: Path, config: dict[str, Any]) -> list[pd.DataFrame]:
    """Profiles of every variant, then the speculative and load-test rows."""
    deploy = deploy_lib.settings(config)
    frames = []
    for experiment, seed in deploy_lib.exported(config):
        keys = run_keys(config, experiment, seed)
        for variant in deploy_lib.variants(config):
            path = results / "deploy" / experiment / f"s{seed}" / variant / "profile.jsonl"
            label = {**keys, "experiment": deploy_lib.evaluated_as(experiment, variant)}
            frames.append(_frame(path, label, variant=variant, source=experiment))
    exported = dict(deploy_lib.exported(config))
    for part in ("speculative", "loadtest"):
        experiment = deploy[part]["experiment"]
        keys = run_keys(config, experiment, exported[experiment])
        path = results / "deploy" / f"{part}.jsonl"
        frames.append(_frame(path, keys, variant=deploy_lib.FUSED, source=experiment))
    return frames


def pairs(config: dict[str, Any]) -> list[list[str]]:
    """Each quantized variant against its fused source; the merge against each parent."""
    deploy = deploy_lib.settings(config)
    found = [
        [experiment, deploy_lib.evaluated_as(experiment, variant)]
        for experiment, _ in deploy_lib.exported(config)
        for variant in deploy_lib.quantized(config)
    ]
    merge = deploy.get("merge")
    if merge:
        found += [[parent, merge["name"]] for parent in merge["parents"]]
    return found


def run(results: Path, config: dict[str, Any], log=sys.stdout) -> pd.DataFrame:
    study = pd.read_parquet(results / "results.parquet")
    quality = tidy.assemble(quality_rows(results, config, study))
    perf = tidy.assemble(perf_rows(results, config))
    table = tidy.assemble([quality, perf])
    write_parquet(table, results / deploy_lib.DEPLOY_TABLE)
    found = summary.summarize(
        quality.drop(columns=["variant", "source"]),
        baseline=baseline(config),
        pairs=pairs(config),
        boot=stats.Bootstrap.from_config(config),
        study=config["study"],
    )
    write_csv(found, results / deploy_lib.DEPLOY_SUMMARY)
    print(
        f"deploy aggregate: {len(quality)} quality and {len(perf)} speed/serving rows of "
        f"{table['experiment'].nunique()} models; {len(found)} summary rows",
        file=log,
    )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlx_instruct.deploy aggregate")
    parser.add_argument("--config", default=None, help="resolved study YAML")
    parser.add_argument("--results", required=True, help="the study's results folder")
    args = parser.parse_args(argv)
    results = Path(args.results)
    try:
        config = tidy.study_config(results, args.config)
        if deploy_lib.settings(config) is None:
            raise ValueError(f"{args.config or results}: the study has no deployment section")
        run(results, config)
    except (FileNotFoundError, ValueError, tidy.ResultsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
