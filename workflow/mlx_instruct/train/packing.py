"""Sequence packing (`data.packing`): several training examples per row, each kept alone.

Why: instruction examples are short (Alpaca-like, ~100 tokens) and vary in length, so a
padded micro-batch spends part of its compute on padding and every padded width is one
more compiled variant. Packing puts whole examples into rows of at most `max_seq_len`
tokens (best-fit decreasing, ties broken by a seeded draw), so rows are nearly full and
nearly all micro-batches have one width.

Exactness: each row carries a segment id per token (-1 for padding). Attention is causal
and within one segment (a block-diagonal mask), and target position t counts only when
tokens t and t+1 belong to one example and t+1 is one of its response tokens, so no
position predicts across an example boundary. Positions are not restarted: RoPE makes a
query-key score depend only on their distance, and the mask keeps every pair inside one
example, so a packed example's hidden states equal its unpacked ones up to float rounding.
`packed_body` checks that on the model itself at start and refuses a model where it does
not hold (absolute positions, sliding-window layers, a body that is not embed -> layers ->
norm), so packing never trains on a silently different function.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from mlx_instruct.config import ConfigError

PROBE_LENGTHS = (5, 7)  # two examples of the start-up check, packed into one row
# The start-up check's bound on the relative error of packed hidden states: rounding in the
# body's dtype (float32 keeps ~1e-6; a random Mistral-7B in bfloat16 gave 0.043 on an H100,
# 32 layers of rounding), far below what absolute positions give (order 1).
ALLOWED_ERROR = {mx.float32: 1e-4, mx.float16: 0.1, mx.bfloat16: 0.1}


def pack(lengths: Sequence[int], capacity: int, seed: int) -> list[list[int]]:
    """Indices of `lengths` grouped into rows whose lengths sum to at most `capacity`.

    Best-fit decreasing: longest first, each into the fullest row it still fits. The
    seed orders equal lengths, so it decides which of them share a row; the result is a
    function of (lengths, capacity, seed) alone, which lets a resumed run rebuild it.
    """
    if capacity < 1:
        raise ValueError(f"pack: capacity must be >= 1, got {capacity}")
    too_long = [i for i, n in enumerate(lengths) if not 0 < n <= capacity]
    if too_long:
        raise ValueError(
            f"pack: item {too_long[0]} has length {lengths[too_long[0]]}, expected 1..{capacity}"
        )
    draw = np.random.default_rng([seed, capacity]).permutation(len(lengths))
    order = sorted(draw.tolist(), key=lambda i: -lengths[i])  # stable: the draw breaks ties
    rows: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, row), sorted
    for i in order:
        at = bisect.bisect_left(free, (lengths[i], -1))
        if at == len(free):
            rows.append([i])
            room, row = capacity - lengths[i], len(rows) - 1
        else:
            room, row = free.pop(at)
            rows[row].append(i)
            room -= lengths[i]
        if room > 0:
            bisect.insort(free, (room, row))
    return rows


@dataclass
class Rows:
    """A micro-batch's token rows, read as next-token inputs and targets; a subclass says
    which positions the loss counts (`mask`). What the step functions take."""

    tokens: np.ndarray  # (B, W) int32, W = 1 + multiple of 32 (or max_seq_len)

    @property
    def inputs(self) -> np.ndarray:
        return self.tokens[:, :-1]

    @property
    def targets(self) -> np.ndarray:
        return self.tokens[:, 1:]

    @property
    def mask(self) -> np.ndarray:
        raise NotImplementedError

    @property
    def n_loss_tokens(self) -> int:
        return int(self.mask.sum())


@dataclass
class PackedBatch(Rows):
    """One micro-batch of packed rows."""

    segments: np.ndarray  # (B, W) int32: the example's place in its row, -1 for padding
    response: np.ndarray  # (B, W) bool: the token is a response token of its example
    lengths: np.ndarray  # (B,) real tokens per row

    @property
    def input_segments(self) -> np.ndarray:
        return self.segments[:, :-1]

    @property
    def mask(self) -> np.ndarray:
        """(B, W-1) bool: the next token is a response token of this position's example."""
        here, after = self.segments[:, :-1], self.segments[:, 1:]
        return self.response[:, 1:] & (after == here) & (after >= 0)

    @property
    def n_tokens(self) -> int:
        """Real (non-padding) tokens this batch feeds the model."""
        return int((self.input_segments >= 0).sum())


