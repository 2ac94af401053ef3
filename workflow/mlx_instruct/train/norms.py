"""The step's per-layer norms as a few batched reductions instead of one kernel per leaf.

LoRA r32 on Mistral-7B has 448 trainable leaves and 224 LoRA modules. One squared-norm
reduction per leaf and two Gram products per module were 8% of a long H100 step (0.472 vs
0.436 s with the per-layer metrics off, `benchmarks/step_profile.py`); batched, every metric
on measured at or below metrics off (0.473 vs 0.497 s; Alpaca's widest batch 0.286 vs 0.288 s;
docs/training.md, "Third H100 session"), within the ±8% spread of those variants.

Arrays of one shape and dtype are stacked and reduced together. The stack is a copy, so only
arrays under `STACK_ELEMENTS` elements are stacked, in chunks of at most that many (LoRA's
groups at 7B hold 4M); larger arrays (full weights, where the kernel's own work dwarfs its
launch) are reduced alone as before.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import mlx.core as mx
import mlx.nn as nn
import numpy as np

STACK_ELEMENTS = 1 << 24


def chunks(keys: Sequence[Hashable], sizes: Sequence[int], limit: int) -> list[list[int]]:
    """Indices grouped by key, in first-seen order, each group's sizes summing to at most
    `limit`; an index whose size alone reaches `limit` is a group of its own."""
    open_groups: dict[Hashable, list[int]] = {}
    totals: dict[Hashable, int] = {}
    out: list[list[int]] = []
    for index, (key, size) in enumerate(zip(keys, sizes, strict=True)):
        if size >= limit:
            out.append([index])
            continue
        if key in open_groups and totals[key] + size > limit:
            del open_groups[key]
        if key not in open_groups:
            open_groups[key], totals[key] = [], 0
            out.append(open_groups[key])
        open_groups[key].append(index)
        totals[key] += size
    return out


def in_input_order(values: list[mx.array], groups: list[list[int]]) -> mx.array:
    """Concatenate per-group result vectors and put them back in the order of the inputs."""
    flat = mx.concatenate(values)
    order = [i for group in groups for i in group]
    if order == sorted(order):
        return flat
    return mx.take(flat, mx.array(np.argsort(order).astype(np.uint32)))


def batched(
    arrays: Sequence[mx.array], reduce: Callable[[mx.array], mx.array], single: Callable
) -> mx.array:
    """`reduce` over stacks of same-shape arrays (one value per stacked array), `single` over
    an array that stands alone; the values in input order."""
    groups = chunks([(a.shape, a.dtype) for a in arrays], [a.size for a in arrays], STACK_ELEMENTS)
    values = [
        single(arrays[g[0]]).reshape(1) if len(g) == 1 else reduce(mx.stack([arrays[i] for i in g]))
        for g in groups
    ]
    return in_input_order(values, groups)


def sq_norms(arrays: Sequence[mx.array], scale: mx.array | None = None) -> mx.array:
    """float32 squared L2 norm of each array (each times `scale` first), in input order."""

    def scaled(x: mx.array) -> mx.array:
        return x if scale is None else x * scale.astype(x.dtype)

    def stacked(x: mx.array) -> mx.array:
        return mx.square(scaled(x).astype(mx.float32)).reshape(x.shape[0], -1).sum(axis=1)

    def alone(x: mx.array) -> mx.array:
        return mx.sum(mx.square(scaled(x).astype(mx.float32)))

    return batched(arrays, stacked, alone)


def lora_delta_sq(lora: list[tuple[str, nn.Module]], scale: float | None) -> mx.array:
    """||scale * B A||^2 per LoRA module via r x r Gram matrices (no d x d product), the
    modules of one shape as one batched product."""
    s2 = float(scale or 1.0) ** 2
    pairs = [(m.lora_a, m.lora_b) for _, m in lora]
    sizes = [a.size + b.size for a, b in pairs]
    groups = chunks([(a.shape, b.shape) for a, b in pairs], sizes, STACK_ELEMENTS)
    values = []
    for group in groups:
        a = mx.stack([pairs[i][0] for i in group]).astype(mx.float32)  # (n, in, r)
        b = mx.stack([pairs[i][1] for i in group]).astype(mx.float32)  # (n, r, out)
        grams = (a.swapaxes(1, 2) @ a) * (b @ b.swapaxes(1, 2))
        values.append(s2 * grams.reshape(len(group), -1).sum(axis=1))
    return in_input_order(values, groups)
