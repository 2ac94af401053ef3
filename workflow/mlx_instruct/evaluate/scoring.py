"""Log-likelihood scoring on an MLX model (lm-eval's loglikelihood and rolling variant).

Requests whose contexts share a prefix (few-shot exemplars, a shared instruction, the
choices of one question) run that prefix once (batch 1) and score the rest of every request
in right-padded batches over copies of its KV cache; other requests run as right-padded full
sequences. Right padding only ever follows real tokens, so it is exact for a causal model.
Only the scored positions go through log-softmax.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import mlx.nn as nn

from mlx_instruct.data.tokenize import encode, encode_prompt, start_id
from mlx_instruct.evaluate.prefix import prefix_cache, prefix_clusters

LOGLIK_TOKEN_BUDGET = 4096  # padded tokens per scoring forward pass (bounds the logits' memory)
LOGLIK_KV_BUDGET = 16384  # rows x (prefix + tail) tokens of KV cache per prefix-sharing pass
MAX_CONTEXT = 2048  # scoring inputs longer than this keep their last MAX_CONTEXT tokens


def split_context(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
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
            ctx, cont = split_context(tokenizer, context, continuation)
        else:
            ctx, cont = list(context), list(continuation)
        seq = (ctx + cont)[-(max_context + 1) :]
        seqs.append((seq, min(len(cont), len(seq) - 1)))
    results: list[tuple[float, bool]] = [(0.0, True)] * len(seqs)
    live = [i for i, (_, n) in enumerate(seqs) if n > 0]
    clusters = (
        prefix_clusters([seqs[i][0][: len(seqs[i][0]) - seqs[i][1]] for i in live], min_prefix)
        if share_prefix
        else [(list(range(len(live))), 0)]
    )
    plain: list[int] = []
    for members, prefix_len in clusters:
        idx = [live[m] for m in members]
        cache = None
        if prefix_len:
            cache = prefix_cache(model, seqs[idx[0]][0][:prefix_len])
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
