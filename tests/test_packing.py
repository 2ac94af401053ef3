"""Sequence packing (train.packing): the packing is a partition, the mask and loss are exact
(per-example losses and gradients of a packed batch equal the unpacked ones on a tiny random
Mistral, RoPE positions not restarted), models that cannot pack are refused, and a packed
run trains and resumes through the trainer and the train CLI."""

from __future__ import annotations

import copy
import json
import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from mlx.utils import tree_flatten, tree_map, tree_unflatten
from test_train_support import ROOT, fresh_model, load_examples, read_log, study, tiny  # noqa: F401
from test_train_support import settings as train_settings

from mlx_instruct import config as cfg
from mlx_instruct import study as study_lib
from mlx_instruct.train.batching import PAD_TO, BatchPlan, Example, collate
from mlx_instruct.train.methods import apply_method
from mlx_instruct.train.packing import PackedBatch, collate_rows, pack, packed_body
from mlx_instruct.train.schedule import make_optimizer
from mlx_instruct.train.step import StepFunctions, cross_entropy, split_head
from mlx_instruct.train.trainer import Trainer

# ---- the packing itself ---------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(1, 64),
    fractions=st.lists(st.floats(0, 1), max_size=60),
    seed=st.integers(0, 2**32 - 1),
)
def test_pack_is_a_deterministic_partition_into_rows_that_fit(capacity, fractions, seed):
    lengths = [1 + int(f * (capacity - 1)) for f in fractions]
    rows = pack(lengths, capacity, seed)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    fills = [sum(lengths[i] for i in row) for row in rows]
    assert all(0 < fill <= capacity for fill in fills)
    assert pack(lengths, capacity, seed) == rows  # a function of its inputs: resumable
    # greedy any-fit: a row opens only when no open row has room, so at most one row is at
    # most half full, and the count is within the classic bound of the optimum
    assert sum(2 * fill <= capacity for fill in fills) <= 1
    assert len(rows) <= math.ceil(11 / 9 * math.ceil(sum(lengths) / capacity)) + 1


def test_pack_rejects_what_cannot_fit():
    with pytest.raises(ValueError, match="item 1 has length 9, expected 1..8"):
        pack([3, 9], 8, seed=0)


@st.composite
def packed_rows(draw):
    """Rows of random examples (each 2..24 tokens, at least one response token)."""
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        row = []
        for _ in range(draw(st.integers(1, 4))):
            n = draw(st.integers(2, 24))
            prompt = draw(st.integers(1, n - 1))
            ids = tuple(draw(st.lists(st.integers(3, 999), min_size=n, max_size=n)))
            row.append(Example(f"e{len(row)}", ids, prompt))
        rows.append(row)
    return rows


@settings(max_examples=100, deadline=None)
@given(rows=packed_rows())
def test_packed_mask_is_each_examples_unpacked_mask(rows):
    """Per segment, the packed batch's inputs, targets and loss mask are exactly those of
    the example padded alone; no position predicts across a boundary or into padding."""
    batch = collate_rows(rows, 128, PAD_TO)
    assert batch.tokens.shape[1] <= 128 and (batch.tokens.shape[1] - 1) % PAD_TO == 0
    for r, row in enumerate(rows):
        at = 0
        for s, ex in enumerate(row):
            alone = collate([ex], 128)
            n = len(ex)
            assert (batch.segments[r, at : at + n] == s).all()
            span = slice(at, at + n - 1)  # the example's input positions but its last
            assert (batch.mask[r, span] == alone.mask[0, : n - 1]).all()
            assert (batch.targets[r, span] == alone.targets[0, : n - 1]).all()
            if at + n - 1 < batch.mask.shape[1]:
                assert not batch.mask[r, at + n - 1]  # last token -> next example or padding
            at += n
        assert not batch.mask[r, at:].any() and (batch.segments[r, at:] == -1).all()
    assert batch.n_loss_tokens == sum(len(ex) - ex.prompt_len for row in rows for ex in row)


