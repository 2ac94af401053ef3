"""`python -m mlx_instruct.train`: train one experiment of a study at one seed.

    python -m mlx_instruct.train --config <study.yaml> --experiment <name> --seed <k> \\
        --model results/S/models/base --data results/S/data --out results/S/runs/<exp>/s<k> \\
        [--resume] [--dry-run]

A config or data error prints one line naming the file, key or line and exits 2 (no
traceback). A run stopped by the NaN/divergence guard writes diagnosis.json and exits 3.
--dry-run measures one optimizer step on the longest micro-batches (time, peak memory,
estimated run time), writes dry_run.json in --out and trains nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlx_instruct  # noqa: F401  (OpenBLAS before mlx)
from mlx_instruct.config import (
    ConfigError,
    TrainingSettings,
    data_settings,
    experiment_settings,
    fingerprint,
    load_config,
)
from mlx_instruct.io import write_json
from mlx_instruct.sources import load_model, read_source
from mlx_instruct.train import distributed
from mlx_instruct.train.batching import (
    DataError,
    Example,
    fingerprint_files,
    read_rows,
    to_examples,
)
from mlx_instruct.train.methods import MethodError

if TYPE_CHECKING:
    from mlx_instruct.train.trainer import Trainer

EXIT_CONFIG = 2
EXIT_DIVERGED = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlx_instruct.train", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--config", required=True, help="study YAML file")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--model", required=True, help="prepared base model directory")
    parser.add_argument(
        "--data", required=True, help="data directory with train/valid(/retention).jsonl"
    )
    parser.add_argument("--out", required=True, help="run directory to write")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the run's checkpoint if any"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="measure one step's time and memory only"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _tokenize(rows, tokenizer, max_seq_len: int, on_too_long: str, source: str) -> list[Example]:
    """The data stage's tokenization (BOS/EOS exactly once, exact prompt boundary)."""
    from mlx_instruct.data.tokenize import tokenize_dataset

    try:
        examples, _ = tokenize_dataset(tokenizer, rows, max_seq_len, on_too_long)
    except DataError as error:
        raise DataError(f"{source}: {error}") from None
    return to_examples(examples)


@dataclass(frozen=True)
class Prepared:
    """What a run reads before the model loads: the study, its settings and the data rows."""

    study: dict[str, Any]
    settings: dict[str, Any]  # the resolved dict (fingerprinted and stamped into run.json)
    training: TrainingSettings  # the same, typed (what the engine reads)
    model_dir: Path
    files: list[Path]
    train_rows: list[dict[str, Any]]
    valid_rows: list[dict[str, Any]]
    retention_rows: list[dict[str, Any]]


def _prepare(args: argparse.Namespace) -> Prepared:
    """Everything that can fail on config or data, checked before the model loads."""
    study = load_config(args.config)
    if args.experiment not in study["experiments"]:
        raise ConfigError(
            f"{args.config}: experiments: no experiment {args.experiment!r}; known: {sorted(study['experiments'])}"
        )
    settings = experiment_settings(study, args.experiment)
    if settings["method"] == "none":
        raise ConfigError(
            f"{args.config}: experiments.{args.experiment} is the untuned baseline (method: none); nothing to train"
        )
    model_dir = Path(args.model)
    if not (model_dir / "config.json").is_file():
        raise DataError(
            f"{model_dir}: not a prepared model directory (no config.json; run the sources stage)"
        )
    data = Path(args.data)
    files = [data / "train.jsonl", data / "valid.jsonl"]
    train_rows, valid_rows = read_rows(files[0]), read_rows(files[1])
    retention_rows: list[dict[str, Any]] = []
    training = TrainingSettings.from_dict(settings)
    if training.retention_fraction > 0:
        files.append(data / "retention.jsonl")
        retention_rows = read_rows(files[2])
    return Prepared(
        study, settings, training, model_dir, files, train_rows, valid_rows, retention_rows
    )


