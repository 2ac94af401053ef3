"""`mlx-instruct plan <study.yaml>`: dry-run every trained arm of a study before compute.

    mlx-instruct plan configs/mistral-7b.yaml [--results DIR] [--out FILE] [--usable-gb GB]

Where the base model or the data are missing, asks Snakemake for them (the rules are the one
definition of how inputs are made; under the `plan` rule they exist and nothing runs). Then
runs `python -m mlx_instruct.train ... --dry-run` once per distinct training shape (arms
that differ only in settings that cannot change memory or step time share one
measurement), each in its own process so each peak-memory figure is that shape's alone, and
`python -m mlx_instruct.plan_eval` once for what evaluating one model costs here. It prints
one row per arm (trained parameters, peak memory against the machine's usable memory, step
time, estimated training and evaluation minutes per run and for all its seeds), the
evaluation minutes per suite, per model and for all models (the base included), the
study's total, and a line starting with "WARNING:" on stderr for every arm that does not
fit or leaves less than 10% margin. The table is written to results/<study>/plan/plan.csv
and plan.md, with plan.json saying where and with what it was measured.

Exit status: 0 every arm fits (possibly tight: warned); 1 a preparation step or a dry run
failed (its output's tail is printed); 2 a config error (one line); 3 an arm does not fit.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlx_instruct import config as cfg
from mlx_instruct import plan_eval
from mlx_instruct.io import write_json, write_text
from mlx_instruct.study import replays_retention

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_NO_FIT = 0, 1, 2, 3
MARGIN = 0.10  # an arm whose peak leaves less than this share of usable memory is "tight"
COLUMNS = (
    "experiment", "method", "rank", "seeds", "trainable_params", "trainable_pct",
    "peak_memory_gb", "usable_gb", "fits", "step_s", "tokens_per_s",
    "est_min_per_run", "est_min_all_seeds", "measured_as",
    "est_eval_min_per_run", "est_eval_min_all_seeds",
)  # fmt: skip
# Training settings that cannot change a dry run's peak memory or step time, so arms that
# differ only in these share one measurement: optimiser hyper-parameter values (not the
# optimiser), the schedule, LoRA's alpha (a scale), seeds, the cadence of validation,
# checkpoints and samples (outside the timed step), the data mix and order (the dry run times
# the longest micro-batches, whose length max_seq_len bounds; the mix's mean length may
# differ a little) and steps (the reused estimate is rescaled by steps). Every other setting,
# and any setting added later, splits shapes: a new key is assumed to matter until shown not to.
SHAPE_FREE = frozenset({
    "seeds", "learning_rate", "schedule", "warmup_fraction", "min_lr_ratio", "betas", "eps",
    "weight_decay", "alpha", "eval_every", "val_batches", "checkpoint_every", "sample_every",
    "sample_max_tokens", "early_stop_patience", "divergence_factor", "retention_fraction",
    "data_order", "steps",
})  # fmt: skip
SCOPE_NOTE = (
    "training estimates count optimizer steps only (the dry run's step on the longest "
    "batches, scaled by mean length), not validation, samples, checkpoints or compilation"
)


class PlanError(RuntimeError):
    """A preparation step or a dry run failed; the message carries its output's tail."""


@dataclass(frozen=True)
class Budget:
    """How much memory one training process may use here, and where the number comes from."""

    gb: float | None
    source: str
    hint: str  # what to do when an arm does not fit


