"""The training loop's overlap (issue 13 item 3): queueing step n+1 on the device before
reading step n's metrics changes when the host works, never what the device computes."""

from __future__ import annotations

import mlx.core as mx
import pytest
from test_train_support import fresh_model, load_examples, read_log, settings, tiny  # noqa: F401

from mlx_instruct.train.trainer import Trainer

EXACT = ("step", "tokens", "loss", "ppl", "lr", "grad_norm", "loss_tokens")


def _trainer(tiny, out, overlap: bool, **overrides) -> Trainer:  # noqa: F811
    return Trainer(
        fresh_model(tiny), tiny["tokenizer"], settings(**overrides), load_examples(tiny),
        load_examples(tiny, "valid"), out, seed=0, max_seq_len=128, model_path=tiny["model"],
        progress=False, samples=False, overlap=overlap,
    )  # fmt: skip


@pytest.mark.parametrize(
    "overrides",
    [
        {"steps": 7, "eval_every": 3, "checkpoint_every": 5},  # two micro-batches a step
        {"steps": 5, "batch_size": 2, "dropout": 0.2, "eval_every": 100, "checkpoint_every": 2},
    ],
)
def test_overlap_leaves_logs_and_adapters_bit_identical(tiny, tmp_path, overrides):  # noqa: F811
    runs = {}
    for overlap in (True, False):
        out = tmp_path / str(overlap)
        assert _trainer(tiny, out, overlap, **overrides).run()["status"] == "completed"
        runs[overlap] = out
    on, off = runs[True], runs[False]
    assert [{k: r[k] for k in EXACT} for r in read_log(on, "train_log")] == [
        {k: r[k] for k in EXACT} for r in read_log(off, "train_log")
    ]
    assert read_log(on, "layer_log") == read_log(off, "layer_log")
    assert read_log(on, "val_log") == read_log(off, "val_log")
    a, b = mx.load(str(on / "adapters.safetensors")), mx.load(str(off / "adapters.safetensors"))
    assert a.keys() == b.keys() and all(mx.array_equal(a[k], b[k]).item() for k in a)


def test_the_next_step_is_built_before_the_last_ones_metrics_are_read(tiny, tmp_path):  # noqa: F811
    """Hooks run as a step is built: with the overlap, step n+1's hook sees step n unread,
    except after a step that validates (3) or is the last (6), where nothing is queued early."""
    seen: dict[bool, list[tuple[int, int]]] = {}
    for overlap in (True, False):
        trainer = _trainer(tiny, tmp_path / str(overlap), overlap, eval_every=3)
        seen[overlap] = []
        trainer.hooks.append(lambda t, step, log=seen[overlap]: log.append((step, t.state.step)))
        trainer.run()
    assert seen[False] == [(n, n - 1) for n in range(1, 7)]
    assert seen[True] == [(1, 0), (2, 0), (3, 1), (4, 3), (5, 3), (6, 4)]
