"""Shared fixtures of the deployment tests (no tests here).

A tiny random Mistral prepared once per session and LoRA runs built directly with mlx_lm's
LoRA layers and random nonzero B matrices (a trained run's B may still be near zero after a
few steps, which would make "fused == base + adapter" hold trivially).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import pytest

import mlx_instruct  # noqa: F401  (OpenBLAS before mlx)

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke.yaml"
PROMPT_IDS = [1, 415, 2936, 9060, 285, 1142, 28705, 3]


@pytest.fixture(scope="session")
def deploy_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlx_instruct.sources import prepare_model

    return Path(prepare_model("random://mistral-tiny", tmp_path_factory.mktemp("deploy") / "base"))


def make_lora_run(
    base: Path,
    out: Path,
    *,
    rank: int = 4,
    scale: float = 2.0,
    seed: int = 0,
    keys: tuple[str, ...] = ("self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"),
    num_layers: int = -1,
    method: str = "lora",
    run_json: dict[str, Any] | None = None,
    quantization: dict[str, Any] | None = None,
) -> Path:
    """A run directory as the train CLI writes it for an adapter method (B != 0)."""
    from mlx_lm.tuner.utils import linear_to_lora_layers

    from mlx_instruct.io import write_json
    from mlx_instruct.sources import load_model, read_source
    from mlx_instruct.train.outputs import save_adapters

    model, _ = load_model(base)
    model.freeze()
    lora = {"rank": rank, "scale": scale, "dropout": 0.0, "keys": list(keys)}
    linear_to_lora_layers(model, num_layers, lora, use_dora=method == "dora")
    mx.random.seed(seed)
    for _, module in model.named_modules():
        if hasattr(module, "lora_b"):
            module.lora_b = 0.05 * mx.random.normal(module.lora_b.shape)
        if method == "hybrid" and isinstance(module, nn.RMSNorm):  # trained norms
            module.weight = module.weight + 0.1 * mx.random.normal(module.weight.shape)
            module.unfreeze()
    mx.eval(model.parameters())
    config = {
        "fine_tune_type": "dora" if method == "dora" else "lora",
        "num_layers": num_layers,
        "lora_parameters": lora,
        "method": method,
        **({"extra_weights": "norms.safetensors"} if method == "hybrid" else {}),
        **(quantization or {}),
    }
    save_adapters(out, model, config)
    record = {
        "study": "smoke",
        "experiment": out.name,
        "seed": seed,
        "method": method,
        "rank": rank,
        "scale": scale,
        "status": "completed",
        "fingerprint": f"run-{out.name}",
        "settings": {"method": method, "rank": rank, "dtype": "float32"},
        "data": {"fingerprint": f"data-{seed}"},
        "model": {"dir": str(base), "source": read_source(base)},
    }
    write_json(out / "run.json", {**record, **(run_json or {})})
    return out


def logits(model: Any, ids: list[int] = PROMPT_IDS) -> mx.array:
    out = model(mx.array([ids]))
    mx.eval(out)
    return out
