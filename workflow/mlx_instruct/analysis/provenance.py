"""Where a report came from: git commit, package versions, hardware (mlx_instruct.provenance,
shared with source.json and run.json), and the per-run records."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pandas as pd

from mlx_instruct import provenance


def hardware() -> dict:
    """The machine rendering the report, in the words of the provenance appendix."""
    memory = provenance.memory_gb()
    return {
        "system": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpu": provenance.cpu_name(),
        "cpus": os.cpu_count(),
        "memory_gb": round(memory, 1) if memory is not None else None,
        "python": platform.python_version(),
    }


def record(results: str | Path | None = None) -> dict:
    """Everything the provenance appendix shows about the machine rendering the report."""
    return {
        "git": provenance.git_state(),
        "packages": provenance.package_versions(provenance.REPORT_PACKAGES),
        "hardware": hardware(),
    }


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
