"""`python -m mlx_instruct.sources prepare URI OUT_DIR` (and `mlx-instruct sources ...`)."""

import sys

from mlx_instruct.sources.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