def usable_memory() -> Budget:
    """The memory an MLX process may use on this machine's default device.

    Metal: the GPU's recommended working set (about 3/4 of unified memory by default).
    CUDA: the GPU's total memory, where this MLX reports it. CPU: the system RAM.
    """
    import mlx.core as mx

    from mlx_instruct.provenance import memory_gb

    shrink = "lower micro_batch_size, turn on grad_checkpoint, or choose a lighter method"
    if mx.metal.is_available():
        info = mx.metal.device_info()
        limit = info.get("max_recommended_working_set_size")
        if limit:
            return Budget(
                round(int(limit) / 1e9, 2),
                f"Metal recommended working set of {int(info.get('memory_size', 0)) / 1e9:.0f} GB "
                "unified memory",
                f"{shrink}, or raise the GPU's wired limit with "
                "`sudo sysctl iogpu.wired_limit_mb=<MB>` (leave the system some memory)",
            )
    if mx.cuda.is_available():
        try:
            total = mx.device_info(mx.gpu).get("total_memory")
        except (AttributeError, RuntimeError, ValueError):
            total = None
        if total:
            return Budget(round(int(total) / 1e9, 2), "CUDA GPU total memory", shrink)
        ram = memory_gb()
        return Budget(ram, "system RAM (this MLX reports no CUDA GPU memory)", shrink)
    return Budget(memory_gb(), "system RAM (CPU device)", shrink)


def _run(command: list[str], *, capture: bool) -> None:
    """Run one stage CLI; raise PlanError with its output's tail if it fails."""
    print("+ " + " ".join(command), file=sys.stderr, flush=True)
    done = subprocess.run(
        command,
        stdout=subprocess.PIPE if capture else sys.stderr,
        stderr=subprocess.STDOUT if capture else None,
        text=True,
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout or "").strip().splitlines()[-15:])
        raise PlanError(f"exit status {done.returncode}: {' '.join(command[2:5])}\n{tail}")


def missing_inputs(study: dict[str, Any], results: Path) -> list[Path]:
    """The rule outputs the plan needs that are not there yet (Snakemake targets)."""
    model, data = results / "models" / "base", results / "data"
    wanted = [] if (model / "config.json").is_file() else [model]
    wanted += [data / f"{split}.jsonl" for split in ("train", "valid", "test")]
    if replays_retention(study):
        wanted.append(data / "retention.jsonl")
    return [path for path in wanted if path == model or not path.is_file()]


def ensure_inputs(study: dict[str, Any], config_path: Path, results: Path) -> tuple[Path, Path]:
    """The base model and data dirs; what is missing is asked of Snakemake, so the rules stay
    the one definition of how inputs are made (under the `plan` rule nothing is missing)."""
    model, data = results / "models" / "base", results / "data"
    targets = missing_inputs(study, results)
    if not targets:
        print(f"plan: reusing the base model and data under {results}", file=sys.stderr)
        return model, data
    snakefile = Path(__file__).resolve().parents[2] / "Snakefile"
    if not snakefile.is_file():
        raise PlanError(f"{snakefile}: not found; make {targets[0]} first")
    if results.name != study["study"]:
        raise PlanError(
            f"--results {results}: the workflow writes study {study['study']!r} under "
            f"<results_dir>/{study['study']}; make {targets[0]} there first"
        )
    parent = results.resolve().parent
    # the targets go first: --config takes every later word as another key=value
    _run([sys.executable, "-m", "snakemake",
          *(str(parent / results.name / t.relative_to(results)) for t in targets),
          "--cores", "1", "--snakefile", str(snakefile),
          "--configfile", str(config_path.resolve()), "--config", f"results_dir={parent}"],
         capture=False)  # fmt: skip
    return model, data


def dry_run(
    config_path: Path, experiment: str, seed: int, model: Path, data: Path, out: Path
) -> dict[str, Any]:
    """One arm's dry_run.json, measured in a fresh process (a clean peak-memory counter)."""
    _run([sys.executable, "-m", "mlx_instruct.train", "--config", str(config_path),
          "--experiment", experiment, "--seed", str(seed), "--model", str(model),
          "--data", str(data), "--out", str(out), "--dry-run", "--no-progress"],
         capture=True)  # fmt: skip
    return json.loads((out / "dry_run.json").read_text(encoding="utf-8"))


