"""The per-layer norms batched by shape (train/norms.py) equal the one-kernel-per-leaf forms."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlx_lm.tuner.lora import LoRALinear

from mlx_instruct.train.norms import chunks, lora_delta_sq, sq_norms


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(1, 40)), max_size=30),
    st.integers(1, 50),
)
def test_chunks_cover_every_index_once_within_the_limit(items, limit):
    keys, sizes = [k for k, _ in items], [s for _, s in items]
    groups = chunks(keys, sizes, limit)
    assert sorted(i for g in groups for i in g) == list(range(len(items)))
    for group in groups:
        assert len({keys[i] for i in group}) == 1
        assert list(group) == sorted(group)
        assert len(group) == 1 or sum(sizes[i] for i in group) <= limit
    # An index over the limit stands alone; nothing under it does unless its key's chunk was full.
    assert all([i] in groups for i, s in enumerate(sizes) if s >= limit)


@pytest.mark.parametrize("dtype", [mx.float32, mx.bfloat16])
def test_sq_norms_equal_per_leaf_reductions_in_input_order(dtype):
    mx.random.seed(5)
    shapes = [(8, 4), (4, 8), (8, 4), (3,), (8, 4), (4, 8), (2, 2, 2), (3,)]
    arrays = [(mx.random.normal(s) * 7).astype(dtype) for s in shapes]
    scale = mx.array(0.25)
    expected = [
        mx.sum(mx.square((a * scale.astype(dtype)).astype(mx.float32))).item() for a in arrays
    ]
    got = mx.compile(lambda xs, s: sq_norms(xs, s))(arrays, scale)
    assert got.dtype == mx.float32
    assert got.tolist() == pytest.approx(expected, rel=1e-6)
    assert sq_norms(arrays).tolist() == pytest.approx(
        [mx.sum(mx.square(a.astype(mx.float32))).item() for a in arrays], rel=1e-6
    )


def test_sq_norms_reduce_large_arrays_alone(monkeypatch):
    """Arrays at the stacking limit are not copied into a stack (full weights at 7B)."""
    import mlx_instruct.train.norms as norms

    monkeypatch.setattr(norms, "STACK_ELEMENTS", 16)
    stacked = []
    real_stack = mx.stack
    monkeypatch.setattr(norms.mx, "stack", lambda xs: stacked.append(len(xs)) or real_stack(xs))
    arrays = [mx.ones((4, 4)), mx.ones((4, 4)), mx.ones((2,)), mx.ones((2,))]
    assert norms.sq_norms(arrays).tolist() == [16.0, 16.0, 2.0, 2.0]
    assert stacked == [2]


def test_lora_delta_sq_equals_the_dense_product_per_module():
    mx.random.seed(2)
    layers = [
        LoRALinear.from_base(nn.Linear(din, dout), r=4, scale=2.0)
        for din, dout in [(16, 8), (16, 8), (8, 16), (16, 8), (12, 12)]
    ]
    for layer in layers:
        layer.lora_b = mx.random.normal(layer.lora_b.shape)
    lora = [(f"m{i}", layer) for i, layer in enumerate(layers)]
    got = lora_delta_sq(lora, 2.0).tolist()
    expected = [mx.sum(mx.square(2.0 * (m.lora_a @ m.lora_b))).item() for m in layers]
    assert got == pytest.approx(expected, rel=1e-5)