def _mix(prep: Prepared, seed: int) -> list[dict[str, Any]]:
    """The data stage's retention mix (the total stays at the training set's size)."""
    fraction = prep.training.retention_fraction
    if not fraction:
        return prep.train_rows
    from mlx_instruct.data.mix import mix_retention

    return mix_retention(prep.train_rows, prep.retention_rows, fraction, seed)


def _error(error: Exception) -> int:
    """One line on stderr (multi-line messages joined), exit status 2."""
    text = "; ".join(part.strip() for part in str(error).splitlines() if part.strip())
    print(f"error: {text}", file=sys.stderr)
    return EXIT_CONFIG


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    label = f"{args.experiment}/s{args.seed}"
    started = time.time()
    try:
        prep = _prepare(args)
    except (ConfigError, DataError) as error:
        return _error(error)
    processes = prep.training.processes
    if processes > 1 and not args.dry_run and os.environ.get(distributed.WORKER_ENV) is None:
        return _launch(args, argv, prep.training)
    files_fp = fingerprint_files(prep.files)
    identity = {
        "settings": fingerprint({k: v for k, v in prep.settings.items() if k != "seeds"}),
        "seed": args.seed,
        "data": files_fp,
        "model": str(prep.model_dir.resolve()),
    }
    if data_settings(prep.study)["packing"]:  # only when on: unpacked runs keep their print
        identity["packing"] = True
    run_fp = fingerprint(identity)
    if args.resume and not args.dry_run and _already_done(Path(args.out), run_fp, label):
        return 0
    model, tokenizer = load_model(prep.model_dir)
    try:
        trainer, counts = _build_trainer(args, prep, model, tokenizer, run_fp)
    except (ConfigError, DataError, MethodError) as error:
        return _error(error)
    stamp = _stamp(args, prep, run_fp, files_fp, counts, trainer)
    if args.dry_run:
        return _dry_run(args, trainer, stamp)
    return _train(args, trainer, stamp, started)


def _launch(args: argparse.Namespace, argv: list[str] | None, training: TrainingSettings) -> int:
    """This command line again as `training.processes` data-parallel ranks."""
    processes = training.processes
    if training.micro_batch_size < processes:
        return _error(
            ConfigError(
                f"{args.config}: training.processes ({processes}) must not exceed "
                f"micro_batch_size ({training.micro_batch_size}): each process takes "
                "a share of every micro-batch's rows"
            )
        )
    command = [sys.executable, "-m", "mlx_instruct.train", *(argv or sys.argv[1:])]
    return distributed.launch(command, processes)


def _already_done(out: Path, run_fp: str, label: str) -> bool:
    """--resume on a run that finished with these settings, data and model: nothing to do."""
    run_json = out / "run.json"
    if not run_json.is_file():
        return False
    previous = json.loads(run_json.read_text())
    if previous.get("fingerprint") == run_fp and previous.get("status") in (
        "completed",
        "early_stopped",
    ):
        print(f"{label}: already {previous['status']} ({run_json}); nothing to do")
        return True
    return False


def _build_trainer(
    args: argparse.Namespace, prep: Prepared, model: Any, tokenizer: Any, run_fp: str
) -> tuple[Trainer, dict[str, int]]:
    """The run's Trainer on the tokenized, mixed data, and the row/example counts."""
    data_cfg = data_settings(prep.study)
    max_seq_len, on_too_long = int(data_cfg["max_seq_len"]), data_cfg["on_too_long"]
    mixed = _mix(prep, args.seed)
    train = _tokenize(mixed, tokenizer, max_seq_len, on_too_long, str(prep.files[0]))
    valid = _tokenize(prep.valid_rows, tokenizer, max_seq_len, on_too_long, str(prep.files[1]))
    from mlx_instruct.train.trainer import Trainer

    trainer = Trainer(
        model,
        tokenizer,
        prep.training,
        train,
        valid,
        Path(args.out),
        seed=args.seed,
        max_seq_len=max_seq_len,
        packing=bool(data_cfg["packing"]),
        template=data_cfg["template"],
        label=f"{args.experiment}/s{args.seed}",
        model_path=prep.model_dir,
        fingerprint=run_fp,
        progress=not args.no_progress,
    )
    counts = {"rows_mixed": len(mixed), "examples_train": len(train), "examples_valid": len(valid)}
    return trainer, counts


