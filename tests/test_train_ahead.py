"""A step built ahead (train/ahead.py) trains exactly as one step at a time.

The GPU builds step N+1's graph while step N runs; these tests force that path on the CPU
and compare it with the synchronous one, bit for bit, including a run the guard stops.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten
from test_train_support import fresh_model, load_examples, read_log, settings, tiny  # noqa: F401

from mlx_instruct.train.trainer import Trainer

TIMING = {"tokens_per_s", "step_time_s", "peak_memory_gb"}
ONE_MICRO_BATCH = {"batch_size": 2, "micro_batch_size": 2, "sample_every": 100}


def _trainer(tiny, out, overlap: bool, **overrides) -> Trainer:  # noqa: F811
    return Trainer(
        fresh_model(tiny), tiny["tokenizer"], settings(**{**ONE_MICRO_BATCH, **overrides}),
        load_examples(tiny), load_examples(tiny, "valid"), out, seed=0, max_seq_len=128,
        model_path=tiny["model"], progress=False, samples=False, overlap=overlap,
    )  # fmt: skip


def _params(trainer: Trainer) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in tree_flatten(trainer.model.trainable_parameters())}


def _untimed(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def test_a_step_built_ahead_trains_bit_for_bit_as_one_at_a_time(tiny, tmp_path):  # noqa: F811
    runs = {}
    for overlap in (False, True):
        out = tmp_path / f"overlap-{overlap}"
        trainer = _trainer(tiny, out, overlap, steps=6, eval_every=3, checkpoint_every=4)
        trainer.begin()
        between = []
        while trainer.state.step < trainer.settings.steps:
            trainer.train_step()
            # Between calls the trainer reads as after this step, whatever was traced ahead.
            between.append((_params(trainer), dict(trainer.plan.position)))
            if overlap and trainer.state.step == 1:
                assert trainer._ahead is not None  # the path under test was taken
        summary = trainer.finish()
        runs[overlap] = (between, summary, out)
    (sync, sync_summary, sync_out), (ahead, ahead_summary, ahead_out) = runs[False], runs[True]
    for (params_a, position_a), (params_b, position_b) in zip(sync, ahead, strict=True):
        assert position_a == position_b
        assert params_a.keys() == params_b.keys()
        assert all(np.array_equal(params_a[k], params_b[k]) for k in params_a)
    for log in ("train_log", "val_log", "layer_log"):
        assert _untimed(read_log(sync_out, log)) == _untimed(read_log(ahead_out, log)), log
    assert sync_summary["status"] == ahead_summary["status"] == "completed"
    assert sync_summary["tokens"] == ahead_summary["tokens"]
    saved = [mx.load(str(out / "adapters.safetensors")) for out in (sync_out, ahead_out)]
    assert all(np.array_equal(np.array(saved[0][k]), np.array(saved[1][k])) for k in saved[0])


def test_a_step_built_ahead_is_dropped_when_the_guard_stops_the_run(tiny, tmp_path):  # noqa: F811
    """A learning rate that blows the loss up: the traced next step must not run or stay."""
    found = {}
    for overlap in (False, True):
        trainer = _trainer(tiny, tmp_path / f"overlap-{overlap}", overlap, steps=12,
                           learning_rate=1e6, warmup_fraction=0.0, grad_clip=None,
                           eval_every=100, checkpoint_every=100)  # fmt: skip
        summary = trainer.run()
        found[overlap] = (summary, _params(trainer), dict(trainer.plan.position))
    (sync, sync_params, sync_position), (ahead, ahead_params, ahead_position) = found.values()
    assert sync["status"] == ahead["status"] == "diverged"
    assert sync["steps_done"] == ahead["steps_done"] < 11  # stopped before the last step
    assert sync["diagnosis"]["step"] == ahead["diagnosis"]["step"]
    assert sync_position == ahead_position
    assert all(np.array_equal(sync_params[k], ahead_params[k], equal_nan=True) for k in sync_params)
