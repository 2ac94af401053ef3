"""Batched generation and log-likelihood scoring on an MLX model (KV cache, continuous batching).

Generation runs on mlx_lm's `BatchGenerator` (continuous batching: a prompt batch is
right-padded, prefilled, and its KV cache is rolled to left padding, then all active
sequences decode one token per step with one forward pass; finished sequences leave the
batch and waiting prompts join it). On top of it this module adds what the evaluators need:
text-level stop sequences (matched on decoded text, so a stop string is found whatever
tokens it spans), EOS stop, a hard `max_tokens` cap that always applies, seeded sampling,
and per-request accounting (`Generation`).

Log-likelihoods: requests whose contexts share a prefix (few-shot exemplars, a shared
instruction, the choices of one question) run that prefix once (batch 1) and score the rest
of every request in right-padded batches over copies of its KV cache; other requests run as
right-padded full sequences. Right padding only ever follows real tokens, so it is exact
for a causal model. Only the scored positions go through log-softmax.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from mlx_instruct.data.tokenize import encode, encode_prompt, eos_ids, start_id

__all__ = ["Generation", "encode_prompt", "generate", "loglikelihood", "rolling_loglikelihood"]

HARD_MAX_TOKENS = 8192  # never-ending generation guard, whatever the caller asks
DEFAULT_MAX_TOKENS = 128
DEFAULT_BATCH_SIZE = 16
LOGLIK_TOKEN_BUDGET = 4096  # padded tokens per scoring forward pass (bounds the logits' memory)
LOGLIK_KV_BUDGET = 16384  # rows x (prefix + tail) tokens of KV cache per prefix-sharing pass
MAX_CONTEXT = 2048  # scoring inputs longer than this keep their last MAX_CONTEXT tokens
# generation shares a prompt prefix only when it is at least this fraction of every prompt
# (SmolLM2, CPU: 87% shared -> prefill 4.7x faster; 52% shared -> no gain)
PREFIX_SHARE_FRACTION = 0.75


@dataclass
class Generation:
    """One request's completion.

    text: the decoded completion, truncated before the first stop string (EOS not included).
    prompt_tokens: tokens of the encoded prompt (BOS included where the tokenizer adds one).
    generated_tokens: decode steps the model ran for this request (counts the EOS token or the
      tokens of a matched stop string: the work done, for throughput).
    finish_reason: "stop" (EOS or a stop string) or "length" (max_tokens reached).
    latency_s: wall time from when the request entered the running batch (prefill start) to
      its last token; under batching this is its share of the batch's wall time.
    token_ids: the generated token ids (up to and excluding EOS).
    """

    text: str
    prompt_tokens: int
    generated_tokens: int
    finish_reason: str
    latency_s: float
    token_ids: list[int] = field(default_factory=list, repr=False)


def _find_stop(text: str, stop: list[str], start: int) -> int:
    """Index of the earliest stop string in text[start:] (or -1)."""
    best = -1
    for s in stop:
        idx = text.find(s, start)
        if idx != -1 and (best == -1 or idx < best):
            best = idx
    return best


def generate(
    model: nn.Module,
    tokenizer: Any,
    prompts: list[str] | list[list[int]],
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    temperature: float = 0.0,
    top_p: float = 0.0,
    stop: list[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    prefill_step_size: int = 2048,
    share_prefix: bool = True,
    min_prefix: int = 64,
) -> list[Generation]:
    """Complete every prompt (strings are encoded with `encode_prompt`; ids used as given).

    Greedy at temperature 0, else sampled from a sampler seeded with `seed` (the same prompts,
    batch size and seed give the same samples). At most `batch_size` sequences decode at once.
    Prompts that share a prefix of >= `min_prefix` tokens (few-shot exemplars) run it once:
    its KV cache seeds each of them (mlx_lm merges per-sequence caches into the batch cache).
    """
    from mlx_lm.generate import BatchGenerator
    from mlx_lm.sample_utils import make_sampler

    if not prompts:
        return []
    max_tokens = int(max_tokens)
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    max_tokens = min(max_tokens, HARD_MAX_TOKENS)
    batch_size = max(1, int(batch_size))
    stop = [s for s in (stop or []) if s]
    encoded = [list(p) if not isinstance(p, str) else encode_prompt(tokenizer, p) for p in prompts]

    if temperature and temperature > 0:
        mx.random.seed(seed)
        sampler = make_sampler(temp=float(temperature), top_p=float(top_p))
    else:
        sampler = None  # BatchGenerator's greedy (argmax) sampler

    eos = eos_ids(tokenizer)
    gen = BatchGenerator(
        model,
        max_tokens=max_tokens,
        stop_tokens=[[t] for t in eos],
        sampler=sampler,
        completion_batch_size=batch_size,
        prefill_batch_size=batch_size,
        prefill_step_size=prefill_step_size,
    )
    inputs, caches = list(encoded), None
    if share_prefix and len(encoded) > 1:
        caches = [None] * len(encoded)
        for members, prefix_len in _prefix_clusters(encoded, min_prefix):
            shortest = min(len(encoded[m]) for m in members)
            if prefix_len < PREFIX_SHARE_FRACTION * shortest:
                continue  # measured: a shorter shared prefix does not speed prefill up
            cache = _prefix_cache(model, encoded[members[0]][:prefix_len])
            if cache is None:
                continue
            for m in members:  # one shared object: merging into the batch only reads it
                caches[m] = cache
                inputs[m] = encoded[m][prefix_len:]
        if not any(c is not None for c in caches):
            caches = None
    uids = gen.insert(inputs, [max_tokens] * len(encoded), caches=caches)
    index = {uid: i for i, uid in enumerate(uids)}
    tokens: list[list[int]] = [[] for _ in encoded]
    steps = [0] * len(encoded)
    texts: list[str | None] = [None] * len(encoded)
    reasons = ["length"] * len(encoded)
    started: list[float | None] = [None] * len(encoded)
    ended = [0.0] * len(encoded)
    scanned = [0] * len(encoded)  # decoded-text prefix already searched for stop strings
    longest_stop = max((len(s) for s in stop), default=0)
    remaining = len(encoded)
    try:
        while remaining:
            prompt_responses, responses = gen.next()
            now = time.perf_counter()
            for r in prompt_responses:
                if started[index[r.uid]] is None:
                    started[index[r.uid]] = now
            if not responses and not prompt_responses:
                break  # the generator is empty (cannot happen while requests remain)
            stopped = []  # finished on a stop string: still running inside the generator
            for r in responses:
                i = index[r.uid]
                if started[i] is None:
                    started[i] = now
                steps[i] += 1
                done = r.finish_reason is not None
                if r.finish_reason == "stop":  # EOS: not part of the text
                    reasons[i] = "stop"
                else:
                    tokens[i].append(r.token)
                    if stop:
                        text = tokenizer.decode(tokens[i])
                        hit = _find_stop(text, stop, max(0, scanned[i] - longest_stop))
                        scanned[i] = len(text)
                        if hit != -1:
                            texts[i], reasons[i] = text[:hit], "stop"
                            if not done:
                                stopped.append(r.uid)
                            done = True
                if done:
                    ended[i] = now
                    remaining -= 1
            if stopped:
                gen.remove(stopped)
    finally:
        gen.close()

    out = []
    for i, ids in enumerate(tokens):
        text = texts[i] if texts[i] is not None else tokenizer.decode(ids)
        if stop and texts[i] is None:  # stop string completed only in the final decode
            hit = _find_stop(text, stop, 0)
            if hit != -1:
                text, reasons[i] = text[:hit], "stop"
        out.append(
            Generation(
                text=text,
                prompt_tokens=len(encoded[i]),
                generated_tokens=steps[i],
                finish_reason=reasons[i],
                latency_s=max(0.0, ended[i] - (started[i] or ended[i])),
                token_ids=ids,
            )
        )
    return out


def _split_context(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's convention: trailing spaces of the context belong to the continuation; the
    continuation's tokens are those of context+continuation after the context's tokens."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = encode_prompt(tokenizer, context + continuation)
    ctx = encode_prompt(tokenizer, context) if context else []
    if not context:
        first = start_id(tokenizer)
        if not whole or whole[0] != first:
            whole = [first, *whole]
        ctx = [first]
    n_ctx = len(ctx)
    # a merge across the boundary can make the shared prefix shorter than the context
    while n_ctx > 0 and whole[:n_ctx] != ctx[:n_ctx]:
        n_ctx -= 1
    n_ctx = max(1, min(n_ctx, len(whole) - 1))
    return whole[:n_ctx], whole[n_ctx:]


def _prefix_cache(model: nn.Module, prefix: list[int]) -> list | None:
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


def _repeat_cache(cache: list, rows: int) -> list:
    from mlx_lm.models.cache import KVCache

    out = []
    for c in cache:
        r = KVCache()
        r.keys = mx.repeat(c.keys[..., : c.offset, :], rows, axis=0)
        r.values = mx.repeat(c.values[..., : c.offset, :], rows, axis=0)
        r.offset = c.offset
        out.append(r)
    return out


SPLIT_HEAD_MODULES = ("mlx_lm.models.llama",)  # Llama/Mistral: body, then a plain head


def _logits_at(model: nn.Module, inputs: mx.array, cache: list | None, flat_idx: mx.array):
    """Logits at the flattened (row * width + col) positions only. For Llama-family models the
    output head (vocab x hidden: ~20% of SmolLM2's compute per token) runs on those positions
    alone; other models compute every position and gather."""
    if type(model).__module__ in SPLIT_HEAD_MODULES and hasattr(model, "model"):
        hidden = model.model(inputs, cache)
        selected = hidden.reshape(-1, hidden.shape[-1])[flat_idx]
        if getattr(model.args, "tie_word_embeddings", False):
            return model.model.embed_tokens.as_linear(selected)
        return model.lm_head(selected)
    logits = model(inputs, cache=cache)
    return logits.reshape(-1, logits.shape[-1])[flat_idx]


def _score_rows(
    model: nn.Module,
    seqs: list[tuple[list[int], int]],
    token_budget: int,
    cache: list | None = None,
    prefix_len: int = 0,
    kv_budget: int = LOGLIK_KV_BUDGET,
) -> list[tuple[float, bool]]:
    """Score (sequence, n_continuation) rows: the last n tokens of each sequence given the
    tokens before. With `cache` (the KV cache of seq[:prefix_len], common to every row) only
    the tokens after the prefix run, in right-padded batches over a repeated cache; padding
    only ever follows a row's real tokens, so a causal model never sees it."""
    results: list[tuple[float, bool]] = [(0.0, True)] * len(seqs)
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i][0]))
    pos = 0
    while pos < len(order):
        width = len(seqs[order[pos]][0]) - 1 - prefix_len
        n = max(1, token_budget // max(1, width))
        if cache is not None:
            n = max(1, min(n, kv_budget // max(1, prefix_len + width)))
        batch = order[pos : pos + n]
        pos += n
        rows, cols, targets = [], [], []
        inputs = []
        for b, i in enumerate(batch):
            seq, n_cont = seqs[i]
            tail = seq[prefix_len:-1]
            inputs.append(tail + [0] * (width - len(tail)))
            for t in range(len(seq) - 1 - n_cont, len(seq) - 1):
                rows.append(b)
                cols.append(t - prefix_len)
                targets.append(seq[t + 1])
        batch_cache = _repeat_cache(cache, len(batch)) if cache is not None else None
        flat_idx = mx.array(rows) * width + mx.array(cols)
        flat = _logits_at(model, mx.array(inputs), batch_cache, flat_idx).astype(mx.float32)
        tgt = mx.array(targets)
        scores = mx.take_along_axis(flat, tgt[:, None], axis=-1)[:, 0] - mx.logsumexp(flat, axis=-1)
        greedy = mx.argmax(flat, axis=-1) == tgt
        mx.eval(scores, greedy)
        scores, greedy = scores.tolist(), greedy.tolist()
        sums = [0.0] * len(batch)
        alls = [True] * len(batch)
        for k, b in enumerate(rows):
            sums[b] += scores[k]
            alls[b] = alls[b] and bool(greedy[k])
        for b, i in enumerate(batch):
            results[i] = (float(sums[b]), alls[b])
    return results


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _prefix_clusters(contexts: list[list[int]], min_prefix: int) -> list[tuple[list[int], int]]:
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


def loglikelihood(
    model: nn.Module,
    tokenizer: Any,
    pairs: list[tuple[str, str]] | list[tuple[list[int], list[int]]],
    *,
    token_budget: int = LOGLIK_TOKEN_BUDGET,
    max_context: int = MAX_CONTEXT,
    share_prefix: bool = True,
    min_prefix: int = 16,
) -> list[tuple[float, bool]]:
    """Sum log p(continuation | context) and whether greedy decoding would produce it.

    Pairs are strings (tokenized lm-eval style) or already tokenized (context ids,
    continuation ids). Sequences longer than `max_context` keep their last tokens.
    Requests whose contexts share a prefix (few-shot exemplars, the choices of a question)
    run that prefix once and score the rest in batches over its KV cache; the others run
    as right-padded full sequences.
    """
    seqs: list[tuple[list[int], int]] = []
    for context, continuation in pairs:
        if isinstance(context, str):
            ctx, cont = _split_context(tokenizer, context, continuation)
        else:
            ctx, cont = list(context), list(continuation)
        seq = (ctx + cont)[-(max_context + 1) :]
        seqs.append((seq, min(len(cont), len(seq) - 1)))
    results: list[tuple[float, bool]] = [(0.0, True)] * len(seqs)
    live = [i for i, (_, n) in enumerate(seqs) if n > 0]
    clusters = (
        _prefix_clusters([seqs[i][0][: len(seqs[i][0]) - seqs[i][1]] for i in live], min_prefix)
        if share_prefix
        else [(list(range(len(live))), 0)]
    )
    plain: list[int] = []
    for members, prefix_len in clusters:
        idx = [live[m] for m in members]
        cache = None
        if prefix_len:
            cache = _prefix_cache(model, seqs[idx[0]][0][:prefix_len])
        if cache is None:
            plain.extend(idx)
            continue
        scored = _score_rows(model, [seqs[i] for i in idx], token_budget, cache, prefix_len)
        for i, r in zip(idx, scored, strict=True):
            results[i] = r
    if plain:
        for i, r in zip(
            plain, _score_rows(model, [seqs[i] for i in plain], token_budget), strict=True
        ):
            results[i] = r
    return results


def rolling_loglikelihood(
    model: nn.Module, tokenizer: Any, texts: list[str], *, max_context: int = MAX_CONTEXT
) -> list[float]:
    """Log-likelihood of whole texts (conditioned on BOS/EOS as a prefix), in disjoint
    windows of `max_context` tokens (lm-eval's loglikelihood_rolling)."""
    pairs: list[tuple[list[int], list[int]]] = []
    owners: list[int] = []
    prefix = start_id(tokenizer)
    for i, text in enumerate(texts):
        ids = encode(tokenizer, text)
        if not ids:
            continue
        for start in range(0, len(ids), max_context):
            window = ids[start : start + max_context]
            context = ids[max(0, start - 1) : start] if start else [prefix]
            pairs.append((context, window))
            owners.append(i)
    totals = [0.0] * len(texts)
    for i, (score, _) in zip(
        owners, loglikelihood(model, tokenizer, pairs, max_context=max_context + 1), strict=True
    ):
        totals[i] += score
    return totals
