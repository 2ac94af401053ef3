"""CLI: run evaluation suites on the base model or one training run.

    python -m mlx_instruct.evaluate --config study.yaml --experiment E --seed K \\
        --model results/S/models/base [--run results/S/runs/E/sK] --data results/S/data \\
        --out results/S/evals/E/sK --suite NAME [--suite NAME ...] [--force]

Settings for a suite come from config["evaluation"]["suites"][NAME]; generation defaults
from config["evaluation"]["generation"]. Config and data errors: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import mlx_instruct  # noqa: F401  (OpenBLAS before mlx)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlx_instruct.evaluate",
        description="Run evaluation suites; write <out>/<suite>.jsonl (tidy rows, one per item).",
    )
    parser.add_argument("--config", required=True, help="study YAML")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", required=True, help="base MLX model dir")
    parser.add_argument("--run", default=None, help="training run dir (adapters or full model)")
    parser.add_argument("--data", required=True, help="prepared data dir of the study")
    parser.add_argument("--out", required=True, help="output dir for this run's suite files")
    parser.add_argument("--suite", action="append", required=True, help="suite name (repeat)")
    parser.add_argument("--force", action="store_true", help="rerun suites already complete")
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="at most N items of each suite, the first N of its selection (deployment.n)",
    )
    parser.add_argument(
        "--dequantize",
        action="store_true",
        help="score a quantized model with its weights dequantized (deployment.dequantize)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes for the suites (default: evaluation.workers of the config, else 1)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mlx_instruct.config import ConfigError, load_config
    from mlx_instruct.evaluate.context import EvalDataError, load_context
    from mlx_instruct.evaluate.parallel import run_pool, split
    from mlx_instruct.evaluate.runner import SuiteError, get_suite, is_complete, limited, run_suite
    from mlx_instruct.resources import ResourceError

    try:
        config = load_config(args.config)
        if args.experiment not in config["experiments"]:
            raise ConfigError(
                f"{args.config}: unknown experiment {args.experiment!r}; "
                f"known: {sorted(config['experiments'])}"
            )
        for path, what in ((args.model, "model dir"), (args.data, "data dir")):
            if not Path(path).is_dir():
                raise EvalDataError(f"{path}: {what} not found")
        if args.run is not None and not Path(args.run).is_dir():
            raise EvalDataError(f"{args.run}: run dir not found")
        if args.limit is not None:
            if args.limit < 1:
                raise ConfigError(f"--limit: expected a positive integer, got {args.limit}")
            suites = config["evaluation"]["suites"]
            for suite in args.suite:
                suites[suite] = limited(suite, suites.get(suite) or {}, args.limit)
        todo = [s for s in args.suite if args.force or not is_complete(args.out, s)]
        for suite in todo:
            get_suite(suite)  # unknown/unimportable suite: fail before loading the model
        if not todo:
            print(f"evaluate: all suites already complete in {args.out}", file=sys.stderr)
            return 0
        load = functools.partial(
            load_context,
            config,
            args.experiment,
            args.seed,
            args.model,
            args.run,
            args.data,
            args.out,
            dequantize=args.dequantize,
        )
        workers = args.workers or int(config["evaluation"].get("workers", 1))
        if workers < 1:
            raise ConfigError(f"--workers: expected a positive integer, got {workers}")
        pooled, todo = split(todo, workers)
        if pooled:
            errors = run_pool(load, pooled, workers, args.force)
            if errors:
                raise SuiteError("; ".join(errors))
        if not todo:
            return 0
        if pooled:  # the timing suites run alone now: give them every core (blas.set_threads)
            from mlx_instruct import blas

            blas.set_threads(blas.usable_cores())
        ctx = load()
        for suite in todo:
            start = time.perf_counter()
            path = run_suite(ctx, suite, force=args.force)
            print(f"evaluate: {suite} -> {path} ({time.perf_counter() - start:.1f}s)")
    except (ConfigError, EvalDataError, ResourceError, SuiteError, FileNotFoundError) as error:
        message = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
