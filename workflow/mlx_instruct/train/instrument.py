"""Tidy per-run logs (seed section 11), the progress bar, and the run's provenance stamp.

Logs are JSON lines appended (and flushed) as training goes, so a person can watch them;
a resumed run first cuts every log back to the checkpoint's step, so the finished files
read exactly as one uninterrupted run would have written them.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import mlx.core as mx

from mlx_instruct import blas
from mlx_instruct.io import write_jsonl
from mlx_instruct.provenance import TRAIN_PACKAGES, machine, package_versions, python_version
from mlx_instruct.train.step import Layout

LOGS = ("train_log", "val_log", "layer_log", "samples")
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")
LORA_LEAVES = {"lora_a", "lora_b", "m"}


def unit_of(name: str) -> tuple[int, str]:
    """(layer index or -1 outside the blocks, module name) of a parameter or module path."""
    match = _LAYER.search(name)
    layer = int(match.group(1)) if match else -1
    parts = name.split(".")
    if parts[-1] in LORA_LEAVES or parts[-1] in ("weight", "bias", "scales", "biases"):
        parts = parts[:-1]
    return layer, parts[-1] if parts else name


def layer_rows(step: int, layout: Layout, split: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-layer gradient norms (before clipping) and delta norms as tidy rows."""
    grad_sq: dict[tuple[int, str], float] = {}
    for name, value in zip(layout.leaf_names, split["grad_sq"], strict=True):
        key = unit_of(name)
        grad_sq[key] = grad_sq.get(key, 0.0) + value
    delta_sq = {
        unit_of(n): v for n, v in zip(layout.lora_modules, split["lora_delta_sq"], strict=True)
    }
    param_sq: dict[tuple[int, str], float] = {}
    for name, value in zip(layout.delta_names, split["param_delta_sq"], strict=True):
        key = unit_of(name)
        param_sq[key] = param_sq.get(key, 0.0) + value
    return [
        {"step": step, "layer": layer, "module": module, "kind": kind, "value": _sqrt(v)}
        for kind, squares in (
            ("grad_norm", grad_sq),
            ("delta_norm", delta_sq),
            ("delta_norm", param_sq),
        )
        for (layer, module), v in squares.items()
    ]


def _sqrt(value: float) -> float:
    return math.sqrt(max(value, 0.0)) if math.isfinite(value) else value


def peak_memory_gb() -> float:
    return mx.get_peak_memory() / 1e9


class RunLogs:
    """Append-only JSON-lines logs in a run directory."""

    def __init__(self, out: Path):
        self.out = out
        self._handles: dict[str, Any] = {}

    def path(self, name: str) -> Path:
        return self.out / f"{name}.jsonl"

    def reset(self) -> None:
        for name in LOGS:
            self.path(name).unlink(missing_ok=True)

    def truncate(self, step: int) -> None:
        """Keep rows up to `step` (drop a torn last line from a killed run)."""
        for name in LOGS:
            path = self.path(name)
            if not path.exists():
                continue
            kept = []
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if int(row.get("step", 0)) <= step:
                    kept.append(row)
            write_jsonl(path, kept)

    def write(self, name: str, rows: list[dict[str, Any]] | dict[str, Any]) -> None:
        if isinstance(rows, dict):
            rows = [rows]
        handle = self._handles.get(name)
        if handle is None:
            handle = self._handles[name] = self.path(name).open("a", encoding="utf-8")
        handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        handle.flush()

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()


class NullLogs(RunLogs):
    """The logs of a data-parallel rank other than 0: rank 0 writes the run's logs."""

    def __init__(self) -> None:
        super().__init__(Path("."))

    def reset(self) -> None:
        pass

    def truncate(self, step: int) -> None:
        pass

    def write(self, name: str, rows: list[dict[str, Any]] | dict[str, Any]) -> None:
        pass


def versions() -> dict[str, Any]:
    return {"python": python_version(), **package_versions(TRAIN_PACKAGES)}


def hardware() -> dict[str, Any]:
    """The machine, plus what MLX runs on: its device, the BLAS it loaded, the GPU."""
    info: dict[str, Any] = {
        **machine(),
        "device": str(mx.default_device()),
        "blas": blas.loaded_blas,
    }
    try:
        if mx.metal.is_available():
            info["gpu"] = mx.metal.device_info()
    except Exception:  # noqa: BLE001 - best effort
        pass
    try:
        if mx.cuda.is_available():
            info["gpu"] = "cuda"
    except Exception:  # noqa: BLE001 - best effort
        pass
    return info


class Progress:
    """A console progress bar with loss, learning rate, tokens/s and ETA (stderr)."""

    def __init__(
        self, total: int, initial: int, label: str, enabled: bool = True, silent: bool = False
    ):
        self.bar = None
        self.silent = silent  # a data-parallel rank other than 0: rank 0 reports
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                initial=initial,
                desc=label,
                unit="step",
                dynamic_ncols=True,
                file=sys.stderr,
                mininterval=1.0,
            )

    def update(self, loss: float, lr: float, tokens_per_s: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(
                loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tokens_per_s:.0f}", refresh=False
            )
            self.bar.update(1)

    def write(self, text: str) -> None:
        if self.silent:
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
