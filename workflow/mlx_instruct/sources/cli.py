"""CLI of the model-source stage: what the Snakemake rule calls and a person can call by hand."""

from __future__ import annotations

import argparse
import json
import sys

from mlx_instruct.sources.common import DTYPES
from mlx_instruct.sources.uri import SCHEMES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlx_instruct.sources",
        description="Materialise a model URI as an MLX model directory.",
        epilog="URI forms: " + "; ".join(f"{k}: {v}" for k, v in SCHEMES.items()),
    )
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="write an MLX model directory for a model URI")
    prepare.add_argument("uri", help="model URI, e.g. random://mistral-tiny")
    prepare.add_argument("out_dir", help="directory to create (replaced atomically)")
    prepare.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    prepare.add_argument(
        "--cache-dir", default=None, help="download cache (default ~/.cache/mlx-instruct/wheels)"
    )
    parse = commands.add_parser("parse", help="print how a model URI is understood")
    parse.add_argument("uri")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (errors are printed, not raised)."""
    args = build_parser().parse_args(argv)
    from mlx_instruct.sources.models import prepare_model
    from mlx_instruct.sources.uri import parse_model_uri

    try:
        if args.command == "parse":
            parsed = parse_model_uri(args.uri)
            print(json.dumps(parsed.__dict__, indent=2))
            return 0
        out = prepare_model(args.uri, args.out_dir, dtype=args.dtype, cache_dir=args.cache_dir)
    except (ValueError, FileNotFoundError, ConnectionError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(out)
    return 0
