"""KV-cache prefix sharing, for generation and scoring alike.

Requests whose token sequences share a long prefix (few-shot exemplars, a shared
instruction, the choices of one question) run that prefix once (batch 1); its KV cache then
seeds every one of them. `prefix_clusters` finds the groups, `prefix_cache` runs a prefix.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn


def prefix_cache(model: nn.Module, prefix: list[int]) -> list | None:
    """KV caches of the model after `prefix` (batch 1), or None when the model's caches are
    not plain KVCaches (then callers score full sequences)."""
    from mlx_lm.models.cache import KVCache, make_prompt_cache

    cache = make_prompt_cache(model)
    if not cache or not all(type(c) is KVCache for c in cache):
        return None
    tokens = mx.array(prefix)[None]
    for start in range(0, len(prefix), 2048):
        model(tokens[:, start : start + 2048], cache=cache)
        mx.eval([c.state for c in cache])
    return cache


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def prefix_clusters(contexts: list[list[int]], min_prefix: int) -> list[tuple[list[int], int]]:
    """Group request indices whose contexts share a prefix of >= min_prefix tokens (few-shot
    exemplars, a shared instruction, the choices of one question). Returns (members, prefix
    length); the prefix always leaves >= 1 context token per member, whose logits score the
    continuation's first token. Unshared requests come back with prefix length 0.

    Two greedy passes over the sorted contexts: the first only lets a request join a group
    if the group keeps at least half of its shared prefix (so the few contexts that differ
    early, e.g. few-shot items whose own exemplar was swapped out, do not cut a long shared
    prefix short); the second groups what the first left alone."""

    def greedy(indices: list[int], keep: float) -> list[tuple[list[int], int]]:
        clusters: list[tuple[list[int], int]] = []
        members: list[int] = []
        shared = 0
        for i in indices:
            if members:
                lcp = min(shared, _common_prefix(contexts[members[-1]], contexts[i]))
                lcp = min(lcp, len(contexts[i]) - 1)
                if lcp >= min_prefix and lcp >= keep * shared:
                    members.append(i)
                    shared = lcp
                    continue
                clusters.append((members, shared if len(members) > 1 else 0))
            members, shared = [i], len(contexts[i]) - 1
        if members:
            clusters.append((members, shared if len(members) > 1 else 0))
        return clusters

    order = sorted(range(len(contexts)), key=lambda i: contexts[i])
    first = greedy(order, 0.5)
    grouped = [c for c in first if c[1]]
    alone = [m[0] for m, n in first if not n]
    return grouped + greedy(alone, 0.0)
