"""Batched generation on an MLX model (KV cache, continuous batching).

Generation runs on mlx_lm's `BatchGenerator` (continuous batching: a prompt batch is
right-padded, prefilled, and its KV cache is rolled to left padding, then all active
sequences decode one token per step with one forward pass; finished sequences leave the
batch and waiting prompts join it). At batch size 1 it runs on mlx_lm's `generate_step`
instead, the loop `mlx_lm.generate` uses: no padding mask or batch bookkeeping per token
(on the H200 at 7B the batch engine at batch 1 ran at 0.67x that loop). On top of it this module adds what the evaluators need:
text-level stop sequences (matched on decoded text, so a stop string is found whatever
tokens it spans), EOS stop, a hard `max_tokens` cap that always applies, seeded sampling,
and per-request accounting (`Generation`). Log-likelihood scoring is `evaluate.scoring`.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import mlx.core as mx
import mlx.nn as nn

from mlx_instruct.data.tokenize import encode_prompt, eos_ids
from mlx_instruct.evaluate.prefix import prefix_cache, prefix_clusters

__all__ = ["Generation", "encode_prompt", "generate"]

HARD_MAX_TOKENS = 8192  # never-ending generation guard, whatever the caller asks
DEFAULT_MAX_TOKENS = 128
DEFAULT_BATCH_SIZE = 16
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


@dataclass
class _Request:
    """One prompt's progress through the batch generator (what becomes its `Generation`)."""

    ids: list[int]
    tokens: list[int] = field(default_factory=list)
    steps: int = 0
    text: str | None = None  # set when a stop string cut the decoded text
    reason: str = "length"
    started: float | None = None
    ended: float = 0.0
    scanned: int = 0  # decoded-text prefix already searched for stop strings

    def start(self, now: float) -> None:
        if self.started is None:
            self.started = now

    def step(self, response: Any, now: float, tokenizer: Any, stop: list[str]) -> bool:
        """Account one decode step; True when the request is finished (EOS, length, stop)."""
        self.start(now)
        self.steps += 1
        done = response.finish_reason is not None
        if response.finish_reason == "stop":  # EOS: not part of the text
            self.reason = "stop"
        else:
            self.tokens.append(response.token)
            if stop and self._cut_at_stop(tokenizer, stop):
                done = True
        if done:
            self.ended = now
        return done

    def _cut_at_stop(self, tokenizer: Any, stop: list[str]) -> bool:
        """Search only the newly decoded text (plus a stop string's length of overlap)."""
        text = tokenizer.decode(self.tokens)
        longest = max(len(s) for s in stop)
        hit = _find_stop(text, stop, max(0, self.scanned - longest))
        self.scanned = len(text)
        if hit == -1:
            return False
        self.text, self.reason = text[:hit], "stop"
        return True

    def result(self, tokenizer: Any, stop: list[str]) -> Generation:
        text, reason = self.text, self.reason
        if text is None:
            text = tokenizer.decode(self.tokens)
            hit = _find_stop(text, stop, 0) if stop else -1
            if hit != -1:  # a stop string completed only in the final decode
                text, reason = text[:hit], "stop"
        return Generation(
            text=text,
            prompt_tokens=len(self.ids),
            generated_tokens=self.steps,
            finish_reason=reason,
            latency_s=max(0.0, self.ended - (self.started or self.ended)),
            token_ids=self.tokens,
        )


def _sampler(temperature: float, top_p: float, seed: int) -> Any:
    """A seeded sampler; None below temperature 0+ (BatchGenerator's greedy argmax)."""
    from mlx_lm.sample_utils import make_sampler

    if not temperature or temperature <= 0:
        return None
    mx.random.seed(seed)
    return make_sampler(temp=float(temperature), top_p=float(top_p))


