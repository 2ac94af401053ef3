"""random://<preset>: Mistral-architecture models with seeded random weights and the real tokenizer.

Used by the smoke study (mistral-tiny: the whole DAG in minutes) and by throughput benchmarks
(mistral-7b: the real shape). Weights are normal(0, initializer_range) like Hugging Face's init,
norms are ones, and every tensor draws from its own key derived from (seed, parameter name), so
the weights do not depend on creation order and `weights=false` + `load_model` rebuilds exactly
what `weights=true` would have written.

`weights=false` writes config + tokenizer + source.json only (a few MB): the Mistral-7B shape
would otherwise need 29 GB (float32) / 14.5 GB (bfloat16) on disk. Such a directory loads with
`mlx_instruct.sources.load_model` (lazy random init in memory), not with `mlx_lm.load`.
With weights=true the 7B model is written shard by shard (5 GB), so memory stays bounded.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten

from mlx_instruct.sources.common import (
    resolve_dtype,
    save_weights,
    write_config,
    write_source_json,
)
from mlx_instruct.sources.mistral_tokenizer import write_mistral_tokenizer
from mlx_instruct.sources.uri import ModelURI

# Mistral-7B-v0.1's config.json (the Hub's), the shape we reproduce.
MISTRAL_7B: dict[str, Any] = {
    "architectures": ["MistralForCausalLM"],
    "model_type": "mistral",
    "hidden_act": "silu",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 32000,
    "max_position_embeddings": 32768,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-5,
    "sliding_window": 4096,
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "initializer_range": 0.02,
}
PRESETS: dict[str, dict[str, Any]] = {
    "mistral-7b": MISTRAL_7B,
    "mistral-tiny": {
        **MISTRAL_7B,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
    },
}
# Query keys that are not config fields.
OPTIONS = {"seed": 0, "weights": True}
_SHAPE_KEYS = ("hidden_size", "num_attention_heads", "head_dim")


def _parse_value(key: str, text: str, default: Any, uri: str) -> Any:
    """Parse a query value to the type of the preset's default, naming the URI on failure."""
    lowered = text.strip().lower()
    try:
        if isinstance(default, bool):
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            return int(lowered)
        if isinstance(default, float):
            return float(lowered)
        if default is None or isinstance(default, list):
            return json.loads(text)
    except ValueError:
        kind = type(default).__name__
        raise ValueError(f"{uri}: query {key}={text!r} is not a valid {kind}") from None
    return text


def resolve_random(parsed: ModelURI) -> tuple[dict[str, Any], dict[str, Any]]:
    """The config and options (seed, weights) a random:// URI asks for."""
    preset = PRESETS.get(parsed.location)
    if preset is None:
        raise ValueError(
            f"{parsed.uri}: unknown random model preset {parsed.location!r}; "
            f"available: {sorted(PRESETS)}"
        )
    config = dict(preset)
    options = dict(OPTIONS)
    explicit_head_dim = "head_dim" in parsed.query
    for key, text in parsed.query.items():
        if key in options:
            options[key] = _parse_value(key, text, options[key], parsed.uri)
        elif key in config and key not in ("architectures", "model_type"):
            config[key] = _parse_value(key, text, config[key], parsed.uri)
        else:
            settable = sorted(k for k in config if k not in ("architectures", "model_type"))
            raise ValueError(
                f"{parsed.uri}: unknown query key {key!r}; settable: {sorted(options)} and "
                f"config fields {settable}"
            )
    if not explicit_head_dim:  # keep head_dim consistent when the width or head count changes
        config["head_dim"] = config["hidden_size"] // config["num_attention_heads"]
    if config["num_attention_heads"] % config["num_key_value_heads"]:
        raise ValueError(
            f"{parsed.uri}: num_attention_heads ({config['num_attention_heads']}) must be a "
            f"multiple of num_key_value_heads ({config['num_key_value_heads']})"
        )
    for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "vocab_size", "head_dim"):
        if config[key] <= 0:
            raise ValueError(f"{parsed.uri}: {key} must be positive, got {config[key]}")
    if config["vocab_size"] != 32000:
        raise ValueError(
            f"{parsed.uri}: vocab_size must stay 32000 (the Mistral v0.1 tokenizer's size)"
        )
    return config, options


def _param_key(seed: int, name: str) -> mx.array:
    return mx.random.key(zlib.crc32(f"{seed}:{name}".encode()))


def init_random_weights(
    model: nn.Module, config: dict[str, Any], seed: int, dtype: mx.Dtype
) -> None:
    """Seeded, order-independent, lazy init: normal(0, initializer_range); norms are ones."""
    std = float(config.get("initializer_range", 0.02))
    params = {}
    for name, value in tree_flatten(model.parameters()):
        if name.endswith("norm.weight") or value.ndim == 1:
            params[name] = mx.ones(value.shape, dtype=dtype)
        else:
            draw = mx.random.normal(value.shape, dtype=mx.float32, key=_param_key(seed, name))
            params[name] = (draw * std).astype(dtype)
    model.update(tree_unflatten(list(params.items())))


def build_random_model(config: dict[str, Any], seed: int, dtype: mx.Dtype) -> nn.Module:
    """An mlx_lm model of this config with seeded random weights (not yet evaluated)."""
    from mlx_lm.utils import _get_classes

    model_class, args_class = _get_classes(config)
    model = model_class(args_class.from_dict(config))
    init_random_weights(model, config, seed, dtype)
    model.eval()
    return model


def prepare_random(parsed: ModelURI, out_dir: Path, dtype: str) -> None:
    """Write config, tokenizer and (unless weights=false) seeded random weights into out_dir."""
    config, options = resolve_random(parsed)
    mx_dtype = resolve_dtype(dtype)
    steps = [f"config from preset {parsed.location} with overrides {parsed.query or {}}"]
    record: dict[str, Any] = {"uri": parsed.uri, "scheme": "random", "preset": parsed.location}
    record.update(write_mistral_tokenizer(out_dir))
    steps.append("tokenizer.json built from mistral-common's tokenizer.model.v1 (SentencePiece)")
    n_params = None
    if options["weights"]:
        model = build_random_model(config, options["seed"], mx_dtype)
        n_params = save_weights(out_dir, model)
        steps.append(f"weights: normal(0, {config['initializer_range']}) seed {options['seed']}")
    else:
        steps.append("weights not written (weights=false): use mlx_instruct.sources.load_model")
    write_config(out_dir, config)
    record.update(
        {
            "resolved": f"random:{parsed.location}",
            "sha256": None,
            "dtype": dtype,
            "seed": options["seed"],
            "weights_written": options["weights"],
            "parameters": n_params,
            "config": config,
            "steps": steps,
        }
    )
    write_source_json(out_dir, record)