def collate_rows(rows: Sequence[Sequence[Any]], max_seq_len: int, pad_to: int) -> PackedBatch:
    """Packed rows of examples (each with input_ids and prompt_len), right-padded to
    1 + a multiple of `pad_to` tokens, capped at `max_seq_len` (as `batching.collate`)."""
    fills = [sum(len(ex.input_ids) for ex in row) for row in rows]
    if max(fills) > max_seq_len:
        raise ValueError(f"a packed row of {max(fills)} tokens exceeds max_seq_len {max_seq_len}")
    width = min(1 + pad_to * ((max(fills) + pad_to - 1) // pad_to), max_seq_len)
    tokens = np.zeros((len(rows), width), np.int32)
    segments = np.full((len(rows), width), -1, np.int32)
    response = np.zeros((len(rows), width), bool)
    for r, row in enumerate(rows):
        at = 0
        for s, ex in enumerate(row):
            n = len(ex.input_ids)
            tokens[r, at : at + n] = ex.input_ids
            segments[r, at : at + n] = s
            response[r, at + ex.prompt_len : at + n] = True
            at += n
    return PackedBatch(tokens, segments, response, np.array(fills, np.int32))


def input_segments(batch: Any) -> np.ndarray:
    """Segment ids of a batch's input positions; a padded `Batch` is one example per row."""
    if isinstance(batch, PackedBatch):
        return batch.input_segments
    positions = np.arange(batch.tokens.shape[1] - 1)[None, :]
    return np.where(positions < batch.lengths[:, None], 0, -1).astype(np.int32)


def attention_mask(segments: mx.array) -> mx.array:
    """(B, 1, T, T) bool: causal and within one segment (what SDPA broadcasts over heads)."""
    t = segments.shape[1]
    causal = mx.arange(t)[:, None] >= mx.arange(t)[None, :]
    same = segments[:, :, None] == segments[:, None, :]
    return mx.expand_dims(same & causal, 1)


def packed_body(model: nn.Module, body: Callable) -> Callable:
    """body(inputs, segments): `model`'s own layers under the block-diagonal mask, checked
    at start against the unpacked `body(inputs)`; a ConfigError names what does not fit.

    mlx_lm's model bodies build their causal mask internally and take none, so this runs
    the same embedding, layers and final norm with the mask passed to each layer.
    """
    inner = getattr(model, "model", None)
    parts = ("embed_tokens", "layers", "norm")
    if inner is None or not all(hasattr(inner, p) for p in parts):
        raise ConfigError(
            f"data.packing: {type(model).__module__} has no model.{'/'.join(parts)} to run "
            "under a packing mask; set data.packing: false for this model"
        )
    if any(getattr(layer, "use_sliding", False) for layer in inner.layers):
        raise ConfigError(
            "data.packing: the model has sliding-window attention layers, whose window "
            "the packing mask would drop; set data.packing: false for this model"
        )

    def packed(inputs: mx.array, segments: mx.array) -> mx.array:
        h = inner.embed_tokens(inputs)
        mask = attention_mask(segments)
        for layer in inner.layers:
            h = layer(h, mask)
        return inner.norm(h)

    error, allowed = _probe(model, body, packed)
    if not error <= allowed:  # also NaN
        raise ConfigError(
            "data.packing: on this model a packed example's hidden states differ from the "
            f"unpacked ones (relative error {error:.2g} > {allowed:g}; positions must be "
            "relative, as with RoPE); set data.packing: false for this model"
        )
    return packed


def _probe(model: nn.Module, body: Callable, packed: Callable) -> tuple[float, float]:
    """(relative error of two examples packed into one row against each alone, the error
    rounding allows in the model's dtype); inf when the packed forward fails."""
    vocab = model.model.embed_tokens.weight.shape[0]
    ids = [(np.arange(n) * 7919 + 3 * k + 1) % vocab for k, n in enumerate(PROBE_LENGTHS)]
    segments = np.concatenate([np.full(len(x), s) for s, x in enumerate(ids)])
    training = model.training
    model.eval()  # no dropout in either forward
    try:
        alone = mx.concatenate([body(mx.array(x[None], mx.int32)) for x in ids], axis=1)
        row = packed(mx.array(np.concatenate(ids)[None], mx.int32), mx.array(segments[None]))
        allowed = ALLOWED_ERROR.get(alone.dtype, ALLOWED_ERROR[mx.bfloat16])
        alone, row = alone.astype(mx.float32), row.astype(mx.float32)
        return (mx.linalg.norm(row - alone) / mx.linalg.norm(alone)).item(), allowed
    except Exception:  # noqa: BLE001 - any failure means: this model cannot be packed
        return float("inf"), 0.0
    finally:
        model.train(training)
