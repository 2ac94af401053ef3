"""The geometry of the weight updates: what subspace each LoRA rank learns, and how many
directions a full fine-tune really uses.

- Subspace similarity between ranks (Hu et al. 2021, section 7.2):
  phi(r1, r2, i, j) = ||U_i^T V_j||_F^2 / min(i, j), with U_i, V_j the top-i / top-j singular
  directions of the two updates delta W; 1 = one subspace contains the other, chance level
  for random subspaces of a d-dimensional space is max(i, j) / d.
- Effective rank of delta W = W_tuned - W_base (entropy effective rank, Roy & Vetterli 2007:
  exp(H(sigma / sum sigma))) and the rank holding 90% of its energy (sum sigma^2).
- A histogram of the entries of delta W (and of the LoRA factors) per experiment.

Reads safetensors with numpy only (bfloat16 and MLX-quantised weights included), so the
analysis never needs MLX. mlx_lm LoRA layout: lora_a (in, r), lora_b (r, out), y = W x +
scale * (x A) B, hence delta W (out, in) = scale * (A B)^T.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd

DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
    "I16": np.int16, "I8": np.int8, "U8": np.uint8, "U32": np.uint32, "U16": np.uint16, "BOOL": np.bool_,
}  # fmt: skip
LORA_KEY = re.compile(r"layers\.(\d+)\.(.+)\.lora_([ab])$")
WEIGHT_KEY = re.compile(r"layers\.(\d+)\.(.+)\.weight$")


class SafeTensors:
    """Lazy, memory-mapped reader of one or more .safetensors files (numpy only)."""

    def __init__(self, paths):
        self.index: dict[str, tuple[Path, dict, int]] = {}
        for path in [Path(p) for p in paths]:
            with open(path, "rb") as handle:
                (size,) = struct.unpack("<Q", handle.read(8))
                header = json.loads(handle.read(size))
            header.pop("__metadata__", None)
            for name, info in header.items():
                self.index[name] = (path, info, 8 + size)

    @classmethod
    def from_dir(cls, folder: str | Path, pattern: str = "*.safetensors") -> SafeTensors:
        files = sorted(Path(folder).glob(pattern))
        if not files:
            raise FileNotFoundError(f"{folder}: no {pattern}")
        return cls(files)

    def keys(self) -> list[str]:
        return list(self.index)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.index[name][1]["shape"])

    def raw(self, name: str) -> np.ndarray:
        path, info, start = self.index[name]
        begin, end = info["data_offsets"]
        dtype = info["dtype"]
        storage = np.uint16 if dtype == "BF16" else DTYPES[dtype]
        count = (end - begin) // np.dtype(storage).itemsize
        data = np.memmap(path, dtype=storage, mode="r", offset=start + begin, shape=(count,))
        data = data.reshape(info["shape"])
        if dtype == "BF16":
            return (data.astype(np.uint32) << 16).view(np.float32)
        return data

    def get(self, name: str, quantization: dict | None = None) -> np.ndarray:
        """The tensor as float32; MLX affine-quantised weights are dequantised."""
        data = self.raw(name)
        base = name.removesuffix(".weight")
        if data.dtype == np.uint32 and f"{base}.scales" in self.index:
            spec = quantization or {}
            return dequantize(
                data,
                self.get(f"{base}.scales"),
                self.get(f"{base}.biases"),
                int(spec.get("bits", 4)),
                int(spec.get("group_size", 64)),
            )
        return np.asarray(data, dtype=np.float32)


def dequantize(
    packed: np.ndarray, scales: np.ndarray, biases: np.ndarray, bits: int, group_size: int
) -> np.ndarray:
    """MLX affine quantisation: uint32 words of 32/bits values (low bits first) * scale + bias."""
    if 32 % bits:
        raise ValueError(f"{bits}-bit weights are not supported here")
    per_word = 32 // bits
    shifts = np.arange(per_word, dtype=np.uint32) * bits
    values = (packed[..., None] >> shifts) & np.uint32((1 << bits) - 1)
    values = values.reshape(*packed.shape[:-1], -1).astype(np.float32)
    grouped = values.reshape(*values.shape[:-1], -1, group_size)
    out = grouped * scales[..., None] + biases[..., None]
    return out.reshape(values.shape)


def _quantization(folder: Path) -> dict | None:
    path = folder / "config.json"
    if path.is_file():
        config = json.loads(path.read_text())
        return config.get("quantization") or config.get("quantization_config")
    return None


# --- linear algebra ----------------------------------------------------------------------


def lowrank_svd(a: np.ndarray, b: np.ndarray, scale: float = 1.0):
    """SVD of delta W = scale * (A B)^T without forming it: (U_out, s, V_in), descending s."""
    qa, ra = np.linalg.qr(a.astype(np.float64))
    qb, rb = np.linalg.qr(b.T.astype(np.float64))
    u, s, vt = np.linalg.svd(scale * (ra @ rb.T))
    # A B = qa u s vt qb^T, so delta W = (qb vt^T) s (qa u)^T
    return qb @ vt.T, s, qa @ u


def subspace_similarity(u1: np.ndarray, u2: np.ndarray, i: int, j: int) -> float:
    """phi = ||U1[:, :i]^T U2[:, :j]||_F^2 / min(i, j), for orthonormal columns."""
    overlap = u1[:, :i].T @ u2[:, :j]
    return float(np.sum(overlap**2) / min(i, j))


def similarity_grid(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """phi(i, j) for every 1 <= i <= r1, 1 <= j <= r2 (cumulative sums of squared overlaps)."""
    squared = (u1.T @ u2) ** 2
    cumulative = squared.cumsum(axis=0).cumsum(axis=1)
    i = np.arange(1, u1.shape[1] + 1)[:, None]
    j = np.arange(1, u2.shape[1] + 1)[None, :]
    return cumulative / np.minimum(i, j)


def effective_rank(singular_values) -> float:
    """Roy & Vetterli (2007): exp of the entropy of the normalised singular values."""
    s = np.asarray(singular_values, dtype=np.float64)
    s = s[s > 0]
    if s.size == 0:
        return 0.0
    p = s / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def energy_rank(singular_values, fraction: float = 0.9) -> int:
    """The fewest singular directions holding `fraction` of sum sigma^2."""
    energy = np.asarray(singular_values, dtype=np.float64) ** 2
    if energy.sum() == 0:
        return 0
    return int(np.searchsorted(np.cumsum(energy) / energy.sum(), fraction - 1e-12) + 1)


# --- reading runs ------------------------------------------------------------------------


def lora_scale(run_dir: Path) -> float:
    config = json.loads((run_dir / "adapter_config.json").read_text())
    params = config.get("lora_parameters", {})
    if "scale" in params:
        return float(params["scale"])
    rank, alpha = params.get("rank", config.get("rank")), params.get("alpha", config.get("alpha"))
    return float(alpha) / float(rank) if rank and alpha else 1.0


def lora_factors(
    run_dir: str | Path,
) -> dict[tuple[int, str], tuple[np.ndarray, np.ndarray, float]]:
    """(layer, module) -> (A (in, r), B (r, out), scale) from an mlx_lm adapter folder."""
    run_dir = Path(run_dir)
    tensors = SafeTensors([run_dir / "adapters.safetensors"])
    scale = lora_scale(run_dir)
    found: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    for name in tensors.index:
        match = LORA_KEY.search(name)
        if match:
            found.setdefault((int(match[1]), match[2]), {})[match[3]] = tensors.get(name)
    return {
        key: (parts["a"], parts["b"], scale)
        for key, parts in sorted(found.items())
        if {"a", "b"} <= set(parts)
    }


def module_name(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _layer_budget(shapes: dict[tuple[int, str], tuple[int, ...]], max_elements: float) -> set[int]:
    """Evenly spaced layers whose matrices fit the SVD budget (all layers when small)."""
    layers = sorted({layer for layer, _ in shapes})
    per_layer = sum(int(np.prod(shape)) for shape in shapes.values()) / max(len(layers), 1)
    keep = max(1, min(len(layers), int(max_elements // max(per_layer, 1))))
    return {layers[int(k)] for k in np.linspace(0, len(layers) - 1, keep).round()}


def full_deltas(run_dir: str | Path, base_dir: str | Path, max_elements: float = 2e9):
    """Yield (layer, module, delta W) of a full fine-tune against the base, layer-budgeted."""
    tuned = SafeTensors.from_dir(run_dir, "model*.safetensors")
    base = SafeTensors.from_dir(base_dir, "model*.safetensors")
    qt, qb = _quantization(Path(run_dir)), _quantization(Path(base_dir))
    shapes = {}
    for name in tuned.index:
        match = WEIGHT_KEY.search(name)
        if match and name in base.index and len(tuned.shape(name)) == 2:
            shapes[(int(match[1]), match[2])] = (name, tuned.shape(name))
    layers = _layer_budget({k: v[1] for k, v in shapes.items()}, max_elements)
    for (layer, path), (name, _) in sorted(shapes.items()):
        if layer in layers:
            delta = tuned.get(name, qt) - base.get(name, qb)
            yield layer, path, delta


def _rank_row(layer: int, path: str, s: np.ndarray, shape: tuple[int, int]) -> dict:
    return {
        "layer": layer, "module": module_name(path), "path": path, "rows": shape[0], "cols": shape[1],
        "effective_rank": effective_rank(s), "rank90": energy_rank(s, 0.9),
        "fro_norm": float(np.sqrt(np.sum(np.square(s, dtype=np.float64)))), "spectral_norm": float(s.max()) if len(s) else 0.0,
    }  # fmt: skip


def _histogram(parts: dict[str, list[np.ndarray]], bins: int) -> pd.DataFrame:
    out = []
    for part, chunks in parts.items():
        if not chunks:
            continue
        values = np.concatenate(chunks).astype(np.float64)
        edge = float(np.quantile(np.abs(values), 0.999)) or 1e-12
        counts, edges = np.histogram(values, bins=bins, range=(-edge, edge))
        outside = float(np.mean(np.abs(values) > edge))
        out.append(
            pd.DataFrame(
                {
                    "part": part,
                    "bin_left": edges[:-1],
                    "bin_right": edges[1:],
                    "count": counts,
                    "std": values.std(),
                    "n": values.size,
                    "outside": outside,
                }
            )
        )
    columns = ["part", "bin_left", "bin_right", "count", "std", "n", "outside"]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=columns)


def update_geometry(
    run_dir: str | Path,
    method: str,
    base_dir: str | Path | None = None,
    max_elements: float = 2e9,
    per_module: int = 20000,
    seed: int = 0,
    bins: int = 60,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One pass over a run's update matrices: (per layer/module effective rank, 90%-energy
    rank and norms of delta W; histogram of sampled entries of delta W and the LoRA factors).
    A full fine-tune is read against the base, one matrix at a time, layers within budget."""
    rng = np.random.default_rng(seed)
    rows, parts = [], {"delta": []}
    if method == "full":
        for layer, path, delta in full_deltas(run_dir, base_dir, max_elements):
            rows.append(_rank_row(layer, path, np.linalg.svd(delta, compute_uv=False), delta.shape))
            flat = delta.ravel()
            parts["delta"].append(flat[rng.integers(0, flat.size, min(per_module, flat.size))])
    else:
        parts.update({"lora_a": [], "lora_b": []})
        for (layer, path), (a, b, scale) in lora_factors(run_dir).items():
            rows.append(
                _rank_row(layer, path, lowrank_svd(a, b, scale)[1], (b.shape[1], a.shape[0]))
            )
            out_idx, in_idx = (
                rng.integers(0, b.shape[1], per_module),
                rng.integers(0, a.shape[0], per_module),
            )
            parts["delta"].append(scale * np.einsum("nk,kn->n", a[in_idx], b[:, out_idx]))
            parts["lora_a"].append(rng.choice(a.ravel(), min(per_module, a.size)))
            parts["lora_b"].append(rng.choice(b.ravel(), min(per_module, b.size)))
    return pd.DataFrame(rows), _histogram(parts, bins)