def test_data_parallel_ranks_split_packed_rows_whole(tiny):  # noqa: F811
    """`processes: N` gives each rank whole packed rows: together they are the batch."""
    from mlx_instruct.train import distributed

    class Group:  # the two methods shard reads of an mx.distributed group
        def __init__(self, rank):
            self._rank = rank

        def rank(self):
            return self._rank

        def size(self):
            return 2

    plan = BatchPlan(load_examples(tiny), 4, 128, seed=2, packing=True)
    batch = plan.next()
    parts = [distributed.shard(batch, Group(rank)) for rank in (0, 1)]
    assert all(isinstance(p, PackedBatch) and len(p.tokens) == 2 for p in parts)
    assert sum(p.n_loss_tokens for p in parts) == batch.n_loss_tokens
    assert (parts[1].segments == batch.segments[1::2]).all()
    assert (parts[0].response == batch.response[0::2]).all()


# ---- exactness on a model -------------------------------------------------------------------


def _lora_model(tiny):  # noqa: F811
    """The tiny Mistral with LoRA whose B is random (so every LoRA gradient is non-zero)."""
    model = fresh_model(tiny)
    apply_method(model, train_settings(rank=4, alpha=8))
    mx.random.seed(3)
    leaves = [
        (k, mx.random.normal(v.shape) * 0.05 if k.endswith("lora_b") else v)
        for k, v in tree_flatten(model.trainable_parameters())
    ]
    model.update(tree_unflatten(leaves))
    return model


def _example_losses_alone(model, examples):
    """Each example's summed response-token CE from mlx_lm's own forward, one at a time."""
    losses = []
    for ex in examples:
        ids = mx.array([ex.input_ids])
        logits = model(ids[:, :-1]).astype(mx.float32)
        ce = cross_entropy(logits, ids[:, 1:])[0]
        losses.append(ce[ex.prompt_len - 1 :].sum())
    return mx.stack(losses)


def _example_losses_packed(model, batch: PackedBatch):
    """Each example's summed response-token CE from one forward of the packed rows."""
    body, head = split_head(model)
    hidden = packed_body(model, body)(mx.array(batch.inputs), mx.array(batch.input_segments))
    ce = cross_entropy(head(hidden).astype(mx.float32), mx.array(batch.targets))
    ce = np.array(ce) * batch.mask
    return [
        ce[r][batch.input_segments[r] == s].sum()
        for r in range(len(batch.tokens))
        for s in range(int(batch.segments[r].max()) + 1)
    ]


def test_packed_per_example_losses_and_gradients_equal_unpacked(tiny):  # noqa: F811
    """RoPE scores depend only on relative position: positions need not restart per example."""
    model = _lora_model(tiny)
    examples = load_examples(tiny)[:12]
    rows = pack([len(ex) for ex in examples], 128, seed=0)
    assert max(len(row) for row in rows) >= 3  # packing really puts examples together
    batch = collate_rows([[examples[i] for i in row] for row in rows], 128, PAD_TO)
    order = [i for row in rows for i in row]
    alone = np.array(_example_losses_alone(model, [examples[i] for i in order]))
    packed = np.array(_example_losses_packed(model, batch))
    np.testing.assert_allclose(packed, alone, rtol=2e-5, atol=1e-4)
    assert packed.min() > 1.0  # a random model's CE sums: not trivially zero

    # the compiled loss the trainer uses, and its gradients
    fns = StepFunctions(
        model, make_optimizer(train_settings()), grad_clip=None, lora_scale=2.0,
        base_values={}, instrument=False, packing=True,
    )  # fmt: skip
    grad = nn.value_and_grad(model, fns.loss_fn)
    loss, grads = grad(model, *fns.arrays(batch))
    want_loss, want_grads = None, None
    for ex in examples:
        args = fns.arrays(collate([ex], 128))  # a padded Batch through the packed loss
        part, g = grad(model, *args)
        want_loss = part if want_loss is None else want_loss + part
        want_grads = g if want_grads is None else tree_map(mx.add, want_grads, g)
    assert loss.item() == pytest.approx(alone.sum(), rel=2e-5)
    assert loss.item() == pytest.approx(want_loss.item(), rel=2e-5)
    got, want = dict(tree_flatten(grads)), dict(tree_flatten(want_grads))
    assert set(got) == set(want) and any(k.endswith("lora_a") for k in got)
    for key in got:
        scale = mx.abs(want[key]).max().item()
        assert scale > 0, key
        assert mx.abs(got[key] - want[key]).max().item() <= 1e-4 * scale, key


