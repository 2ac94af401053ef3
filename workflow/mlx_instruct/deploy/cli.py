"""Argument checks the deployment commands share: counts at least 1 and a .jsonl output.

Why here: profile, speculative and loadtest each refused the same bad flags with the same
words; one function keeps the words (which tests match) in one place.
"""

from __future__ import annotations

import argparse


def check_counts_and_out(
    parser: argparse.ArgumentParser, args: argparse.Namespace, *flags: str
) -> None:
    """parser.error naming the first of `flags` below 1 (a list: any value), or a --out that
    is not .jsonl. A flag left at None (an optional count) passes."""
    for flag in flags:
        value = getattr(args, flag)
        name = f"--{flag.replace('_', '-')}"
        if isinstance(value, list):
            if any(v < 1 for v in value):
                parser.error(f"{name} values must be >= 1, got {value}")
        elif value is not None and value < 1:
            parser.error(f"{name} must be >= 1, got {value}")
    if args.out.suffix != ".jsonl":
        parser.error(f"--out must end in .jsonl, got {args.out}")