def delta_ranks(run_dir, method: str, base_dir=None, max_elements: float = 2e9) -> pd.DataFrame:
    """Per layer and module: effective rank, 90%-energy rank, norms of delta W."""
    return update_geometry(run_dir, method, base_dir, max_elements)[0]


def delta_histogram(
    run_dir, method: str, base_dir=None, per_module: int = 20000, seed: int = 0
) -> pd.DataFrame:
    """Histogram of sampled entries of delta W (and of the LoRA factors A and B)."""
    return update_geometry(run_dir, method, base_dir, per_module=per_module, seed=seed)[1]


def subspace_grid(run_a: str | Path, run_b: str | Path, sides=("in", "out")) -> pd.DataFrame:
    """phi(i, j) between two LoRA runs, per layer/module on the diagonal i = j, and the full
    i x j grid averaged over layers per module (layer = "mean"); `chance` is max(i, j) / d."""
    fa, fb = lora_factors(run_a), lora_factors(run_b)
    rows, grids = [], {}
    for key in sorted(set(fa) & set(fb)):
        ua_out, _, ua_in = lowrank_svd(*fa[key])
        ub_out, _, ub_in = lowrank_svd(*fb[key])
        for side, ua, ub in (("in", ua_in, ub_in), ("out", ua_out, ub_out)):
            if side not in sides:
                continue
            grid = similarity_grid(ua, ub)
            grids.setdefault((side, module_name(key[1])), []).append(grid)
            d = ua.shape[0]
            for k in range(1, min(grid.shape) + 1):
                rows.append(
                    {
                        "side": side,
                        "layer": str(key[0]),
                        "module": module_name(key[1]),
                        "i": k,
                        "j": k,
                        "phi": float(grid[k - 1, k - 1]),
                        "chance": k / d,
                    }
                )
    for (side, module), stack in grids.items():
        mean = np.mean(stack, axis=0)
        d = (fa[next(iter(fa))][0].shape[0]) if side == "in" else fa[next(iter(fa))][1].shape[1]
        for i in range(mean.shape[0]):
            for j in range(mean.shape[1]):
                rows.append(
                    {
                        "side": side,
                        "layer": "mean",
                        "module": module,
                        "i": i + 1,
                        "j": j + 1,
                        "phi": float(mean[i, j]),
                        "chance": max(i + 1, j + 1) / d,
                    }
                )
    return pd.DataFrame(rows)
