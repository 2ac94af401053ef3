#!/usr/bin/env bash
# Set up everything the study needs on a fresh machine: an optimised BLAS on Linux (MLX's
# bundled reference BLAS is ~30x slower), uv, and the locked Python environment (.venv).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname -s)" = "Linux" ]; then
  if ! ls /usr/lib/*-linux-gnu/openblas-pthread/libblas.so.3 >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
      echo "setup: installing OpenBLAS (libopenblas0-pthread) for MLX on the CPU"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas0-pthread >/dev/null
    else
      echo "setup: WARNING: no OpenBLAS found; MLX on the CPU will be ~30x slower." >&2
      echo "       Install it: sudo apt-get install libopenblas0-pthread (Debian/Ubuntu)" >&2
    fi
  fi
fi

if ! command -v uv >/dev/null; then
  echo "setup: installing uv"
  python3 -m pip install --quiet uv || pip install --quiet --user uv
  export PATH="$HOME/.local/bin:$PATH"
fi

uv sync --frozen --quiet
echo "setup: environment ready (.venv); run commands with 'uv run ...'"