def test_without_the_mask_examples_would_see_each_other(tiny):  # noqa: F811
    """The block-diagonal mask is what makes the losses equal (the test above can fail)."""
    model = _lora_model(tiny)
    examples = load_examples(tiny)[:2]
    batch = collate_rows([examples], 128, PAD_TO)
    one_segment = PackedBatch(batch.tokens, np.where(batch.segments >= 0, 0, -1),
                              batch.response, batch.lengths)  # fmt: skip
    body, head = split_head(model)
    hidden = packed_body(model, body)(mx.array(batch.inputs), mx.array(one_segment.input_segments))
    ce = np.array(cross_entropy(head(hidden).astype(mx.float32), mx.array(batch.targets)))[0]
    second = batch.mask[0] & (batch.input_segments[0] == 1)
    alone = np.array(_example_losses_alone(model, examples))
    assert abs(ce[second].sum() - alone[1]) > 1e-3 * alone[1]


class _AbsolutePositions(nn.Module):
    """An embedding that adds a learned absolute-position vector (as GPT-2's wpe)."""

    def __init__(self, embed: nn.Embedding):
        super().__init__()
        self.inner = embed
        self.weight = embed.weight
        self.positions = mx.random.normal((64, embed.weight.shape[1]))

    def __call__(self, x):
        return self.inner(x) + self.positions[: x.shape[1]]


def test_models_that_cannot_pack_are_refused(tiny):  # noqa: F811
    model = fresh_model(tiny)
    body, _ = split_head(model)
    model.model.embed_tokens = _AbsolutePositions(model.model.embed_tokens)
    with pytest.raises(cfg.ConfigError, match=r"data\.packing: .*relative error"):
        packed_body(model, body)
    model = fresh_model(tiny)
    body, _ = split_head(model)
    model.model.layers[1].use_sliding = True
    with pytest.raises(cfg.ConfigError, match=r"data\.packing: .*sliding-window"):
        packed_body(model, body)
    from mlx_lm.models import gpt2

    args = gpt2.ModelArgs("gpt2", 32, 16, 2, 1, 32, 1e-5, 50)
    gpt = gpt2.Model(args)  # absolute positions (wpe), and no model.model
    with pytest.raises(cfg.ConfigError, match=r"data\.packing: the model's output head"):
        StepFunctions(gpt, make_optimizer(train_settings()), grad_clip=None,
                      lora_scale=None, base_values={}, packing=True)  # fmt: skip
    with pytest.raises(cfg.ConfigError, match=r"data\.packing: mlx_lm\.models\.gpt2 has no"):
        packed_body(gpt, gpt)


# ---- the plan, the trainer and the CLI ------------------------------------------------------


def test_packed_plan_covers_every_example_once_per_epoch_and_seeks(tiny):  # noqa: F811
    examples = load_examples(tiny)
    plan = BatchPlan(examples, 2, 128, seed=5, packing=True)
    assert len(plan.rows) < len(examples) / 2
    rows_used = [r for batch in plan.batches for r in batch]
    assert len(rows_used) == len(set(rows_used)) >= len(plan.rows) - 1  # odd row left out
    seen = [plan.next() for _ in range(len(plan.batches))]
    assert all(b.tokens.shape[1] <= 128 for b in seen)
    fill = sum(b.n_tokens for b in seen) / sum(b.inputs.size for b in seen)
    unpacked = BatchPlan(examples, 2, 128, seed=5)
    batches = [unpacked.next() for _ in range(len(unpacked.batches))]
    assert fill > sum(b.n_tokens for b in batches) / sum(b.inputs.size for b in batches)
    again = BatchPlan(examples, 2, 128, seed=5, packing=True)
    again.seek(**plan.position)
    assert [again.next_indices() for _ in range(7)] == [plan.next_indices() for _ in range(7)]


