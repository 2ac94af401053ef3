"""The machine a benchmark ran on, for its printout and JSON (issue 13 item 5).

Numbers from the lent GPU and from the CPU VM sit side by side in the docs; without the GPU's
name, driver and the MLX build they cannot be told apart or compared across sessions.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any


def nvidia_smi() -> dict[str, str]:
    """GPU name, driver and memory as nvidia-smi reports them ({} without an NVIDIA GPU)."""
    if shutil.which("nvidia-smi") is None:
        return {}
    fields = ("name", "driver_version", "memory.total")
    done = subprocess.run(
        ["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if done.returncode != 0 or not done.stdout.strip():
        return {}
    first = done.stdout.strip().splitlines()[0]
    return dict(zip(fields, (v.strip() for v in first.split(",")), strict=False))


def describe() -> dict[str, Any]:
    """Versions, host, MLX's device (mx.device_info) and the NVIDIA GPU where there is one."""
    import mlx.core as mx

    from mlx_instruct.train.instrument import hardware, versions

    return {
        "versions": versions(),
        "hardware": {**hardware(), "mlx_device_info": mx.device_info(), "nvidia": nvidia_smi()},
    }


def line(found: dict[str, Any]) -> str:
    """One printable line: GPU (driver) or CPU, MLX and mlx_lm versions."""
    hw, v = found["hardware"], found["versions"]
    gpu = hw["nvidia"]
    where = (
        f"{gpu['name']} (driver {gpu['driver_version']}, {gpu['memory.total']})"
        if gpu
        else f"{hw['mlx_device_info'].get('device_name', '?')} ({hw['device']})"
    )
    return f"machine: {where}; mlx {v.get('mlx')}, mlx-lm {v.get('mlx-lm')}, python {v['python']}"
