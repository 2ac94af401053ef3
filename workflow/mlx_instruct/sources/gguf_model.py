"""GGUF (llama.cpp) file -> MLX model directory, without torch.

Why: the embedded default study's base model (SmolLM2-135M-Instruct) reaches this machine only
as a GGUF inside a PyPI wheel. Only the `llama` architecture is supported (Llama, Mistral,
SmolLM2 all use it in GGUF). Tensors are dequantized to float (then cast to the dtype asked for):
  - F32/F16/Q4_0/Q4_1/Q8_0 files are read by `mx.load`, which returns Q* tensors as MLX affine
    quantized weight/scales/biases (group size 32), dequantized with float32 scales;
  - other quant types the `gguf` package can dequantize (BF16, Q5_*, K-quants, IQ4_*) are read
    with `gguf.GGUFReader` + `gguf.quants.dequantize` (numpy);
  - anything else raises ValueError naming the file, tensor and type.
llama.cpp's converter permutes the rows of Q and K for its interleaved ("traditional") RoPE. We
undo that permutation so the directory is a standard Hugging Face Llama checkpoint (rotate-half
RoPE, `rope_traditional: false`), loadable by mlx_lm, transformers and re-exportable to GGUF.
Keeping llama.cpp's layout with `rope_traditional: true` gives the same logits (checked: SmolLM2
perplexity 18.42 and 3.976 either way); the standard layout is the portable one.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np

from mlx_instruct.sources.common import (
    resolve_dtype,
    save_weights,
    sha256_file,
    write_config,
    write_source_json,
    write_tokenizer_files,
)
from mlx_instruct.sources.gguf_tokenizer import tokenizer_from_gguf

SUPPORTED_ARCHITECTURES = ("llama",)
MLX_NATIVE_TYPES = {"F32", "F16", "Q4_0", "Q4_1", "Q8_0"}
NUMPY_TYPES = {"BF16", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"}
GROUP_SIZE = 32  # mx.load returns GGUF Q4_0/Q4_1/Q8_0 blocks as affine groups of 32
LAYER_MAP = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
GLOBAL_MAP = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_BLOCK_RE = re.compile(r"^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$")
_GLOBAL_RE = re.compile(r"^([a-z_]+)\.(weight|bias)$")


def read_gguf(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """GGUF metadata as plain Python values, and {tensor name: GGML type name}."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as error:
        raise ValueError(f"{path}: not a readable GGUF file ({error})") from error
    meta = {name: field.contents() for name, field in reader.fields.items()}
    types = {tensor.name: tensor.tensor_type.name for tensor in reader.tensors}
    return meta, types


def _hf_name(gguf_name: str, source: str) -> str:
    if match := _BLOCK_RE.match(gguf_name):
        layer, part, kind = match.groups()
        if part in LAYER_MAP:
            return f"model.layers.{layer}.{LAYER_MAP[part]}.{kind}"
    elif (match := _GLOBAL_RE.match(gguf_name)) and match.group(1) in GLOBAL_MAP:
        return f"{GLOBAL_MAP[match.group(1)]}.{match.group(2)}"
    raise ValueError(
        f"{source}: unsupported tensor {gguf_name!r} for a llama GGUF (e.g. rope_freqs of "
        "Llama 3 rope scaling is not converted)"
    )


