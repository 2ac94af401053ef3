"""Run outputs in the ecosystem's formats, written atomically, and a loader for every method.

- lora / dora / qlora: `adapter_config.json` + `adapters.safetensors`, exactly mlx_lm's
  format (`mlx_lm generate --model <base> --adapter-path <run>` and `mlx_lm fuse` accept
  them). qlora records the base quantisation under `base_quantization` (mlx_lm ignores it
  and applies the adapters to the unquantised base; `load_trained` re-quantises).
- hybrid: the same LoRA adapters plus the trained norm weights in `norms.safetensors`
  (mlx_lm's adapter loader rejects non-LoRA tensors, so they cannot share the file;
  `load_trained` applies both, plain mlx_lm applies the LoRA part only).
- full: a loadable MLX model directory (config.json, model.safetensors, tokenizer files).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from mlx_instruct.io import atomic_path, write_json
from mlx_instruct.train.methods import quantizable

ADAPTER_FILE = "adapters.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
NORMS_FILE = "norms.safetensors"
WEIGHT_SUFFIXES = (".safetensors",)
SKIP_FROM_BASE = ("model.safetensors.index.json", "source.json")


def save_safetensors(
    target: Path, arrays: dict[str, mx.array], metadata: dict[str, str] | None = None
) -> None:
    with atomic_path(target, suffix=".safetensors") as tmp:
        mx.save_safetensors(str(tmp), arrays, metadata=metadata or {})


def lora_weights(model: nn.Module) -> dict[str, mx.array]:
    return {
        name: value
        for name, value in tree_flatten(model.trainable_parameters())
        if name.rsplit(".", 1)[-1] in ("lora_a", "lora_b", "m")
    }


def save_adapters(out: Path, model: nn.Module, adapter_config: dict[str, Any]) -> list[str]:
    weights = dict(tree_flatten(model.trainable_parameters()))
    adapters = lora_weights(model)
    save_safetensors(out / ADAPTER_FILE, adapters)
    written = [ADAPTER_FILE]
    extra = {k: v for k, v in weights.items() if k not in adapters}
    if extra:
        save_safetensors(out / NORMS_FILE, extra)
        written.append(NORMS_FILE)
    write_json(out / ADAPTER_CONFIG, adapter_config)
    return [*written, ADAPTER_CONFIG]


def save_full(out: Path, model: nn.Module, base: Path) -> list[str]:
    """A full model directory: weights, the base's config and tokenizer files."""
    written = []
    for item in sorted(base.iterdir()):
        if (
            item.is_file()
            and not item.name.endswith(WEIGHT_SUFFIXES)
            and item.name not in SKIP_FROM_BASE
        ):
            with atomic_path(out / item.name, suffix=item.suffix) as tmp:
                shutil.copyfile(item, tmp)
            written.append(item.name)
    weights = dict(tree_flatten(model.parameters()))
    save_safetensors(out / "model.safetensors", weights, {"format": "mlx"})
    return [*written, "model.safetensors"]


def load_trained(base: str | Path, run: str | Path | None = None):
    """(model, tokenizer) of a base model with a run's training applied, for any method.

    The base loads through sources.load_model, which also rebuilds a random:// base prepared
    without weights (the 7B-shape GPU check; mlx_lm.load found no safetensors there).
    """
    from mlx_lm.tuner.utils import load_adapters

    from mlx_instruct.sources import load_model

    if run is None:
        return load_model(base)
    run = Path(run)
    if not (run / ADAPTER_CONFIG).is_file():
        return load_model(run)  # a full fine-tune is a model directory
    config = json.loads((run / ADAPTER_CONFIG).read_text())
    model, tokenizer = load_model(base)
    quant = config.get("base_quantization")
    if quant and not quant.get("preexisting"):
        group = quant["group_size"]
        nn.quantize(model, group_size=group, bits=quant["bits"], class_predicate=quantizable(group))
    load_adapters(model, str(run))
    extra = config.get("extra_weights")
    if extra and (run / extra).is_file():
        model.load_weights(list(mx.load(str(run / extra)).items()), strict=False)
    model.eval()
    return model, tokenizer
