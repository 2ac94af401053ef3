"""Turn a loaded base model into the trainable model of one method.

Methods (config key `method`): lora, dora, hybrid (LoRA plus unfrozen norm layers, the
seed's FAQ), qlora (LoRA on a 4- or 8-bit quantised frozen base) and full. LoRA layers
are mlx_lm's own (`linear_to_lora_layers`), so adapters load in mlx_lm unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from mlx_instruct.config import ADAPTER_METHODS, METHODS, TrainingSettings

DTYPES = {"float32": mx.float32, "bfloat16": mx.bfloat16, "float16": mx.float16}
LORA_LEAVES = ("lora_a", "lora_b", "m")


class MethodError(ValueError):
    """A method setting this model cannot honour (names the setting)."""


@dataclass
class MethodInfo:
    method: str
    scale: float | None = None
    rank: int | None = None
    keys: list[str] = field(default_factory=list)
    num_layers: int = -1
    quantization: dict[str, Any] | None = None
    trainable_params: int = 0
    total_params: int = 0
    # what the optimizer updates, in words and by part (run.json's `trained`, `trained_parts`)
    trained: str = ""
    trained_parts: dict[str, Any] = field(default_factory=dict)
    # Base values of trainable non-LoRA leaves (hybrid norms, full weights): for ||W - W0||.
    base_values: dict[str, mx.array] = field(default_factory=dict)

    @property
    def is_adapter(self) -> bool:
        return self.method in ADAPTER_METHODS

    def adapter_config(self, settings: TrainingSettings) -> dict[str, Any]:
        """mlx_lm's adapter_config.json (what `mlx_lm generate --adapter-path` reads)."""
        config: dict[str, Any] = {
            "fine_tune_type": "dora" if self.method == "dora" else "lora",
            "num_layers": self.num_layers,
            "lora_parameters": {
                "rank": self.rank,
                "scale": self.scale,
                "dropout": settings.dropout,
                "keys": self.keys,
            },
            # ours (mlx_lm ignores unknown keys):
            "method": self.method,
            "alpha": settings.alpha,
            "target_modules": list(settings.target_modules),
        }
        if self.quantization:
            config["base_quantization"] = self.quantization
        if self.method == "hybrid":
            config["extra_weights"] = "norms.safetensors"
        return config


def layer_module_keys(model: nn.Module, targets: list[str]) -> list[str]:
    """Paths inside a transformer block of the Linear layers named in `targets`."""
    block = model.layers[0]
    found: dict[str, str] = {}
    for path, module in block.named_modules():
        leaf = path.rsplit(".", 1)[-1]
        if leaf in targets and isinstance(module, (nn.Linear, nn.QuantizedLinear)):
            found[path] = leaf
    missing = sorted(set(targets) - set(found.values()))
    if missing:
        raise MethodError(
            f"target_modules: {missing} not found in a {type(block).__name__} block "
            f"(it has {sorted({p.rsplit('.', 1)[-1] for p, _ in block.named_modules() if p})})"
        )
    return sorted(found)


def cast_model(model: nn.Module, dtype_name: str) -> None:
    """Cast floating-point parameters to the compute dtype (float32 on CPUs)."""
    if dtype_name not in DTYPES:
        raise MethodError(f"dtype: unknown {dtype_name!r}; expected one of {sorted(DTYPES)}")
    dtype = DTYPES[dtype_name]
    model.set_dtype(dtype, predicate=lambda d: mx.issubdtype(d, mx.floating))


def quantize_base(model: nn.Module, bits: int) -> dict[str, Any]:
    """Quantise the frozen base's Linear and Embedding layers (QLoRA-style)."""
    existing = [m for _, m in model.named_modules() if isinstance(m, nn.QuantizedLinear)]
    if existing:
        return {"bits": existing[0].bits, "group_size": existing[0].group_size, "preexisting": True}
    group = (
        64
        if all(
            m.weight.shape[-1] % 64 == 0
            for _, m in model.named_modules()
            if isinstance(m, (nn.Linear, nn.Embedding))
        )
        else 32
    )
    nn.quantize(model, group_size=group, bits=bits, class_predicate=quantizable(group))
    return {"bits": bits, "group_size": group, "mode": "affine"}


def quantizable(group_size: int) -> Callable[[str, nn.Module], bool]:
    """`nn.quantize`'s class_predicate for the QLoRA base: the Linear and Embedding layers
    whose input width splits into groups (training and every loader of a qlora run use it)."""

    def predicate(_path: str, module: nn.Module) -> bool:
        return (
            isinstance(module, (nn.Linear, nn.Embedding))
            and module.weight.shape[-1] % group_size == 0
        )

    return predicate


