"""Shared pieces of the model sources: dtypes, hashing, provenance, weight and tokenizer files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_map

from mlx_instruct.io import sha256_file  # noqa: F401  (re-exported for the sources)
from mlx_instruct.provenance import MODEL_PACKAGES, package_versions

DTYPES: dict[str, mx.Dtype] = {
    "float32": mx.float32,
    "bfloat16": mx.bfloat16,
    "float16": mx.float16,
}


def resolve_dtype(dtype: str) -> mx.Dtype:
    """The MLX dtype for a name; float32 is the right choice on CPUs, bfloat16 on Metal/CUDA."""
    try:
        return DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unsupported dtype {dtype!r}; expected one of {sorted(DTYPES)}") from None


def default_cache_dir() -> Path:
    """Where downloads are cached: $MLX_INSTRUCT_CACHE or ~/.cache/mlx-instruct."""
    return Path(os.environ.get("MLX_INSTRUCT_CACHE") or "~/.cache/mlx-instruct").expanduser()


def versions() -> dict[str, str]:
    """Versions of the packages that decide the bytes we write (for source.json)."""
    from mlx_instruct import __version__

    return {**package_versions(MODEL_PACKAGES), "mlx-instruct": __version__}


def write_source_json(out_dir: Path, record: dict[str, Any]) -> None:
    """Record where the model came from and what was done to it."""
    record = {**record, "versions": versions()}
    (out_dir / "source.json").write_text(json.dumps(record, indent=2, default=str) + "\n")


def write_config(out_dir: Path, config: dict[str, Any]) -> None:
    (out_dir / "config.json").write_text(json.dumps(dict(sorted(config.items())), indent=2) + "\n")


def cast_floating(model: nn.Module, dtype: mx.Dtype) -> None:
    """Cast floating-point parameters to dtype; packed quantized weights stay as they are."""

    def cast(value: mx.array) -> mx.array:
        return value.astype(dtype) if mx.issubdtype(value.dtype, mx.floating) else value

    model.update(tree_map(cast, model.parameters()))


def save_weights(out_dir: Path, model: nn.Module) -> int:
    """Write the model's parameters as (sharded) safetensors; return the parameter count.

    Uses mlx_lm's writer (5 GB shards) and donates the model, so lazily-initialised weights are
    evaluated one shard at a time and memory stays bounded by a shard.
    """
    from mlx_lm.utils import save_model

    count = sum(value.size for _, value in tree_flatten(model.parameters()))
    save_model(out_dir, model, donate_model=True)
    return count


def write_tokenizer_files(
    out_dir: Path, tokenizer_json: str, tokenizer_config: dict[str, Any]
) -> None:
    """Write tokenizer.json + tokenizer_config.json (+ special_tokens_map.json)."""
    (out_dir / "tokenizer.json").write_text(tokenizer_json)
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",  # load tokenizer.json exactly as written
        "clean_up_tokenization_spaces": False,
        **tokenizer_config,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    special = {
        key: config[key]
        for key in ("bos_token", "eos_token", "unk_token", "pad_token")
        if config.get(key)
    }
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
