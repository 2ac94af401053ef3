"""Training engine: methods, loss masking, schedules, clipping, instrumentation, guards.

The seed's section 9.4 tests (LoRA adapter shapes, an end-to-end training step) made real
on a tiny random Mistral; every test here runs in-process in a few seconds.
"""

from __future__ import annotations

import json
import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_map
from test_train_support import fresh_model, load_examples, read_log, settings, tiny  # noqa: F401

from mlx_instruct.train import schedule
from mlx_instruct.train.batching import BatchPlan, Example, collate, eval_batches
from mlx_instruct.train.methods import apply_method
from mlx_instruct.train.step import (
    StepFunctions,
    cross_entropy,
    device_arrays,
    make_loss,
    mean_and_clip,
    token_losses,
)
from mlx_instruct.train.trainer import Trainer


def _trainer(tiny, out, **overrides):  # noqa: F811
    s = settings(**overrides)
    return Trainer(
        fresh_model(tiny), tiny["tokenizer"], s, load_examples(tiny), load_examples(tiny, "valid"), out,
        seed=0, max_seq_len=128, model_path=tiny["model"], progress=False, samples=False,
    )  # fmt: skip


def test_lora_adapter_shapes(tiny):  # noqa: F811
    """Seed 9.4: LoRA matrices have the configured rank on every target module."""
    model = fresh_model(tiny)
    info = apply_method(
        model, settings(rank=4, alpha=8, target_modules=["q_proj", "v_proj", "down_proj"])
    )
    layer = model.model.layers[0]
    for module in (layer.self_attn.q_proj, layer.self_attn.v_proj, layer.mlp.down_proj):
        out_dims, in_dims = module.linear.weight.shape
        assert module.lora_a.shape == (in_dims, 4)
        assert module.lora_b.shape == (4, out_dims)
        assert module.scale == pytest.approx(2.0)  # alpha / r
    assert not hasattr(layer.self_attn.k_proj, "lora_a")
    names = [n for n, _ in tree_flatten(model.trainable_parameters())]
    assert names and all(n.rsplit(".", 1)[-1] in ("lora_a", "lora_b") for n in names)
    assert info.trainable_params == sum(
        v.size for _, v in tree_flatten(model.trainable_parameters())
    )


@pytest.mark.parametrize("method", ["dora", "hybrid", "qlora", "full"])
def test_methods_choose_trainable_parameters(tiny, method):  # noqa: F811
    model = fresh_model(tiny)
    info = apply_method(model, settings(method=method, quantize_bits=8, num_layers=1))
    names = [n for n, _ in tree_flatten(model.trainable_parameters())]
    assert all(".layers.1." in n or n.startswith("model.norm") for n in names), names[:4]
    leaves = {n.rsplit(".", 1)[-1] for n in names}
    if method == "dora":
        assert leaves == {"lora_a", "lora_b", "m"}
    elif method == "hybrid":
        assert {"lora_a", "lora_b", "weight"} == leaves and "model.norm.weight" in names
        assert all("norm" in n for n in info.base_values)
    elif method == "qlora":
        assert isinstance(model.model.layers[0].self_attn.q_proj, nn.QuantizedLinear)
        assert info.quantization["bits"] == 8
    else:
        assert "lora_a" not in leaves and info.trainable_params > 0


def test_end_to_end_training_step(tiny, tmp_path):  # noqa: F811
    """Seed 9.4: one optimizer step on the smoke model gives a finite loss in a sane range."""
    trainer = _trainer(tiny, tmp_path, steps=1)
    batch = trainer.plan.next()
    stats = trainer.fns.train_step([batch])
    loss = stats.tolist()[0]
    assert math.isfinite(loss)
    vocab = tiny["tokenizer"].vocab_size
    assert 0 < loss < 100 and abs(loss - math.log(vocab)) < 2.0  # a random model: ~ln(vocab)


def _model_and_fns(tiny, **overrides):  # noqa: F811
    model = fresh_model(tiny)
    s = settings(**overrides)
    info = apply_method(model, s)
    opt = schedule.make_optimizer(s)
    fns = StepFunctions(
        model, opt, grad_clip=s.grad_clip, lora_scale=info.scale, base_values=info.base_values
    )
    return model, opt, fns


