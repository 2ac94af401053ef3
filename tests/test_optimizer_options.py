"""The full fine-tune's memory options (issue 12): Adafactor, train_embeddings, weight_delta.

What a run trains (which weights, which optimizer) is stated in run.json, so that "full"
never silently means less; Adafactor must really train; a bad optimizer name is a config
error naming the key.
"""

from __future__ import annotations

import json

import mlx.core as mx
import mlx.optimizers as optim
import pytest
from mlx.utils import tree_flatten
from test_train_support import fresh_model, load_examples, settings, tiny, write_study  # noqa: F401

from mlx_instruct.config import DEFAULT_TRAINING, ConfigError, validate
from mlx_instruct.train.__main__ import main
from mlx_instruct.train.methods import MethodError, apply_method
from mlx_instruct.train.schedule import make_optimizer
from mlx_instruct.train.trainer import Trainer


def test_optimizer_settings_leave_old_fingerprints_alone():
    """Unlisted settings: a run that does not set them resolves exactly as before."""
    for key in ("optimizer", "train_embeddings", "weight_delta"):
        assert key not in DEFAULT_TRAINING


def test_make_optimizer_names_adafactor_and_rejects_others():
    opt = make_optimizer(settings(optimizer="adafactor"))
    assert isinstance(opt, optim.Adafactor) and opt.beta_1 is None
    assert not opt.relative_step and not opt.scale_parameter  # follows the study's schedule
    assert isinstance(make_optimizer(settings()), optim.AdamW)
    with pytest.raises(ValueError, match="optimizer: unknown 'sgd'"):
        make_optimizer(settings(optimizer="sgd"))


def test_adafactor_state_is_factored_and_in_the_weights_dtype(tiny):  # noqa: F811
    model = fresh_model(tiny)
    apply_method(model, settings(method="full", dtype="bfloat16"))
    opt = make_optimizer(settings(optimizer="adafactor"))
    opt.init(model.trainable_parameters())
    state = [v for k, v in tree_flatten(opt.state) if k != "step" and k != "learning_rate"]
    params = [v for _, v in tree_flatten(model.trainable_parameters())]
    assert all(v.dtype == mx.bfloat16 for v in state)
    assert sum(v.size for v in state) < 0.1 * sum(v.size for v in params)


def test_adafactor_full_fine_tune_lowers_the_loss(tiny, tmp_path):  # noqa: F811
    s = settings(method="full", optimizer="adafactor", learning_rate=1e-2, steps=8,
                 warmup_fraction=0.0, schedule="constant", eval_every=8, checkpoint_every=8)  # fmt: skip
    trainer = Trainer(
        fresh_model(tiny), tiny["tokenizer"], s, load_examples(tiny), load_examples(tiny, "valid"),
        tmp_path, max_seq_len=128, model_path=tiny["model"], progress=False, samples=False,
    )  # fmt: skip
    summary = trainer.run()
    losses = [
        json.loads(x)["loss"] for x in (tmp_path / "train_log.jsonl").read_text().splitlines()
    ]
    assert summary["status"] == "completed" and all(map(lambda v: v == v, losses))
    assert min(losses[-3:]) < losses[0] - 0.1, losses


def test_full_trains_blocks_only_unless_embeddings_are_asked_for(tiny):  # noqa: F811
    model = fresh_model(tiny)
    info = apply_method(model, settings(method="full"))
    names = [n for n, _ in tree_flatten(model.trainable_parameters())]
    assert all(".layers." in n for n in names)
    assert info.trained_parts["embeddings_params"] == 0 and info.base_values
    assert info.trained.startswith("all weights of 2/2 blocks") and "frozen" in info.trained

    model = fresh_model(tiny)
    info = apply_method(model, settings(method="full", train_embeddings=True, weight_delta=False))
    names = [n for n, _ in tree_flatten(model.trainable_parameters())]
    assert "model.embed_tokens.weight" in names and "model.norm.weight" in names
    assert info.trained_parts["embeddings_params"] > 0 and not info.base_values
    assert "frozen" not in info.trained and info.trainable_params == info.total_params


def test_train_embeddings_is_full_only(tiny):  # noqa: F811
    with pytest.raises(MethodError, match="train_embeddings: only method full"):
        apply_method(fresh_model(tiny), settings(train_embeddings=True))


def test_run_json_states_the_optimizer_and_what_trained(tiny, tmp_path):  # noqa: F811
    config = write_study(tmp_path / "study.yaml", optimizer="adafactor", steps=2)
    out = tmp_path / "run"
    argv = ["--config", str(config), "--experiment", "full", "--seed", "0", "--model",
            str(tiny["model"]), "--data", str(tiny["data"]), "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["optimizer"] == "adafactor"
    assert record["trained"].endswith("adafactor") and "2/2 blocks" in record["trained"]
    assert record["trained_parts"]["params"] == record["trainable_params"]


def test_a_bad_optimizer_name_is_a_config_error_naming_the_key(tmp_path):
    from test_train_support import study

    config = study(optimizer="sgd")
    with pytest.raises(ConfigError, match="training.optimizer"):
        validate(config, "study.yaml")
