"""hf://org/name and local model directories: load with mlx_lm, save as an MLX directory.

Both go through `mlx_lm.utils.load_model` (which sanitizes Hugging Face checkpoints into MLX
names) and mlx_lm's own writers, so the result is exactly what `mlx_lm.convert` would write,
minus quantization. Quantized MLX checkpoints keep their quantization; float parameters are
cast to the requested dtype.
"""

from __future__ import annotations

import glob
import shutil
from pathlib import Path
from typing import Any

from mlx_instruct.sources.common import (
    cast_floating,
    resolve_dtype,
    save_weights,
    sha256_file,
    write_source_json,
)
from mlx_instruct.sources.uri import ModelURI

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "chat_template.jinja",
    "chat_template.json",
    "generation_config.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
)


def check_model_dir(path: Path, uri: str) -> list[Path]:
    """Validate a local model directory; return its safetensors files."""
    if not path.exists():
        raise FileNotFoundError(f"{uri}: no such file or directory {path}")
    if not path.is_dir():
        raise ValueError(
            f"{uri}: {path} is a file; expected a model directory (config.json + "
            "model*.safetensors) or a .gguf file"
        )
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{uri}: {path} has no config.json; expected an MLX or Hugging Face model directory "
            "(config.json + model*.safetensors + tokenizer files)"
        )
    weights = sorted(Path(p) for p in glob.glob(str(path / "model*.safetensors")))
    if not weights:
        found = sorted(p.name for p in path.iterdir())[:20]
        raise FileNotFoundError(
            f"{uri}: {path} has no model*.safetensors weights (only safetensors are supported; "
            f"found {found})"
        )
    return weights


def download_hf(parsed: ModelURI) -> Path:
    """Snapshot-download an hf:// repo with mlx_lm's file patterns; clear error when offline."""
    from mlx_lm.utils import _download

    revision = parsed.query.get("revision")
    try:
        return _download(parsed.location, revision=revision)
    except Exception as error:  # huggingface_hub raises many types; name the cause
        raise ConnectionError(
            f"{parsed.uri}: could not fetch {parsed.location!r} from the Hugging Face Hub "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). "
            "Check the network (or HF_HUB_OFFLINE with a filled cache), the repo id and, for "
            "gated models, `hf auth login`."
        ) from error


def copy_model_dir(src: Path, out_dir: Path, dtype: str, *, parsed: ModelURI) -> None:
    """Load the model in src with mlx_lm and write it, cast to dtype, into out_dir."""
    from mlx_lm.utils import load_model, save_config

    weight_files = check_model_dir(src, parsed.uri)
    try:
        model, config = load_model(src, lazy=True)
    except ValueError as error:
        raise ValueError(f"{parsed.uri}: mlx_lm cannot load {src}: {error}") from error
    cast_floating(model, resolve_dtype(dtype))
    n_params = save_weights(out_dir, model)
    save_config(dict(config), out_dir / "config.json")
    copied = []
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, out_dir / name)
            copied.append(name)
    if "tokenizer.json" not in copied and "tokenizer.model" not in copied:
        raise FileNotFoundError(
            f"{parsed.uri}: {src} has no tokenizer (tokenizer.json or tokenizer.model expected)"
        )
    hashes = {p.name: sha256_file(p) for p in weight_files}
    record: dict[str, Any] = {
        "uri": parsed.uri,
        "scheme": parsed.scheme,
        "resolved": str(src.resolve()),
        "sha256": hashes[weight_files[0].name] if len(hashes) == 1 else hashes,
        "dtype": dtype,
        "parameters": n_params,
        "steps": [
            "loaded with mlx_lm.utils.load_model (sanitized to MLX names)",
            f"cast floating parameters to {dtype}",
            f"copied tokenizer files {copied}",
        ],
    }
    if parsed.scheme == "hf":
        record["revision"] = parsed.query.get("revision")
        record["snapshot"] = src.name  # the commit hash of the Hub snapshot
    write_source_json(out_dir, record)