def _unpermute(x: mx.array, n_head: int) -> mx.array:
    """Undo llama.cpp's Q/K row permutation (interleaved RoPE -> Hugging Face rotate-half)."""
    rows = x.shape[0]
    return x.reshape(n_head, rows // n_head // 2, 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)


def _f32(value: Any) -> float:
    """A GGUF float32 as the decimal it was written from (9.99999974e-06 -> 1e-05)."""
    return float(f"{float(value):.7g}")


def _config_from_meta(meta: dict[str, Any], source: str) -> dict[str, Any]:
    arch = meta.get("general.architecture")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ValueError(
            f"{source}: unsupported GGUF architecture {arch!r}; supported: "
            f"{list(SUPPORTED_ARCHITECTURES)}"
        )

    def get(key: str, default: Any = None) -> Any:
        value = meta.get(f"{arch}.{key}", default)
        if value is None:
            raise ValueError(f"{source}: GGUF metadata lacks {arch}.{key}")
        return value

    hidden, heads = int(get("embedding_length")), int(get("attention.head_count"))
    head_dim = int(meta.get(f"{arch}.attention.key_length", hidden // heads))
    rotary = int(meta.get(f"{arch}.rope.dimension_count", head_dim))
    if rotary != head_dim:
        raise ValueError(
            f"{source}: partial rotary embeddings ({rotary} of {head_dim}) unsupported"
        )
    scaling = meta.get(f"{arch}.rope.scaling.type", "none")
    rope_scaling = None
    if scaling == "linear":
        rope_scaling = {"type": "linear", "factor": float(get("rope.scaling.factor"))}
    elif scaling != "none":
        raise ValueError(
            f"{source}: unsupported RoPE scaling {scaling!r} (supported: none, linear)"
        )
    tokens = meta.get("tokenizer.ggml.tokens") or []
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_act": "silu",
        "hidden_size": hidden,
        "intermediate_size": int(get("feed_forward_length")),
        "num_hidden_layers": int(get("block_count")),
        "num_attention_heads": heads,
        "num_key_value_heads": int(meta.get(f"{arch}.attention.head_count_kv", heads)),
        "head_dim": head_dim,
        "rms_norm_eps": _f32(get("attention.layer_norm_rms_epsilon")),
        "rope_theta": _f32(meta.get(f"{arch}.rope.freq_base", 10000.0)),
        "rope_scaling": rope_scaling,
        "rope_traditional": False,
        "max_position_embeddings": int(meta.get(f"{arch}.context_length", 2048)),
        "vocab_size": int(meta.get(f"{arch}.vocab_size", len(tokens))),
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": True,
    }
    for key in ("bos", "eos", "padding"):
        if (value := meta.get(f"tokenizer.ggml.{key}_token_id")) is not None:
            config[f"{'pad' if key == 'padding' else key}_token_id"] = int(value)
    return config


def _load_tensors(path: Path, types: dict[str, str], source: str) -> dict[str, mx.array]:
    """All tensors of the file, dequantized to float32 (see the module docstring)."""
    used = set(types.values())
    bad = sorted(
        {(name, kind) for name, kind in types.items() if kind not in MLX_NATIVE_TYPES | NUMPY_TYPES}
    )
    if bad:
        raise ValueError(
            f"{source}: unsupported GGUF tensor type(s) {sorted({k for _, k in bad})} (first: "
            f"{bad[0][0]}); supported: {sorted(MLX_NATIVE_TYPES | NUMPY_TYPES)}"
        )
    out: dict[str, mx.array] = {}
    if used <= MLX_NATIVE_TYPES:
        raw = mx.load(str(path))
        for name in types:
            base = name.removesuffix(".weight")
            if name.endswith(".weight") and f"{base}.scales" in raw:
                weight, scales = raw[name], raw[f"{base}.scales"]
                biases = raw[f"{base}.biases"]
                bits = weight.shape[-1] * 32 // (scales.shape[-1] * GROUP_SIZE)
                out[name] = mx.dequantize(
                    weight,
                    scales.astype(mx.float32),
                    biases.astype(mx.float32),
                    group_size=GROUP_SIZE,
                    bits=bits,
                )
            else:
                out[name] = raw[name].astype(mx.float32)
        return out
    import gguf

    reader = gguf.GGUFReader(str(path))
    for tensor in reader.tensors:
        values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        shape = tuple(int(n) for n in reversed(tensor.shape))
        out[tensor.name] = mx.array(np.ascontiguousarray(values, dtype=np.float32).reshape(shape))
    return out


def convert_gguf(
    path: Path, out_dir: Path, dtype: str, *, uri: str, extra: dict | None = None
) -> None:
    """Write an MLX model directory for the GGUF file at path into out_dir."""
    from mlx_lm.utils import _get_classes

    source = f"{uri} ({path})" if str(path) not in uri else uri
    if not path.is_file():
        raise FileNotFoundError(f"{source}: GGUF file not found; expected an existing .gguf file")
    mx_dtype = resolve_dtype(dtype)
    meta, types = read_gguf(path)
    config = _config_from_meta(meta, source)
    tokenizer, tok_config = tokenizer_from_gguf(meta, source)
    tensors = _load_tensors(path, types, source)
    weights = {}
    for name in list(tensors):
        value = tensors.pop(name)  # free each float32 tensor once it is cast
        hf = _hf_name(name, source)
        if ".self_attn.q_proj." in hf:
            value = _unpermute(value, config["num_attention_heads"])
        elif ".self_attn.k_proj." in hf:
            value = _unpermute(value, config["num_key_value_heads"])
        weights[hf] = value.astype(mx_dtype)
    if "lm_head.weight" in weights:
        config["tie_word_embeddings"] = False
    if any(name.endswith(".bias") and "self_attn" in name for name in weights):
        config["attention_bias"] = True
    model_class, args_class = _get_classes(config)
    model = model_class(args_class.from_dict(config))
    try:
        model.load_weights(list(weights.items()), strict=True)
    except ValueError as error:
        raise ValueError(
            f"{source}: tensors do not match a {config['model_type']} model: {error}"
        ) from error
    model.eval()
    n_params = save_weights(out_dir, model)
    write_config(out_dir, config)
    tok_config.setdefault("model_max_length", config["max_position_embeddings"])
    write_tokenizer_files(out_dir, tokenizer.to_str(), tok_config)
    write_source_json(out_dir, _source_record(path, uri, dtype, meta, types, n_params, extra))


def _source_record(
    path: Path,
    uri: str,
    dtype: str,
    meta: dict[str, Any],
    types: dict[str, str],
    n_params: int,
    extra: dict | None,
) -> dict[str, Any]:
    """source.json: where the weights came from and what was done to them."""
    return {
        "uri": uri,
        "scheme": "gguf",
        "resolved": str(path.resolve()),
        "sha256": sha256_file(path),
        "dtype": dtype,
        "parameters": n_params,
        "gguf": {
            "name": meta.get("general.name"),
            "architecture": meta.get("general.architecture"),
            "file_type": meta.get("general.file_type"),
            "tensor_types": dict(Counter(types.values())),
            "tokenizer_model": meta.get("tokenizer.ggml.model"),
            "pre_tokenizer": meta.get("tokenizer.ggml.pre"),
        },
        "steps": [
            f"dequantized {dict(Counter(types.values()))} tensors to float32, cast to {dtype}",
            "un-permuted Q/K rows to Hugging Face rotate-half RoPE layout (rope_traditional false)",
            "tokenizer.json built from tokenizer.ggml.* metadata; chat template kept",
        ],
        **(extra or {}),
    }