def _trainer(tiny, out, **overrides):  # noqa: F811
    s = train_settings(checkpoint_every=3, eval_every=3, **overrides)
    return Trainer(
        fresh_model(tiny), tiny["tokenizer"], s, load_examples(tiny), load_examples(tiny, "valid"),
        out, seed=0, max_seq_len=128, packing=True, progress=False, samples=False,
    )  # fmt: skip


def test_packed_run_resumes_as_if_uninterrupted(tiny, tmp_path):  # noqa: F811
    whole = _trainer(tiny, tmp_path / "whole").run()
    assert whole["status"] == "completed"

    def stop(trainer, step):
        if step == 5:
            raise KeyboardInterrupt

    broken = _trainer(tiny, tmp_path / "broken")
    broken.hooks.append(stop)
    with pytest.raises(KeyboardInterrupt):
        broken.run()
    resumed = _trainer(tiny, tmp_path / "broken").run(resume=True)
    assert resumed["resumed_at"] == [3]
    a, b = read_log(tmp_path / "whole", "train_log"), read_log(tmp_path / "broken", "train_log")
    assert [r["step"] for r in b] == list(range(1, 7))
    assert [r["loss"] for r in b] == pytest.approx([r["loss"] for r in a], rel=1e-6)
    assert [r["tokens"] for r in b] == [r["tokens"] for r in a]


def test_packing_through_the_train_cli_and_the_fingerprints(tiny, tmp_path):  # noqa: F811
    from mlx_instruct.train.__main__ import main

    base = study()
    base.pop("deployment", None)  # smoke.yaml's names experiments this study replaces
    packed = copy.deepcopy(base)
    packed["data"]["packing"] = True
    cfg.validate(packed)
    runs = {}
    for name, config in (("plain", base), ("packed", packed)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        out = tmp_path / name
        argv = ["--config", str(path), "--experiment", "lora", "--seed", "0", "--model",
                str(tiny["model"]), "--data", str(tiny["data"]), "--out", str(out), "--no-progress"]  # fmt: skip
        assert main(argv) == 0
        runs[name] = json.loads((out / "run.json").read_text())
        runs[name]["log"] = read_log(out, "train_log")
    plain, pk = runs["plain"], runs["packed"]
    assert pk["status"] == "completed" and pk["data"]["packing"] is True
    assert pk["data"]["rows_per_epoch"] < plain["data"]["rows_per_epoch"]
    assert pk["fingerprint"] != plain["fingerprint"]  # a packed run never resumes a plain one
    assert all(math.isfinite(r["loss"]) for r in pk["log"])
    assert pk["log"][-1]["tokens"] > 1.5 * plain["log"][-1]["tokens"]  # fuller rows
    val = [r["val_loss"] for r in read_log(tmp_path / "packed", "val_log")]
    assert len(val) == 3 and val[-1] < val[0]  # validation (unpacked) improves: it learns

    # the Snakemake rule's fingerprint: packed runs retrain, the data stage does not rerun
    default = study_lib.resolve_study({}, ROOT)
    on = copy.deepcopy(default)
    on["data"]["packing"] = True
    for run in cfg.runs(default, include_baseline=False):
        before = study_lib.training_params(default, run.experiment, run.seed)
        assert study_lib.training_params(on, run.experiment, run.seed) != before
    assert study_lib.data_params(on) == study_lib.data_params(default)
    with pytest.raises(cfg.ConfigError, match="packing"):
        cfg.validate({**packed, "data": {**packed["data"], "packing": "yes"}})
