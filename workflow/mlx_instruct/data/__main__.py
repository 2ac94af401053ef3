"""`python -m mlx_instruct.data prepare|retention ...`: the data stage's CLI (Snakemake rules).

A DataError or ConfigError prints one clear line to stderr and exits 2, no traceback: the
message names the file, line and field, which is all a user needs to fix the data.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from mlx_instruct.config import ConfigError, load_config
from mlx_instruct.data.common import DataError
from mlx_instruct.resources import ResourceError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlx_instruct.data", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="build data/{train,valid,test}.jsonl and data/stats.json")
    prep.add_argument("--config", required=True, help="study YAML")
    prep.add_argument("--model", required=True, help="MLX model dir (its tokenizer is used)")
    prep.add_argument("--out", required=True, help="output dir, e.g. results/<study>/data")
    ret = sub.add_parser("retention", help="write data/retention.jsonl (base-model self-replay)")
    ret.add_argument("--config", required=True, help="study YAML")
    ret.add_argument("--model", required=True, help="MLX model dir of the BASE model")
    ret.add_argument(
        "--out", required=True, help="output file, e.g. results/<study>/data/retention.jsonl"
    )
    ret.add_argument("--batch-size", type=int, default=32, help="generation batch (default 32)")
    qual = sub.add_parser("quality", help="write data/quality.json (+ scores, embedding map)")
    qual.add_argument("--config", required=True, help="study YAML")
    qual.add_argument("--model", required=True, help="MLX model dir (its tokenizer is used)")
    qual.add_argument("--data", required=True, help="the prepared data dir, results/<study>/data")
    for command in (prep, ret):
        command.add_argument(
            "--base-dir", default=".", help="relative data paths resolve against this"
        )
    return parser


def _one_line(error: Exception) -> str:
    return " | ".join(line.strip() for line in str(error).splitlines() if line.strip())


def _warn(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"warning: {message}", file=sys.stderr)


def _quality(config: dict, args: argparse.Namespace, eval_texts: dict) -> dict:
    from mlx_instruct.data.prepare import load_tokenizer
    from mlx_instruct.data.quality_stage import assess, write_quality

    report, scores, points = assess(config, args.data, load_tokenizer(args.model), eval_texts)
    write_quality(report, scores, points, args.data)
    return {"out": args.data, "map": report["map"] and report["map"]["seconds"]}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    warnings.showwarning = _warn
    try:
        config = load_config(args.config)
        from mlx_instruct.data.contamination import load_eval_texts

        eval_texts = load_eval_texts()
        if args.command == "prepare":
            from mlx_instruct.data.prepare import prepare_data

            stats = prepare_data(config, args.model, args.out, eval_texts, base_dir=args.base_dir)
            summary = {"out": args.out, **stats["counts"], "template": stats["template"]}
        elif args.command == "quality":
            summary = _quality(config, args, eval_texts)
        else:
            from mlx_instruct.data.retention import build_retention

            summary = build_retention(
                config, args.model, args.out, eval_texts, batch_size=args.batch_size
            )
    except (DataError, ConfigError, ResourceError) as error:
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