def test_loss_ignores_prompt_and_padding_labels(tiny):  # noqa: F811
    model, _, fns = _model_and_fns(tiny)
    examples = load_examples(tiny)
    batch = collate(examples[:2], 128)
    mask = batch.mask

    def loss(targets, gathered=True):
        return fns.loss_fn(model, *device_arrays(batch, gathered, targets=targets)).item()

    reference = loss(batch.targets.copy())
    changed = batch.targets.copy()
    changed[~mask] = (changed[~mask] + 7) % 1000  # every prompt and padding label
    assert loss(changed) == reference
    # the dense path (models whose head cannot be split) agrees
    assert _dense_loss(model, batch, changed) == pytest.approx(reference, rel=1e-5)
    changed = batch.targets.copy()
    row, col = np.argwhere(mask)[0]
    changed[row, col] = (changed[row, col] + 7) % 1000  # one response label
    assert loss(changed) != reference


def _dense_loss(model, batch, targets):
    dense, gathered = make_loss(model, gather=False)
    assert not gathered
    return dense(model, *device_arrays(batch, False, targets=targets)).item()


def test_padding_does_not_change_an_examples_loss(tiny):  # noqa: F811
    model, _, fns = _model_and_fns(tiny)
    examples = sorted(load_examples(tiny), key=len)
    short, long_ = examples[0], examples[-1]
    alone = fns.loss_fn(model, *fns.arrays(collate([short], 128))).item()
    pair = collate([short, long_], 128)
    assert pair.tokens.shape[1] > collate([short], 128).tokens.shape[1]
    with_long = fns.loss_fn(model, *fns.arrays(pair)).item()
    only_long = fns.loss_fn(model, *fns.arrays(collate([long_], 128))).item()
    assert with_long - only_long == pytest.approx(alone, rel=1e-5)


def test_gathered_loss_equals_dense_loss_and_reference_ce(tiny):  # noqa: F811
    model, _, fns = _model_and_fns(tiny)
    assert fns.gathered
    batch = collate(load_examples(tiny)[:3], 128)
    gathered = fns.loss_fn(model, *device_arrays(batch, True)).item()
    logits = model(mx.array(batch.inputs)).astype(mx.float32)
    reference = (
        (nn.losses.cross_entropy(logits, mx.array(batch.targets)) * mx.array(batch.mask))
        .sum()
        .item()
    )
    assert gathered == pytest.approx(reference, rel=1e-5)
    x = mx.random.normal((5, 50)) * 4
    t = mx.array([1, 2, 3, 4, 49])
    ours = mx.grad(lambda v: cross_entropy(v, t).sum())(x)
    theirs = mx.grad(lambda v: nn.losses.cross_entropy(v, t).sum())(x)
    assert mx.allclose(ours, theirs, atol=1e-6).item()


def test_token_losses_are_float32_for_bfloat16_logits_on_the_cpu():
    """The CPU's path casts first (MLX's fused kernel would reduce in bfloat16 there), so the
    CPU trainer's loss is the float32 one it always was, to the bit."""
    logits = (mx.random.normal((7, 300)) * 6).astype(mx.bfloat16)
    targets = mx.array([0, 1, 2, 3, 150, 298, 299])
    with mx.stream(mx.cpu):
        found = token_losses(logits, targets)
        expected = cross_entropy(logits.astype(mx.float32), targets)
    assert found.dtype == mx.float32
    assert mx.array_equal(found, expected).item()


def test_accumulation_is_a_token_weighted_mean(tiny):  # noqa: F811
    """Two micro-batches of one give the same loss and gradient norm as one of two."""
    examples = load_examples(tiny)[:2]
    results = []
    for micro in ([examples[:1], examples[1:]], [examples]):
        _, _, fns = _model_and_fns(tiny)
        stats = fns.train_step([collate(m, 128) for m in micro]).tolist()
        results.append(stats[:2])
    assert results[0] == pytest.approx(results[1], rel=1e-5)