def apply_method(model: nn.Module, settings: TrainingSettings, seed: int = 0) -> MethodInfo:
    """Freeze/convert `model` in place for `settings.method`; return what was done.

    `seed` seeds the LoRA initialisation (the run's seed).
    """
    method = settings.method
    if method not in METHODS:
        raise MethodError(f"method: {method!r} cannot be trained; expected one of {METHODS}")
    n_layers = len(model.layers)
    num_layers = settings.num_layers
    if num_layers > n_layers:
        raise MethodError(f"num_layers: {num_layers} but the model has {n_layers} layers")
    if settings.train_embeddings and method != "full":
        raise MethodError(f"train_embeddings: only method full trains them, not {method!r}")
    cast_model(model, settings.dtype)
    info = MethodInfo(method=method, num_layers=num_layers)
    model.freeze()
    chosen = model.layers[-num_layers:] if num_layers > 0 else model.layers

    if method == "full":
        if any(isinstance(m, nn.QuantizedLinear) for _, m in model.named_modules()):
            raise MethodError(
                "method: full cannot train a quantized base; use qlora or a float model"
            )
        for layer in chosen:
            layer.unfreeze()
        if settings.train_embeddings:
            _unfreeze_outer(model)
    else:
        _add_adapters(model, settings, info, seed)
        if method == "hybrid" and settings.train_norms:
            _unfreeze_norms(model, chosen)
    trainable = dict(tree_flatten(model.trainable_parameters()))
    info.trainable_params = sum(v.size for v in trainable.values())
    # The base model's size as mlx_lm counts it: quantized weights unpacked (packed, a 4-bit
    # QLoRA base counted 8x too few), adapters and quantization scales left out.
    from mlx_lm.utils import get_total_parameters  # here: importing mlx_lm.utils takes ~4 s

    info.total_params = get_total_parameters(model)
    info.trained_parts = trained_parts(trainable, n_layers, settings.optimizer)
    info.trained = describe_trained(info.trained_parts)
    info.base_values = {
        name: mx.array(value)
        for name, value in trainable.items()
        if name.rsplit(".", 1)[-1] not in LORA_LEAVES and settings.weight_delta
    }
    mx.eval(model.parameters(), info.base_values)
    return info


def _unfreeze_outer(model: nn.Module) -> None:
    """full + train_embeddings: the token embeddings, output head and final norm train too."""
    inner = getattr(model, "model", model)
    for part in (getattr(inner, "embed_tokens", None), getattr(model, "lm_head", None),
                 getattr(inner, "norm", None)):  # fmt: skip
        if isinstance(part, nn.Module):
            part.unfreeze()


def trained_parts(trainable: dict[str, mx.array], n_layers: int, optimizer: str) -> dict[str, Any]:
    """Which parts of the model the optimizer updates, counted from the trainable names."""
    layers: set[int] = set()
    outer = {"embeddings": 0, "output_head": 0, "final_norm": 0}
    leaves: set[str] = set()
    for name, value in trainable.items():
        parts = name.split(".")
        if "layers" in parts and parts[parts.index("layers") + 1].isdigit():
            layers.add(int(parts[parts.index("layers") + 1]))
            leaves.add(parts[-1] if parts[-1] in LORA_LEAVES else "weights")
        elif "embed_tokens" in parts:
            outer["embeddings"] += value.size
        elif "lm_head" in parts:
            outer["output_head"] += value.size
        else:
            outer["final_norm"] += value.size
    return {
        "optimizer": optimizer,
        "params": sum(v.size for v in trainable.values()),
        "layers_trained": len(layers),
        "layers_total": n_layers,
        "first_layer": min(layers) if layers else None,
        "adapters": any(leaf in LORA_LEAVES for leaf in leaves),
        **{f"{k}_params": v for k, v in outer.items()},
    }


def describe_trained(parts: dict[str, Any]) -> str:
    """One line for run.json and tables, e.g. '32/32 blocks; embeddings, head frozen; adamw'."""
    what = "adapters in" if parts["adapters"] else "all weights of"
    frozen = [k for k in ("embeddings", "output_head", "final_norm") if not parts[f"{k}_params"]]
    trained = [k for k in ("embeddings", "output_head", "final_norm") if parts[f"{k}_params"]]
    text = f"{what} {parts['layers_trained']}/{parts['layers_total']} blocks"
    if trained:
        text += "; " + ", ".join(trained).replace("_", " ") + " trained"
    if frozen:
        text += "; " + ", ".join(frozen).replace("_", " ") + " frozen"
    return f"{text}; {parts['optimizer']}"


def _add_adapters(
    model: nn.Module, settings: TrainingSettings, info: MethodInfo, seed: int
) -> None:
    """mlx_lm's LoRA (DoRA) layers on the target modules, on a quantised base for qlora."""
    # imported here: mlx_lm's tuner takes ~3 s to import, which only training needs
    from mlx_lm.tuner.utils import linear_to_lora_layers

    if info.method == "qlora":
        info.quantization = quantize_base(model, settings.quantize_bits)
    info.rank = settings.rank
    info.scale = settings.alpha / settings.rank
    info.keys = layer_module_keys(model, list(settings.target_modules))
    # mlx_lm initialises lora_a with the global RNG: seed it for a reproducible start.
    mx.random.seed(seed)
    parameters = {
        "rank": info.rank,
        "scale": info.scale,
        "dropout": settings.dropout,
        "keys": info.keys,
    }
    linear_to_lora_layers(model, info.num_layers, parameters, use_dora=(info.method == "dora"))


def _unfreeze_norms(model: nn.Module, chosen: list[nn.Module]) -> None:
    """hybrid: the chosen blocks' norm layers and the final norm train too."""
    for layer in chosen:
        for _, module in layer.named_modules():
            if isinstance(module, nn.RMSNorm | nn.LayerNorm):
                module.unfreeze()
    final_norm = getattr(getattr(model, "model", None), "norm", None)
    if isinstance(final_norm, nn.Module):
        final_norm.unfreeze()


@contextlib.contextmanager
def grad_checkpointing(model: nn.Module, enabled: bool) -> Iterator[None]:
    """Recompute each block's activations in the backward pass (less memory, ~30% more time).

    Like mlx_lm's `grad_checkpoint`, this wraps the block class's __call__; unlike it, the
    original is restored on exit so other models in the process are untouched.
    """
    if not enabled:
        yield
        return
    cls = type(model.layers[0])
    original = cls.__call__

    def checkpointed(layer, *args, **kwargs):
        def inner(params, *inner_args, **inner_kwargs):
            layer.update(params)
            return original(layer, *inner_args, **inner_kwargs)

        return mx.checkpoint(inner)(layer.trainable_parameters(), *args, **kwargs)

    cls.__call__ = checkpointed
    try:
        yield
    finally:
        cls.__call__ = original