def _shared_prefixes(
    model: nn.Module, encoded: list[list[int]], min_prefix: int
) -> tuple[list[list[int]], list | None]:
    """(inputs, caches) for BatchGenerator.insert: prompts whose shared prefix is long enough
    start from one KV cache of it and feed only their rest; others feed everything."""
    inputs: list[list[int]] = list(encoded)
    caches: list = [None] * len(encoded)
    for members, prefix_len in prefix_clusters(encoded, min_prefix):
        shortest = min(len(encoded[m]) for m in members)
        if prefix_len < PREFIX_SHARE_FRACTION * shortest:
            continue  # measured: a shorter shared prefix does not speed prefill up
        cache = prefix_cache(model, encoded[members[0]][:prefix_len])
        if cache is None:
            continue
        for m in members:  # one shared object: merging into the batch only reads it
            caches[m] = cache
            inputs[m] = encoded[m][prefix_len:]
    return inputs, caches if any(c is not None for c in caches) else None


class _Token(NamedTuple):
    """One decoded token in the shape `_Request.step` reads from BatchGenerator's responses."""

    token: int
    finish_reason: str | None


def _generate_single(
    model: nn.Module,
    requests: list[_Request],
    inputs: list[list[int]],
    caches: list | None,
    *,
    max_tokens: int,
    sampler: Any,
    prefill_step_size: int,
    tokenizer: Any,
    stop: list[str],
) -> None:
    """Each request alone through mlx_lm's generate_step, EOS and max_tokens as the batch
    engine applies them; a shared prefix's cache is copied (generate_step extends it)."""
    from mlx_lm.generate import generate_step

    eos = set(eos_ids(tokenizer))
    for i, (request, ids) in enumerate(zip(requests, inputs, strict=True)):
        cache = copy.deepcopy(caches[i]) if caches is not None and caches[i] is not None else None
        request.start(time.perf_counter())
        steps = generate_step(
            mx.array(ids), model, max_tokens=max_tokens, sampler=sampler,
            prompt_cache=cache, prefill_step_size=prefill_step_size,
        )  # fmt: skip
        for n, (token, _) in enumerate(steps, start=1):
            token = int(token)
            reason = "stop" if token in eos else "length" if n == max_tokens else None
            if request.step(_Token(token, reason), time.perf_counter(), tokenizer, stop):
                break


def _decode(gen: Any, by_uid: dict[int, _Request], tokenizer: Any, stop: list[str]) -> None:
    """Step the generator until every request has finished; a request cut by a stop string
    is still running inside the generator, so it is removed there."""
    remaining = len(by_uid)
    while remaining:
        prompt_responses, responses = gen.next()
        now = time.perf_counter()
        for r in prompt_responses:
            by_uid[r.uid].start(now)
        if not responses and not prompt_responses:
            break  # the generator is empty (cannot happen while requests remain)
        stopped = []
        for r in responses:
            if by_uid[r.uid].step(r, now, tokenizer, stop):
                remaining -= 1
                if r.finish_reason is None:
                    stopped.append(r.uid)
        if stopped:
            gen.remove(stopped)


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

    if not prompts:
        return []
    max_tokens = int(max_tokens)
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    max_tokens = min(max_tokens, HARD_MAX_TOKENS)
    batch_size = max(1, int(batch_size))
    stop = [s for s in (stop or []) if s]
    requests = [
        _Request(list(p) if not isinstance(p, str) else encode_prompt(tokenizer, p))
        for p in prompts
    ]
    encoded = [r.ids for r in requests]
    sampler = _sampler(temperature, top_p, seed)
    inputs, caches = list(encoded), None
    if share_prefix and len(encoded) > 1:
        inputs, caches = _shared_prefixes(model, encoded, min_prefix)
    if batch_size == 1:
        _generate_single(
            model, requests, inputs, caches, max_tokens=max_tokens, sampler=sampler,
            prefill_step_size=prefill_step_size, tokenizer=tokenizer, stop=stop,
        )  # fmt: skip
        return [r.result(tokenizer, stop) for r in requests]
    gen = BatchGenerator(
        model,
        max_tokens=max_tokens,
        stop_tokens=[[t] for t in eos_ids(tokenizer)],
        sampler=sampler,
        completion_batch_size=batch_size,
        prefill_batch_size=batch_size,
        prefill_step_size=prefill_step_size,
    )
    uids = gen.insert(inputs, [max_tokens] * len(encoded), caches=caches)
    try:
        _decode(gen, dict(zip(uids, requests, strict=True)), tokenizer, stop)
    finally:
        gen.close()
    return [r.result(tokenizer, stop) for r in requests]