@pytest.mark.parametrize("kind", ["cosine", "linear", "constant"])
def test_schedule_at_warmup_end_and_last_step(kind):
    s = settings(
        learning_rate=2e-4, steps=100, warmup_fraction=0.05, schedule=kind, min_lr_ratio=0.1
    )
    warm = schedule.warmup_steps(s)
    assert warm == 5
    assert schedule.lr_at(s, 0) == pytest.approx(2e-4 / 5)
    assert schedule.lr_at(s, warm - 1) == pytest.approx(2e-4)  # the peak, exactly at warm-up end
    last = schedule.lr_at(s, 99)
    assert last == pytest.approx(2e-4 if kind == "constant" else 2e-5)
    if kind == "cosine":
        assert schedule.lr_at(s, 5 + 47) == pytest.approx(1.1e-4, rel=0.05)  # about halfway
    fn = schedule.make_schedule(s)
    for i in (0, 3, 4, 5, 50, 99):
        assert fn(mx.array(i)).item() == pytest.approx(schedule.lr_at(s, i), rel=1e-5)


@pytest.mark.parametrize("study", ["config.yaml", "configs/smoke.yaml", "configs/mistral-7b.yaml"])
def test_compiled_schedule_is_the_formula_at_every_step_of_every_study(study):
    """The float32 schedule the optimizer runs equals `lr_at` at every update of every run."""
    from mlx_instruct import config as cfg

    for run in cfg.runs(cfg.load_config(cfg.ROOT / study), include_baseline=False):
        s = run.training
        fn = schedule.make_schedule(s)
        steps = mx.arange(s.steps, dtype=mx.uint64)  # the optimizer's own step counter type
        ours = [fn(i).item() for i in steps]
        exact = [schedule.lr_at(s, i) for i in range(s.steps)]
        assert ours == pytest.approx(exact, rel=1e-5, abs=1e-6 * s.learning_rate)  # float32


def test_logged_lr_follows_the_schedule(tiny, tmp_path):  # noqa: F811
    trainer = _trainer(
        tiny, tmp_path, steps=5, warmup_fraction=0.4, eval_every=100, checkpoint_every=100
    )
    trainer.run()
    lrs = [row["lr"] for row in read_log(tmp_path, "train_log")]
    assert lrs == pytest.approx([schedule.lr_at(trainer.settings, i) for i in range(5)], rel=1e-5)


def test_clipping_caps_the_global_norm():
    one = mx.array(1.0)
    grads = {"a": mx.full((3, 4), 2.0), "b": [mx.array([3.0, -4.0])]}
    clipped, norm, sq = mean_and_clip(grads, one, 1.0)
    assert norm.item() == pytest.approx(math.sqrt(12 * 4 + 25))
    after = math.sqrt(sum(mx.sum(g * g).item() for _, g in tree_flatten(clipped)))
    assert after == pytest.approx(1.0, rel=1e-5)
    assert sq.tolist() == pytest.approx([48.0, 25.0])
    small, norm, _ = mean_and_clip({"a": mx.array([0.3, 0.4])}, one, 1.0)
    assert (
        norm.item() == pytest.approx(0.5) and mx.allclose(small["a"], mx.array([0.3, 0.4])).item()
    )


def test_mean_then_clip_is_one_scale_of_the_sums():
    """Norms and clip act on the token mean (sum x inv), not on the raw sums."""
    sums = {"a": mx.array([6.0, 8.0]), "b": mx.array([0.0, 0.0])}
    mean, norm, sq = mean_and_clip(sums, mx.array(0.5), None)
    assert norm.item() == pytest.approx(5.0) and sq.tolist() == pytest.approx([25.0, 0.0])
    assert mean["a"].tolist() == pytest.approx([3.0, 4.0])
    clipped, norm, _ = mean_and_clip(sums, mx.array(0.5), 2.5)
    assert norm.item() == pytest.approx(5.0)
    assert clipped["a"].tolist() == pytest.approx([1.5, 2.0], rel=1e-5)