def _dry_run(args: argparse.Namespace, trainer: Trainer, stamp: dict[str, Any]) -> int:
    """Measure one step, write dry_run.json, print the estimate."""
    report = {**stamp, "dry_run": trainer.dry_run()}
    write_json(Path(args.out) / "dry_run.json", report)
    d = report["dry_run"]
    print(
        f"{trainer.label}: dry run: peak memory {d['peak_memory_gb']:.2f} GB, step {d['step_s']:.2f} s "
        f"({d['tokens_per_s']:.0f} tokens/s on the longest batches), estimated training "
        f"{d['estimated_train_s'] / 60:.1f} min for {trainer.settings.steps} steps"
    )
    return 0


def _train(
    args: argparse.Namespace, trainer: Trainer, stamp: dict[str, Any], started: float
) -> int:
    """Train; rank 0 writes run.json (written last: its presence means complete) and reports."""
    summary = trainer.run(resume=args.resume)
    if trainer.rank != 0:
        return 0 if summary["status"] != "diverged" else EXIT_DIVERGED
    out, label = Path(args.out), trainer.label
    write_json(out / "run.json", {**stamp, **summary, "wall_time_s": time.time() - started})
    if summary["status"] == "diverged":
        print(
            f"error: {label}: training stopped: {summary['diagnosis']['reason']} (see {out / 'diagnosis.json'})",
            file=sys.stderr,
        )
        return EXIT_DIVERGED
    print(
        f"{label}: {summary['status']} after {summary['steps_done']} steps, "
        f"{summary['tokens_per_s']:.0f} tokens/s, peak {summary['peak_memory_gb']:.2f} GB, "
        f"best val loss {summary['best_val_loss']}"
    )
    return 0


def _stamp(
    args: argparse.Namespace,
    prep: Prepared,
    run_fp: str,
    files_fp: dict[str, str],
    counts: dict[str, int],
    trainer: Trainer,
) -> dict[str, Any]:
    """run.json's provenance: what was trained on what, with which code and machine."""
    from mlx_instruct.provenance import git_state
    from mlx_instruct.train.instrument import hardware, versions

    info = trainer.info
    return {
        "study": prep.study["study"],
        "experiment": args.experiment,
        "seed": args.seed,
        "method": prep.settings["method"],
        "rank": info.rank,
        "scale": info.scale,
        "optimizer": prep.training.optimizer,
        "trained": info.trained,  # e.g. "all weights of 32/32 blocks; embeddings ... frozen"
        "trained_parts": info.trained_parts,
        "fingerprint": run_fp,
        "config": {"file": str(args.config), "study": prep.study},
        "settings": prep.settings,
        "data": {
            "dir": str(Path(args.data)),
            "files_sha256": files_fp,
            "template": data_settings(prep.study)["template"],
            "max_seq_len": trainer.max_seq_len,
            "rows_train": len(prep.train_rows),
            "rows_retention": len(prep.retention_rows),
            **counts,
            "micro_batches_per_epoch": len(trainer.plan.batches),
            "packing": trainer.plan.packing,
            "rows_per_epoch": len(trainer.plan.rows),
            "fingerprint": fingerprint(files_fp),
        },
        "model": {
            "dir": str(prep.model_dir),
            "source": read_source(prep.model_dir),
            "quantization": info.quantization,
        },
        "loss": "gathered response positions" if trainer.fns.gathered else "dense masked",
        "versions": versions(),
        "git": git_state(),
        "hardware": hardware(),
    }


if __name__ == "__main__":
    sys.exit(main())
