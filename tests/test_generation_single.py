"""Batch size 1 runs on mlx_lm's generate_step (evaluate.generation): the same completions,
accounting, stop strings and shared-prefix caches as the batch engine."""

from __future__ import annotations

from pathlib import Path

import pytest

import mlx_instruct  # noqa: F401  (OpenBLAS before mlx)
from mlx_instruct.evaluate import generation as gen
from mlx_instruct.sources.models import load_model, prepare_model

PROMPTS = ["The capital of France is", "List three colours:", "Once upon a time"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    out = prepare_model("random://mistral-tiny", Path(tmp_path_factory.mktemp("m")) / "model")
    return load_model(out)


def test_single_equals_batched_with_shared_prefix(tiny):
    """Few-shot prompts share a prefix: batch 1 copies its cache per prompt (generate_step
    extends the cache it is given), so every prompt starts from the same prefix state."""
    model, tok = tiny
    shots = "Q: Is the sky blue?\nA: Yes\n\nQ: not True is\nA: False\n\n" * 6
    prompts = [shots + p for p in PROMPTS]
    single = gen.generate(model, tok, prompts, max_tokens=8, batch_size=1)
    plain = gen.generate(model, tok, prompts, max_tokens=8, batch_size=1, share_prefix=False)
    batched = gen.generate(model, tok, prompts, max_tokens=8, batch_size=3)
    for s, p, b in zip(single, plain, batched, strict=True):
        assert s.token_ids[:6] == p.token_ids[:6] == b.token_ids[:6]
        assert s.generated_tokens == b.generated_tokens == 8
        assert s.finish_reason == b.finish_reason == "length"
        assert s.prompt_tokens == b.prompt_tokens


def test_single_stop_string_cuts_like_batched(tiny):
    model, tok = tiny
    free = gen.generate(model, tok, PROMPTS[:1], max_tokens=12, batch_size=1)[0]
    assert len(free.text) > 2
    stop = free.text[1:3]
    single = gen.generate(model, tok, PROMPTS[:1], max_tokens=12, batch_size=1, stop=[stop])[0]
    batched = gen.generate(model, tok, PROMPTS[:1] * 2, max_tokens=12, batch_size=2, stop=[stop])
    assert single.finish_reason == "stop"
    assert single.text == free.text[: free.text.find(stop)] == batched[0].text
    assert single.generated_tokens == batched[0].generated_tokens < 12