def row_for(
    experiment: str, settings: dict[str, Any], d: dict[str, Any], budget: Budget
) -> dict[str, Any]:
    """One table row from an arm's settings and its dry-run measurements."""
    seeds = len(settings["seeds"])
    peak = float(d["peak_memory_gb"])
    if budget.gb is None:
        fits = "?"
    elif peak > budget.gb:
        fits = "NO"
    else:
        fits = "tight" if peak > budget.gb * (1 - MARGIN) else "yes"
    per_run = float(d["estimated_train_s"]) / 60
    method = settings["method"]
    return {
        "experiment": experiment,
        "method": method,
        "rank": settings.get("rank") if method in cfg.ADAPTER_METHODS else "",
        "seeds": seeds,
        "trainable_params": int(d["trainable_params"]),
        "trainable_pct": round(100 * d["trainable_params"] / max(d["total_params"], 1), 3),
        "peak_memory_gb": round(peak, 3),
        "usable_gb": budget.gb if budget.gb is not None else "",
        "fits": fits,
        "step_s": round(float(d["step_s"]), 4),
        "tokens_per_s": round(float(d["tokens_per_s"])),
        "est_min_per_run": round(per_run, 2),
        "est_min_all_seeds": round(per_run * seeds, 2),
    }


def shape_key(settings: dict[str, Any]) -> str:
    """What a dry run's memory and step time depend on (every setting not in SHAPE_FREE)."""
    shape = {k: v for k, v in settings.items() if k not in SHAPE_FREE}
    return json.dumps(shape, sort_keys=True, default=str)


