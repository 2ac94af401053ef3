"""Curriculum ordering (`data_order`, the plan's section 15): the shuffled order is mlx_lm's
as before; a curriculum reorders the same micro-batches easy to hard within the run's budget,
deterministically, across a resume and across data-parallel processes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_train_support import fresh_model, load_examples, read_log, settings, tiny, write_study  # noqa: F401

from mlx_instruct.config import ConfigError, load_config
from mlx_instruct.train.__main__ import main
from mlx_instruct.train.batching import BatchPlan, DataError
from mlx_instruct.train.trainer import Trainer


def _trainer(tiny, out, **overrides):  # noqa: F811
    return Trainer(
        fresh_model(tiny), tiny["tokenizer"], settings(**overrides), load_examples(tiny),
        load_examples(tiny, "valid"), out, seed=0, max_seq_len=128, progress=False, samples=False,
    )  # fmt: skip


def _old_order(examples, micro, seed, n):
    """The shuffled plan as it was before curricula existed (mlx_lm's batching, seeded)."""
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]))
    batches = [order[i : i + micro] for i in range(0, len(order) - micro + 1, micro)]
    out, epoch = [], 0
    while len(out) < n:
        out += [batches[b] for b in np.random.default_rng([seed, epoch]).permutation(len(batches))]
        epoch += 1
    return out[:n]


def test_shuffled_is_unchanged(tiny):  # noqa: F811
    examples = load_examples(tiny)
    plan = BatchPlan(examples, 2, 128, seed=7, budget=12)
    assert [plan.next_indices() for _ in range(50)] == _old_order(examples, 2, 7, 50)
    assert plan.difficulty is None and plan.describe()["order"] == "shuffled"


def test_length_curriculum_is_monotone_on_the_same_batches(tiny):  # noqa: F811
    examples = load_examples(tiny)
    budget = 7
    plan = BatchPlan(examples, 2, 128, seed=7, order="length", budget=budget)
    seen = [plan.next_indices() for _ in range(budget)]
    lengths = [np.mean([len(examples[i]) for i in b]) for b in seen]
    assert lengths == sorted(lengths)
    shuffled = _old_order(examples, 2, 7, budget)  # the same micro-batches, another order
    assert sorted(map(tuple, seen)) == sorted(map(tuple, shuffled))
    again = BatchPlan(examples, 2, 128, seed=7, order="length", budget=budget)
    again.seek(0, 3)
    assert [again.next_indices() for _ in range(budget - 3)] == seen[3:]


def test_a_budget_over_several_epochs_orders_each_epoch(tiny):  # noqa: F811
    examples = load_examples(tiny)
    plan = BatchPlan(examples, 2, 128, seed=1, order="length")
    n = len(plan.batches)
    plan.budget = n + 3
    plan.seek(0, 0)
    seen = [plan.next_indices() for _ in range(n + 3)]
    for part in (seen[:n], seen[n:]):
        lengths = [np.mean([len(examples[i]) for i in b]) for b in part]
        assert lengths == sorted(lengths)
    assert plan.consumed() == list(range(n))


def test_unknown_order_is_an_error(tiny, tmp_path):  # noqa: F811
    with pytest.raises(DataError, match="data_order"):
        BatchPlan(load_examples(tiny), 2, 128, seed=0, order="alphabetical")
    with pytest.raises(ConfigError, match="data_order"):
        load_config(write_study(tmp_path / "s.yaml", data_order="alphabetical"))


def test_base_loss_curriculum_orders_by_the_untuned_loss_and_resumes(tiny, tmp_path):  # noqa: F811
    first = _trainer(tiny, tmp_path / "a", data_order="base_loss", eval_every=3, checkpoint_every=3)
    summary = first.run()
    plan = first.plan
    window = plan.budget
    measured = [plan.difficulty[b] for b in plan._permutation(0)[:window]]
    assert all(v is not None and v > 0 for v in measured) and measured == sorted(measured)
    assert summary["data_order"]["order"] == "base_loss"
    assert summary["data_order"]["first"] == pytest.approx(measured[0])
    # resumed from the step-3 checkpoint: the stored measure, not a half-trained model's
    second = _trainer(
        tiny, tmp_path / "a", data_order="base_loss", eval_every=3, checkpoint_every=3
    )
    second.run(resume=True)
    assert second.state.resumed_at == [3] and second.plan.difficulty == plan.difficulty
    losses = [r["loss"] for r in read_log(tmp_path / "a", "train_log")]
    assert len(losses) == 6


def test_two_processes_measure_and_order_as_one(tiny, tmp_path):  # noqa: F811
    runs = {}
    for processes in (1, 2):
        config = write_study(
            tmp_path / f"{processes}.yaml", data_order="base_loss", processes=processes
        )
        out = tmp_path / f"p{processes}"
        argv = [
            "--config", str(config), "--experiment", "lora", "--seed", "0", "--model",
            str(tiny["model"]), "--data", str(tiny["data"]), "--out", str(out), "--no-progress",
        ]  # fmt: skip
        assert main(argv) == 0
        runs[processes] = json.loads((out / "run.json").read_text())["data_order"]
        runs[processes]["loss"] = [r["loss"] for r in read_log(out, "train_log")]
    assert runs[2]["first"] == pytest.approx(runs[1]["first"], rel=1e-5)
    assert runs[2]["last"] == pytest.approx(runs[1]["last"], rel=1e-5)
    assert runs[2]["loss"] == pytest.approx(runs[1]["loss"], rel=1e-5, abs=1e-6)