@pytest.mark.parametrize("dtype", [mx.float32, mx.bfloat16])
def test_mean_and_clip_matches_the_two_step_update_bit_for_bit(dtype):
    """The fused form gives the bits of the former mean-tree-then-clip update (compiled), so
    runs recorded before the memory fix reproduce; clipping is active here."""
    mx.random.seed(3)
    grads = {f"w{i}": (mx.random.normal((64, 48)) * 40).astype(dtype) for i in range(5)}
    inv = mx.array(1.0 / 37)

    def two_step(grads, inv):
        mean = tree_map(lambda g: g * inv.astype(g.dtype), grads)
        leaves = [g for _, g in tree_flatten(mean)]
        norm = mx.sqrt(mx.sum(mx.stack([mx.sum(mx.square(g.astype(mx.float32))) for g in leaves])))
        factor = mx.minimum(1.0, 1.0 / (norm + 1e-6))
        return tree_map(lambda g: g * factor.astype(g.dtype), mean), norm

    expected, norm_expected = mx.compile(two_step)(grads, inv)
    got, norm, _ = mx.compile(lambda g, i: mean_and_clip(g, i, 1.0))(grads, inv)
    assert norm.item() == norm_expected.item() > 1.0
    assert all(mx.array_equal(got[k], expected[k]).item() for k in grads)


def test_logged_norms_equal_direct_computation(tiny, tmp_path):  # noqa: F811
    """Delta norm == ||scale * B^T A^T|| per module; grad norms are the pre-clip norms."""
    trainer = _trainer(
        tiny, tmp_path, steps=3, grad_clip=1e-3, eval_every=100, checkpoint_every=100
    )
    trainer.run()
    rows = [r for r in read_log(tmp_path, "layer_log") if r["step"] == 3]
    deltas = {(r["layer"], r["module"]): r["value"] for r in rows if r["kind"] == "delta_norm"}
    grads = {(r["layer"], r["module"]): r["value"] for r in rows if r["kind"] == "grad_norm"}
    assert len(deltas) == 2 * 7 and set(grads) == set(deltas)
    for index, layer in enumerate(trainer.model.model.layers):
        for name, module in [
            ("q_proj", layer.self_attn.q_proj),
            ("down_proj", layer.mlp.down_proj),
        ]:
            direct = mx.linalg.norm((module.scale * module.lora_b.T) @ module.lora_a.T).item()
            assert deltas[(index, name)] == pytest.approx(direct, rel=1e-4)
    train = read_log(tmp_path, "train_log")
    total = math.sqrt(sum(v * v for (_, _), v in grads.items()))
    assert train[-1]["grad_norm"] == pytest.approx(total, rel=1e-4)
    assert train[-1]["grad_norm"] > 1e-3  # logged before clipping to 1e-3


def test_full_and_hybrid_log_parameter_deltas(tiny, tmp_path):  # noqa: F811
    trainer = _trainer(
        tiny, tmp_path, method="hybrid", steps=2, eval_every=100, checkpoint_every=100
    )
    trainer.run()
    rows = read_log(tmp_path, "layer_log")
    modules = {r["module"] for r in rows if r["kind"] == "delta_norm"}
    assert {"input_layernorm", "post_attention_layernorm", "norm", "q_proj"} <= modules
    norm = next(
        r for r in rows if r["step"] == 2 and r["module"] == "norm" and r["kind"] == "delta_norm"
    )
    direct = mx.linalg.norm(trainer.model.model.norm.weight - 1.0).item()  # random init: ones
    assert norm["value"] == pytest.approx(direct, rel=1e-4)


def test_nan_guard_stops_with_a_diagnosis(tiny, tmp_path):  # noqa: F811
    def poison(trainer, step):
        if step == 2:
            name, value = tree_flatten(trainer.model.trainable_parameters())[0]
            trainer.model.load_weights([(name, value * float("nan"))], strict=False)

    trainer = _trainer(tiny, tmp_path, steps=5, eval_every=100, checkpoint_every=100)
    trainer.hooks.append(poison)
    summary = trainer.run()
    assert summary["status"] == "diverged" and summary["steps_done"] == 1
    diagnosis = json.loads((tmp_path / "diagnosis.json").read_text())
    assert diagnosis["step"] == 2 and "non-finite" in diagnosis["reason"]
    assert [row["step"] for row in diagnosis["last_steps"]] == [1, 2]
    assert {"loss", "grad_norm", "lr"} <= set(diagnosis["last_steps"][0])
    assert not (tmp_path / "adapters.safetensors").exists()