def measure(
    study: dict[str, Any], config_path: Path, results: Path, budget: Budget
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every trained experiment's row (first seed; one dry run per distinct shape, its
    estimate rescaled by each arm's steps), and the first dry run's stamp."""
    model, data = ensure_inputs(study, config_path, results)
    rows, stamp = [], {}
    shapes: dict[str, tuple[str, int, dict[str, Any]]] = {}
    for experiment in study["experiments"]:
        settings = cfg.experiment_settings(study, experiment)
        if settings["method"] == "none":
            continue
        key = shape_key(settings)
        if key not in shapes:
            seed = int(settings["seeds"][0])
            out = results / "plan" / experiment
            report = dry_run(config_path, experiment, seed, model, data, out)
            stamp = stamp or report
            shapes[key] = (experiment, int(settings["steps"]), report["dry_run"])
        source, steps, measured = shapes[key]
        scale = int(settings["steps"]) / max(steps, 1)
        measured = {**measured, "estimated_train_s": measured["estimated_train_s"] * scale}
        rows.append({**row_for(experiment, settings, measured, budget), "measured_as": source})
    return rows, stamp


def estimate_evaluation(
    study: dict[str, Any], config_path: Path, results: Path, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """plan_eval's estimate (in its own process, after the dry runs), with each row's
    evaluation minutes and the totals over every model the study evaluates."""
    out = results / "plan" / "eval_estimate.json"
    _run([sys.executable, "-m", "mlx_instruct.plan_eval", "--config", str(config_path),
          "--model", str(results / "models" / "base"), "--data", str(results / "data"),
          "--out", str(out)], capture=True)  # fmt: skip
    estimate = json.loads(out.read_text(encoding="utf-8"))
    per_model = float(estimate["per_model_min"])
    for row in rows:
        row["est_eval_min_per_run"] = round(per_model, 2)
        row["est_eval_min_all_seeds"] = round(per_model * row["seeds"], 2)
    models = len(cfg.runs(study, include_baseline=True))
    train = sum(row["est_min_all_seeds"] for row in rows)
    return {
        **estimate,
        "models": models,
        "all_models_min": per_model * models,
        "train_total_min": train,
        "study_total_min": train + per_model * models,
    }


def format_table(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    """The rows as an aligned text table (or a Markdown one)."""
    cells = [list(COLUMNS)] + [[_cell(row[c]) for c in COLUMNS] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(r) + " |" for r in cells]
        lines.insert(1, "|" + "---|" * len(COLUMNS))
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1 or value == 0 else f"{value:.3g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def header(
    study: dict[str, Any], config_path: Path, budget: Budget, stamp: dict[str, Any]
) -> dict[str, Any]:
    """Where and with what the plan was measured (plan.json)."""
    from mlx_instruct.provenance import git_state, machine

    hardware = stamp.get("hardware", {})
    return {
        "study": study["study"],
        "config": str(config_path),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "device": hardware.get("device"),
        "usable_memory_gb": budget.gb,
        "usable_memory_source": budget.source,
        "versions": stamp.get("versions", {}),
        "git": git_state(),
        "notes": [SCOPE_NOTE, plan_eval.LEFT_OUT],
    }


def write_outputs(
    rows: list[dict[str, Any]], head: dict[str, Any], evaluation: dict[str, Any], out: Path
) -> None:
    """plan.csv (the rows), plan.md (header, tables, totals) and plan.json (all of it)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(out, buffer.getvalue())
    machine = head["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in head["versions"].items())
    lines = [
        f"# Plan of study `{head['study']}` ({head['config']})",
        "",
        f"Measured {head['measured_at']} on {machine['processor']} ({machine['platform']}, "
        f"device {head['device']}), usable memory {head['usable_memory_gb']} GB "
        f"({head['usable_memory_source']}); {versions}; commit {head['git']['commit']}.",
        "",
        format_table(rows, markdown=True),
        "",
        *plan_eval.summary_lines(evaluation, markdown=True),
        "",
        "Notes: " + "; ".join(head["notes"]) + ".",
    ]
    write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    write_json(out.with_suffix(".json"), {**head, "rows": rows, "evaluation": evaluation})


def report(rows: list[dict[str, Any]], budget: Budget, evaluation: dict[str, Any]) -> int:
    """Print the tables, the totals and a WARNING per arm short of memory; the exit status."""
    print(format_table(rows))
    print(f"\nusable memory: {budget.gb} GB ({budget.source})")
    print("\n".join(plan_eval.summary_lines(evaluation, markdown=False)))
    print(f"note: {SCOPE_NOTE}; {plan_eval.LEFT_OUT}")
    for row in rows:
        if row["fits"] in ("NO", "tight"):
            what = "does NOT fit" if row["fits"] == "NO" else "leaves less than 10% margin"
            print(
                f"WARNING: {row['experiment']} needs {row['peak_memory_gb']:.2f} GB peak and "
                f"{what} in {budget.gb} GB usable memory: {budget.hint}",
                file=sys.stderr,
            )
    return EXIT_NO_FIT if any(row["fits"] == "NO" for row in rows) else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlx-instruct plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="study YAML file")
    parser.add_argument("--results", help="the study's results dir (default results/<study>)")
    parser.add_argument(
        "--out", help="plan table CSV (default <results>/plan/plan.csv; .md/.json beside)"
    )
    parser.add_argument(
        "--usable-gb", type=float, help="plan against this much memory instead of this machine's"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config_path = Path(args.config)
    try:
        study = cfg.load_config(config_path)
    except cfg.ConfigError as error:
        text = "; ".join(part.strip() for part in str(error).splitlines() if part.strip())
        print(f"error: {text}", file=sys.stderr)
        return EXIT_CONFIG
    results = Path(args.results) if args.results else cfg.study_dir(study)
    budget = usable_memory()
    if args.usable_gb is not None:
        budget = Budget(args.usable_gb, "--usable-gb", budget.hint)
    try:
        rows, stamp = measure(study, config_path, results, budget)
        evaluation = estimate_evaluation(study, config_path, results, rows)
    except PlanError as error:
        print(f"error: plan: {error}", file=sys.stderr)
        return EXIT_FAILED
    head = header(study, config_path, budget, stamp)
    write_outputs(rows, head, evaluation, Path(args.out or results / "plan" / "plan.csv"))
    return report(rows, budget, evaluation)


if __name__ == "__main__":
    sys.exit(main())
