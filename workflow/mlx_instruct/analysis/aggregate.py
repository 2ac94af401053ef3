"""`python -m mlx_instruct.analysis aggregate`: every tidy table and the bootstrap summary of one study.

Writes (under --out, atomically): results.parquet, summary.csv, training_curves.parquet,
layer_norms.parquet, samples.parquet, generations.parquet, runs.parquet, timing.csv and,
where adapters / full weights exist, lora_subspace.parquet, delta_ranks.parquet and
delta_hist.parquet.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from mlx_instruct.analysis import lora_geometry as geo
from mlx_instruct.analysis import stats, summary, tidy, timing
from mlx_instruct.config import METHODS
from mlx_instruct.io import atomic_path


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def rank_sweep(config: dict[str, Any]) -> list[tuple[str, int]]:
    """(experiment, rank) of the plain LoRA experiments that differ only in rank, by rank."""
    meta = tidy.experiments(config)
    sweep = []
    for row in meta.itertuples():
        overrides = set(config["experiments"][row.experiment]) - {"rank", "seeds", "method"}
        if row.method == "lora" and not row.retention_fraction and not overrides:
            sweep.append((row.experiment, int(row.rank)))
    return sorted(sweep, key=lambda item: item[1])


def _update_geometry(
    results: Path, meta: pd.DataFrame, log, max_elements: float
) -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    """Effective ranks and entry histograms of each trained run's update (delta W)."""

    base_dir = results / "models" / "base"
    ranks, hists = [], []
    for row in meta.itertuples():
        if row.method not in METHODS:
            continue
        seeds = row.seeds[:1] if row.method == "full" else row.seeds  # full: costly, one seed
        for seed in seeds:
            run_dir = results / "runs" / row.experiment / f"s{seed}"
            keys = {
                "experiment": row.experiment,
                "method": row.method,
                "rank": row.rank,
                "seed": int(seed),
            }
            try:
                if row.method == "full" and not base_dir.is_dir():
                    raise FileNotFoundError(f"{base_dir}: no base weights")
                started = time.perf_counter()
                rank_rows, hist = geo.update_geometry(run_dir, row.method, base_dir, max_elements)
                ranks.append(rank_rows.assign(**keys))
                hists.append(hist.assign(**keys))
                print(
                    f"aggregate: geometry of {row.experiment}/s{seed}: {len(rank_rows)} matrices in {time.perf_counter() - started:.1f}s",
                    file=log,
                )
            except (FileNotFoundError, KeyError, ValueError) as error:
                print(
                    f"aggregate: WARNING: no weight geometry for {row.experiment}/s{seed}: {error}",
                    file=log,
                )
    return ranks, hists


def _subspaces(results: Path, config: dict[str, Any], meta: pd.DataFrame) -> list[pd.DataFrame]:
    """Subspace similarity between every two ranks of the sweep (first seed), and between
    two seeds of one rank: how much of the subspace is seed noise."""
    sweep = rank_sweep(config)
    pairs = [((a, ra, 0), (b, rb, 0)) for (a, ra), (b, rb) in itertools.combinations(sweep, 2)]
    for name, rank in sweep:
        seeds = meta.set_index("experiment").loc[name, "seeds"]
        if len(seeds) > 1:
            pairs.append(((name, rank, int(seeds[0])), (name, rank, int(seeds[1]))))
    subspace = []
    for (a, ra, sa), (b, rb, sb) in pairs:
        dir_a, dir_b = (results / "runs" / e / f"s{s}" for e, s in ((a, sa), (b, sb)))
        if (dir_a / "adapters.safetensors").is_file() and (
            dir_b / "adapters.safetensors"
        ).is_file():
            grid = geo.subspace_grid(dir_a, dir_b)
            subspace.append(
                grid.assign(
                    experiment_a=a,
                    rank_a=ra,
                    seed_a=sa,
                    experiment_b=b,
                    rank_b=rb,
                    seed_b=sb,
                    pair=f"{a}/s{sa} vs {b}/s{sb}",
                )
            )
    return subspace


def geometry(
    results: Path, config: dict[str, Any], log=sys.stderr, max_elements: float = 1e9
) -> dict[str, pd.DataFrame]:
    """Subspace similarity across ranks (and seeds), effective ranks, delta histograms."""
    meta = tidy.experiments(config)
    ranks, hists = _update_geometry(results, meta, log, max_elements)
    subspace = _subspaces(results, config, meta)
    out = {}
    for name, frames in (
        ("delta_ranks", ranks),
        ("delta_hist", hists),
        ("lora_subspace", subspace),
    ):
        if frames:
            frame = pd.concat(frames, ignore_index=True)
            if "rank" in frame:
                frame["rank"] = pd.array(frame["rank"], dtype="Int64")
            out[name] = frame
    return out


def run(
    results: str | Path,
    config: dict[str, Any],
    out: str | Path | None = None,
    *,
    with_geometry: bool = True,
    geometry_budget: float = 1e9,
    workers: int = 1,
    log=sys.stderr,
) -> dict[str, Path]:
    """Build and write every table; return {name: path}."""
    results = Path(results)
    out = Path(out or results)
    started = time.perf_counter()
    written: dict[str, Path] = {}
    table = tidy.results_table(results, config, log=log)
    if table.empty:
        raise tidy.ResultsError(
            f"{results}/evals: no evaluation rows for study {config['study']!r}"
        )
    write_parquet(table, out / "results.parquet")
    written["results"] = out / "results.parquet"
    print(
        f"aggregate: {len(table)} observations, {table['experiment'].nunique()} experiments, {table['suite'].nunique()} suites",
        file=log,
    )
    boot = stats.Bootstrap.from_config(config)
    table_summary = summary.summarize(
        table,
        baseline=tidy.experiments(config).query("is_baseline")["experiment"].iloc[0],
        pairs=config.get("report", {}).get("pairs", []),
        boot=boot,
        study=config["study"],
        workers=workers,
    )
    write_csv(table_summary, out / "summary.csv")
    written["summary"] = out / "summary.csv"
    print(
        f"aggregate: summary of {len(table_summary)} estimates ({boot.resamples} BCa resamples each)",
        file=log,
    )
    extras = {
        "training_curves": tidy.training_curves(results, config),
        "layer_norms": tidy.layer_norms(results, config),
        "samples": tidy.samples(results, config),
        "generations": tidy.generations(results, config),
        "runs": tidy.runs_table(results, config),
        "omitted": tidy.omitted(results, config),
    }
    if with_geometry:
        extras.update(geometry(results, config, log=log, max_elements=geometry_budget))
    for name, frame in extras.items():
        write_parquet(frame, out / f"{name}.parquet")
        written[name] = out / f"{name}.parquet"
    times = timing.timing_table(results)
    write_csv(times, out / "timing.csv")
    written["timing"] = out / "timing.csv"
    print(f"aggregate: done in {time.perf_counter() - started:.1f}s -> {out}", file=log)
    return written