def test_divergence_guard_on_a_rising_loss(tiny, tmp_path):  # noqa: F811
    trainer = _trainer(tiny, tmp_path, steps=2)
    for step, loss in enumerate([1.0] * 6 + [50.0] * 3, start=1):
        reason = trainer.guard({"step": step, "loss": loss, "grad_norm": 1.0})
    assert reason and "diverging" in reason


def test_early_stop_on_a_validation_plateau(tiny, tmp_path):  # noqa: F811
    trainer = _trainer(
        tiny,
        tmp_path,
        steps=8,
        learning_rate=1e-9,
        eval_every=1,
        early_stop_patience=2,
        checkpoint_every=100,
    )
    summary = trainer.run()
    assert summary["status"] == "early_stopped" and summary["steps_done"] < 8
    assert (tmp_path / "adapters.safetensors").is_file()


def test_batch_plan_is_mlx_lm_batching_and_resumable(tiny):  # noqa: F811
    examples = load_examples(tiny)
    plan = BatchPlan(examples, 4, 128, seed=3)
    assert all(len(b) == 4 for b in plan.batches)
    lengths = [max(len(examples[i]) for i in b) for b in plan.batches]
    assert lengths == sorted(lengths)
    batch = plan.next()
    assert (batch.tokens.shape[1] - 1) % 32 == 0
    seen = [plan.next_indices() for _ in range(25)]
    again = BatchPlan(examples, 4, 128, seed=3)
    again.seek(**{"epoch": 0, "cursor": 1})
    assert [again.next_indices() for _ in range(25)] == seen
    val = eval_batches(examples, 4, 2, 128)
    assert len(val) == 2


def test_dropout_uses_reproducible_randomness(tiny, tmp_path):  # noqa: F811
    losses = []
    for run in ("a", "b"):
        trainer = _trainer(
            tiny, tmp_path / run, steps=3, dropout=0.3, eval_every=100, checkpoint_every=100
        )
        trainer.run()
        losses.append([r["loss"] for r in read_log(tmp_path / run, "train_log")])
    assert losses[0] == losses[1]


def test_dry_run_measures_a_step(tiny, tmp_path):  # noqa: F811
    report = _trainer(tiny, tmp_path, steps=50).dry_run()
    assert report["peak_memory_gb"] > 0 and report["step_s"] > 0
    assert report["estimated_train_s"] <= report["worst_case_train_s"]


def test_examples_without_response_tokens_are_skipped():
    from mlx_instruct.train.batching import to_examples

    class Item:
        def __init__(self, ids, prompt_len):
            self.id, self.input_ids, self.prompt_len = "x", ids, prompt_len

    kept = to_examples([Item([1, 2, 3], 3), Item([1, 2, 3], 1), None])
    assert kept == [Example("x", (1, 2, 3), 1)]


def test_gradient_checkpointing_gives_the_same_step(tiny, tmp_path):  # noqa: F811
    losses = []
    for flag in (False, True):
        trainer = _trainer(
            tiny,
            tmp_path / str(flag),
            steps=2,
            grad_checkpoint=flag,
            eval_every=100,
            checkpoint_every=100,
        )
        trainer.run()
        rows = read_log(tmp_path / str(flag), "train_log")
        losses.append([v for r in rows for v in (r["loss"], r["grad_norm"])])
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    layer_cls = type(trainer.model.model.layers[0])
    assert layer_cls.__call__.__name__ == "__call__"  # the class is restored afterwards


def test_bfloat16_compute(tiny, tmp_path):  # noqa: F811
    trainer = _trainer(
        tiny, tmp_path, steps=2, dtype="bfloat16", eval_every=100, checkpoint_every=100
    )
    assert trainer.model.model.layers[0].mlp.down_proj.linear.weight.dtype == mx.bfloat16
    summary = trainer.run()
    assert summary["status"] == "completed"
    assert all(math.isfinite(r["loss"]) for r in read_log(tmp_path, "train_log"))


def test_the_optimizer_gets_the_study_defaults():
    """The resolved defaults (betas 0.9/0.98, weight decay 0.01) reach AdamW unchanged."""
    opt = schedule.make_optimizer(settings())
    assert opt.betas == [0.9, 0.98] and opt.weight_decay == 0.01 and opt.eps == 1e-8
