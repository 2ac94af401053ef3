"""The MLX all-MiniLM-L6-v2 encoder: pooling maths on random arrays (always), and agreement
with sentence-transformers' own embeddings (tests/fixtures/minilm_reference.json) when the
model wheel can be fetched."""

from __future__ import annotations

import json
from pathlib import Path

import mlx_instruct  # noqa: F401  (OpenBLAS before mlx)

# isort: split
import mlx.core as mx
import numpy as np
import pytest

from mlx_instruct.evaluate.embeddings import (
    BertConfig,
    BertEncoder,
    cosine,
    l2_normalize,
    mean_pool,
    paired_cosine,
)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "minilm_reference.json"


def test_mean_pool_ignores_padding():
    hidden = mx.random.normal((2, 5, 8), key=mx.random.key(0))
    mask = mx.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    pooled = np.array(mean_pool(hidden, mask))
    np.testing.assert_allclose(pooled[0], np.array(hidden)[0, :3].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(pooled[1], np.array(hidden)[1].mean(axis=0), rtol=1e-5)
    norms = np.linalg.norm(np.array(l2_normalize(mx.array(pooled))), axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-6)


def test_padding_does_not_change_a_sequence_encoding():
    """A sequence padded in a batch encodes as it does alone (the attention mask works)."""
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    mx.random.seed(0)
    model = BertEncoder(cfg)
    ids = mx.array([[2, 7, 9, 0, 0], [2, 5, 6, 8, 3]])
    mask = mx.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    types = mx.zeros_like(ids)
    batched = mean_pool(model(ids, types, mask), mask)
    alone = mean_pool(model(ids[:1, :3], types[:1, :3], mask[:1, :3]), mask[:1, :3])
    np.testing.assert_allclose(np.array(batched[0]), np.array(alone[0]), atol=1e-5)


def test_cosine_helpers():
    a = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    b = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
    np.testing.assert_allclose(paired_cosine(a, b), [0.0, 0.0, 1.0], atol=1e-12)
    assert cosine(np.array([1.0, 0.0]), np.array([-1.0, 0.0])) == pytest.approx(-1.0)


@pytest.fixture(scope="module")
def encoder():
    from mlx_instruct.evaluate.embeddings import load_encoder

    try:
        return load_encoder()
    except Exception as error:  # offline and nothing cached
        pytest.skip(f"all-MiniLM-L6-v2 wheel cannot be fetched ({type(error).__name__}: {error})")


def test_matches_sentence_transformers_reference(encoder):
    reference = json.loads(FIXTURE.read_text())
    ours = encoder.encode(reference["sentences"])
    theirs = np.array(reference["embeddings"], dtype=np.float64)
    cos = paired_cosine(ours.astype(np.float64), theirs)
    assert (cos > 0.99).all(), cos
    np.testing.assert_allclose(ours, theirs, atol=1e-4)  # in fact ~1e-6
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_similarities_are_sensible(encoder):
    texts = [
        "The cat chased the mouse.",
        "A kitten was running after a small rodent.",
        "Quarterly revenue grew by 12% compared with last year.",
        "How do I stop a running Python program?",
        "How can I kill a Python process?",
    ]
    v = encoder.encode(texts)
    assert cosine(v[0], v[1]) > 0.4 > cosine(v[0], v[2])
    assert cosine(v[3], v[4]) > 0.6
    assert cosine(v[0], v[0]) == pytest.approx(1.0, abs=1e-5)


def test_batching_and_order_do_not_matter(encoder):
    texts = ["short", "a somewhat longer sentence about trees and rain", "", "mid length text here"]
    together = encoder.encode(texts)
    alone = np.stack([encoder.encode([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)
