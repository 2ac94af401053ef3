"""`python -m mlx_instruct.deploy <command> ...`: the deployment stage CLIs the rules call.

Each command is a module of this package with a `main(argv) -> int`.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = ("aggregate", "export", "merge", "speculative", "loadtest", "card", "profile")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m mlx_instruct.deploy {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    module = importlib.import_module(f"mlx_instruct.deploy.{argv[0]}")
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
