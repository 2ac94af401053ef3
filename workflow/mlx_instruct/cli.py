"""`mlx-instruct <stage> ...`: one entry point over the per-stage CLIs the rules call."""

from __future__ import annotations

import importlib
import sys

STAGES = {
    "sources": ("mlx_instruct.sources.__main__", "materialise a model URI as an MLX model dir"),
    "data": ("mlx_instruct.data.__main__", "prepare instruction data / the retention mix"),
    "train": ("mlx_instruct.train.__main__", "train one experiment at one seed"),
    "evaluate": ("mlx_instruct.evaluate.__main__", "run evaluation suites on a base or run"),
    "check-config": ("mlx_instruct.cli", "validate a study config"),
    "plan": ("mlx_instruct.plan", "dry-run every arm of a study: memory, time, does it fit"),
}


def check_config(argv: list[str]) -> int:
    from mlx_instruct.config import ConfigError, load_config, runs

    if len(argv) != 1:
        print("usage: mlx-instruct check-config <study.yaml>", file=sys.stderr)
        return 2
    try:
        study = load_config(argv[0])
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{argv[0]}: study {study['study']!r} is valid; runs:")
    for run in runs(study):
        print(f"  {run.name:<32} method={run.method} rank={run.rank}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in STAGES:
        print("usage: mlx-instruct <stage> [args...]\n\nstages:", file=sys.stderr)
        for name, (_, help_text) in STAGES.items():
            print(f"  {name:<14} {help_text}", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    stage, rest = argv[0], argv[1:]
    if stage == "check-config":
        return check_config(rest)
    module = importlib.import_module(STAGES[stage][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
