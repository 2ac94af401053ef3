"""Evaluation core: batched generation, log-likelihoods, loading a trained run, the runner, CLI.

Models here are tiny Llama-architecture models with random (scaled-up, so greedy decoding is
decisive) weights and a small byte-level BPE tokenizer trained on the fly: fast and offline.
"""

from __future__ import annotations

import json
from pathlib import Path

# isort: off
import mlx_instruct  # noqa: F401  (OpenBLAS before mlx)
import mlx.core as mx

# isort: on
import pytest
from mlx.utils import tree_flatten

from mlx_instruct.evaluate import generation as gen
from mlx_instruct.evaluate import scoring
from mlx_instruct.evaluate.context import EvalDataError, load_context
from mlx_instruct.evaluate.prefix import prefix_clusters
from mlx_instruct.evaluate.runner import SUITES, SuiteError, get_suite, run_suite

CORPUS = [
    "The quick brown fox jumps over the lazy dog. " * 3,
    "def add(a, b):\n    return a + b\n",
    "Question: What is 2 + 2?\nAnswer: 4\n",
    "### Instruction:\nSay hi.\n\n### Output:\nhi\n",
    "Q: Is the sky blue?\nA: Yes\n\nQ: not True is\nA: False\n",
]
PROMPTS = [
    "The quick brown",
    "def add(a",
    "Question: What is 2 + 2?\nAnswer:",
    "hi",
    "### Instruction:\nSay hi.\n\n### Output:\n",
    "Q: Is the sky",
]
CONFIG = {
    "study": "t",
    "data": {"template": "alpaca"},
    "training": {},
    "experiments": {"base": {"method": "none"}, "lora-r4": {"method": "lora", "rank": 4}},
    "evaluation": {"generation": {"max_tokens": 8, "batch_size": 4}, "suites": {}},
}


def make_tiny_model_dir(path: Path, *, seed: int = 0, vocab_size: int = 384) -> Path:
    """A tiny Llama model dir (config.json, model.safetensors, tokenizer) mlx_lm.load reads."""
    from mlx_lm.models import llama
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    path.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 20, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 0)]
    )
    tok.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "model_max_length": 4096,
            }
        )
    )
    config = {
        "model_type": "llama",
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-5,
        "vocab_size": tok.get_vocab_size(),
        "tie_word_embeddings": True,
        "bos_token_id": 0,
        "eos_token_id": 1,
    }
    mx.random.seed(seed)
    model = llama.Model(llama.ModelArgs.from_dict(config))
    scaled = [(k, v * 4) for k, v in tree_flatten(model.parameters()) if "norm" not in k]
    model.load_weights(scaled, strict=False)
    mx.save_safetensors(str(path / "model.safetensors"), dict(tree_flatten(model.parameters())))
    (path / "config.json").write_text(json.dumps(config))
    return path


def make_adapter_dir(model_dir: Path, out: Path, *, rank: int = 4, seed: int = 1) -> Path:
    """An mlx_lm-format LoRA adapter (random, non-zero B) for the model at model_dir."""
    from mlx_lm import load
    from mlx_lm.tuner.utils import linear_to_lora_layers

    model, _ = load(str(model_dir))
    params = {
        "rank": rank,
        "scale": 2.0,
        "dropout": 0.0,
        "keys": ["self_attn.q_proj", "self_attn.v_proj"],
    }
    linear_to_lora_layers(model, 2, params)
    mx.random.seed(seed)
    weights = {
        k: mx.random.normal(v.shape) * 0.5
        for k, v in tree_flatten(model.trainable_parameters())
        if k.endswith(("lora_a", "lora_b"))
    }
    out.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(out / "adapters.safetensors"), weights)
    (out / "adapter_config.json").write_text(
        json.dumps({"fine_tune_type": "lora", "num_layers": 2, "lora_parameters": params})
    )
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from mlx_lm import load

    path = make_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model")
    model, tokenizer = load(str(path))
    return path, model, tokenizer


# -- generation -------------------------------------------------------------------------------


def test_generation_token_ids_valid_and_max_tokens(tiny):
    _, model, tok = tiny
    vocab = model.args.vocab_size
    outs = gen.generate(model, tok, PROMPTS, max_tokens=7, batch_size=4)
    assert len(outs) == len(PROMPTS)
    for g, prompt in zip(outs, PROMPTS, strict=True):
        assert all(0 <= t < vocab for t in g.token_ids)
        assert 1 <= g.generated_tokens <= 7
        assert len(g.token_ids) <= 7
        assert g.finish_reason in ("stop", "length")
        if g.finish_reason == "length":
            assert len(g.token_ids) == 7
        assert g.prompt_tokens == len(gen.encode_prompt(tok, prompt))
        assert g.latency_s >= 0
        assert g.text == tok.decode(g.token_ids)
    assert all(1 not in g.token_ids for g in outs)  # EOS never in the text


def test_stop_strings_truncate_and_count(tiny):
    _, model, tok = tiny
    free = gen.generate(model, tok, PROMPTS, max_tokens=12, batch_size=3)
    # stop at a 2-character piece that occurs in the middle of each free completion
    stops = [g.text[len(g.text) // 2 : len(g.text) // 2 + 2] for g in free]
    for g, s, prompt in zip(free, stops, PROMPTS, strict=True):
        if not s.strip():
            continue
        [stopped] = gen.generate(model, tok, [prompt], max_tokens=12, stop=[s])
        assert s not in stopped.text
        assert stopped.finish_reason == "stop"
        assert g.text.startswith(stopped.text)
        assert stopped.text == g.text[: g.text.find(s)]
        assert stopped.generated_tokens <= g.generated_tokens


def test_hard_cap_and_bad_max_tokens(tiny):
    _, model, tok = tiny
    with pytest.raises(ValueError, match="max_tokens"):
        gen.generate(model, tok, ["hi"], max_tokens=0)
    assert gen.generate(model, tok, [], max_tokens=3) == []
    [g] = gen.generate(model, tok, [""], max_tokens=3)  # an empty prompt still runs
    assert g.generated_tokens <= 3


def test_batched_equals_unbatched_greedy(tiny):
    """Prompts of different lengths are right-padded for prefill and the cache is rolled to
    left padding by mlx_lm's BatchKVCache; masking makes padding invisible, so greedy tokens
    match a one-at-a-time run (up to float noise: we compare the first 8 tokens, which on these
    peaked models agree exactly; a near-tie could flip a later token)."""
    _, model, tok = tiny
    batched = gen.generate(model, tok, PROMPTS, max_tokens=10, batch_size=len(PROMPTS))
    single = [gen.generate(model, tok, [p], max_tokens=10, batch_size=1)[0] for p in PROMPTS]
    for b, s in zip(batched, single, strict=True):
        assert b.token_ids[:8] == s.token_ids[:8]
    agree = sum(b.token_ids == s.token_ids for b, s in zip(batched, single, strict=True))
    assert agree >= len(PROMPTS) - 1


def test_shared_prompt_prefix_runs_once_and_changes_nothing(tiny):
    """Few-shot prompts: the shared exemplars' KV cache seeds every sequence."""
    _, model, tok = tiny
    shots = "Q: Is the sky blue?\nA: Yes\n\nQ: not True is\nA: False\n\n" * 6
    prompts = [shots + p for p in PROMPTS] + ["unrelated short prompt"]
    encoded = [gen.encode_prompt(tok, p) for p in prompts]
    clusters = prefix_clusters(encoded, 64)
    assert sorted(len(m) for m, n in clusters if n) == [len(PROMPTS)]
    [(members, prefix_len)] = [c for c in clusters if c[1]]
    shortest = min(len(encoded[m]) for m in members)
    assert prefix_len >= gen.PREFIX_SHARE_FRACTION * shortest  # the shared path is taken
    shared = gen.generate(model, tok, prompts, max_tokens=8, batch_size=4)
    plain = gen.generate(model, tok, prompts, max_tokens=8, batch_size=4, share_prefix=False)
    for a, b in zip(shared, plain, strict=True):
        assert a.token_ids[:6] == b.token_ids[:6]
        assert a.prompt_tokens == b.prompt_tokens
    assert (
        sum(a.token_ids == b.token_ids for a, b in zip(shared, plain, strict=True))
        >= len(prompts) - 1
    )


def test_sampling_is_seeded(tiny):
    _, model, tok = tiny
    a = gen.generate(model, tok, PROMPTS, max_tokens=8, temperature=1.0, seed=3)
    b = gen.generate(model, tok, PROMPTS, max_tokens=8, temperature=1.0, seed=3)
    c = gen.generate(model, tok, PROMPTS, max_tokens=8, temperature=1.0, seed=4)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    assert [g.token_ids for g in a] != [g.token_ids for g in c]


# -- log-likelihoods --------------------------------------------------------------------------


def _direct(model, ctx, cont):
    logits = model(mx.array(ctx + cont)[None])[0].astype(mx.float32)
    logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
    rows = range(len(ctx) - 1, len(ctx) + len(cont) - 1)
    score = sum(logprobs[r, t].item() for r, t in zip(rows, cont, strict=True))
    greedy = all(mx.argmax(logits[r]).item() == t for r, t in zip(rows, cont, strict=True))
    return score, greedy


class _Request:
    def __init__(self, *args):
        self.args = args


def test_lmeval_loglikelihood_equals_direct_forward(tiny):
    from mlx_instruct.evaluate.lmeval import MLXEvalLM

    _, model, tok = tiny
    pairs = [
        ("Q: Is the sky blue?\nA:", " Yes"),
        ("Q: Is the sky blue?\nA:", " No"),
        ("Q: Is the sky blue?\nA:", " the quick brown fox"),
        ("The quick brown", " fox jumps over"),
        ("", "hello there"),
        ("a trailing space ", "b"),
    ]
    lm = MLXEvalLM(model, tok)
    got = lm.loglikelihood([_Request(c, x) for c, x in pairs])
    for (c, x), (score, greedy) in zip(pairs, got, strict=True):
        ctx, cont = scoring.split_context(tok, c, x)
        want_score, want_greedy = _direct(model, ctx, cont)
        assert score == pytest.approx(want_score, abs=1e-3)
        assert greedy == want_greedy
    # shared-prefix and full-sequence paths agree
    full = scoring.loglikelihood(model, tok, pairs, share_prefix=False)
    assert [s for s, _ in got] == pytest.approx([s for s, _ in full], abs=1e-3)
    # greedy continuation is recognised as greedy
    [g] = gen.generate(model, tok, ["The quick brown"], max_tokens=3)
    [(_, is_greedy)] = scoring.loglikelihood(
        model, tok, [(gen.encode_prompt(tok, "The quick brown"), g.token_ids)]
    )
    assert is_greedy


def test_prefix_sharing_equals_full_sequences(tiny):
    """Few-shot style: contexts share a long prefix; each question has several choices."""
    _, model, tok = tiny
    shots = "Q: Is the sky blue?\nA: Yes\n\nQ: not True is\nA: False\n\n" * 3
    questions = ["Q: What is 2 + 2?\nA:", "Q: Say hi.\nA:", "Q: def add(a, b)\nA:"]
    pairs = [(shots + q, c) for q in questions for c in (" Yes", " No", " the lazy dog")]
    pairs.append(("unrelated context", " fox"))
    encoded = [scoring.split_context(tok, c, x) for c, x in pairs]
    clusters = prefix_clusters([c for c, _ in encoded], 16)
    assert sorted(len(m) for m, _ in clusters) == [1, 9]  # one shared-prefix cluster
    shared = scoring.loglikelihood(model, tok, pairs, token_budget=64)  # several batches
    full = scoring.loglikelihood(model, tok, pairs, share_prefix=False)
    direct = [_direct(model, c, x) for c, x in encoded]
    assert [s for s, _ in shared] == pytest.approx([s for s, _ in direct], abs=1e-3)
    assert [s for s, _ in full] == pytest.approx([s for s, _ in direct], abs=1e-3)
    assert [g for _, g in shared] == [g for _, g in direct]


def test_rolling_loglikelihood_equals_direct(tiny):
    from mlx_instruct.evaluate.lmeval import MLXEvalLM

    _, model, tok = tiny
    text = "The quick brown fox jumps over the lazy dog."
    [score] = MLXEvalLM(model, tok).loglikelihood_rolling([_Request(text)])
    ids = tok.encode(text, add_special_tokens=False)
    want, _ = _direct(model, [0], ids)
    assert score == pytest.approx(want, abs=1e-3)
    [windowed] = scoring.rolling_loglikelihood(model, tok, [text], max_context=4)
    assert windowed < 0  # disjoint windows: each token scored once, with less context


# -- contexts and adapters ----------------------------------------------------------------------


def test_a_run_loads_through_load_trained(tmp_path, tiny):
    """The context loads a run exactly as train.outputs.load_trained does (one loader)."""
    import shutil

    from mlx_instruct.train.outputs import load_trained

    base_dir = tiny[0]
    a1 = make_adapter_dir(base_dir, tmp_path / "runs" / "a1", seed=1)
    base_ctx = load_context(CONFIG, "base", 0, base_dir, None, tmp_path, tmp_path / "out")
    assert base_ctx.method == "none" and base_ctx.rank is None and base_ctx.adapter_dir is None
    base_out = [g.token_ids for g in base_ctx.generate(PROMPTS, max_tokens=6)]
    ctx1 = load_context(CONFIG, "lora-r4", 0, base_dir, a1, tmp_path, tmp_path / "o")
    assert ctx1.method == "lora" and ctx1.rank == 4 and ctx1.adapter_dir == a1
    out1 = [g.token_ids for g in ctx1.generate(PROMPTS, max_tokens=6)]
    assert out1 != base_out
    model, tokenizer = load_trained(base_dir, a1)
    assert [g.token_ids for g in gen.generate(model, tokenizer, PROMPTS, max_tokens=6)] == out1
    # hybrid: LoRA + trained norms (the extra_weights named in adapter_config.json)
    a4 = tmp_path / "runs" / "a4"
    shutil.copytree(a1, a4)
    norm = ctx1.model.model.layers[0].input_layernorm.weight
    mx.random.seed(5)
    norms = {"model.layers.0.input_layernorm.weight": mx.random.normal(norm.shape) * 3}
    mx.save_safetensors(str(a4 / "norms.safetensors"), norms)
    config = json.loads((a4 / "adapter_config.json").read_text())
    (a4 / "adapter_config.json").write_text(
        json.dumps({**config, "extra_weights": "norms.safetensors"})
    )
    ctx4 = load_context(CONFIG, "lora-r4", 0, base_dir, a4, tmp_path, tmp_path / "o")
    assert [g.token_ids for g in ctx4.generate(PROMPTS, max_tokens=6)] != out1


def test_full_finetune_run_is_its_own_model(tmp_path, tiny):
    base_dir = tiny[0]
    full = make_tiny_model_dir(tmp_path / "full", seed=7)
    ctx = load_context(CONFIG, "base", 0, base_dir, None, tmp_path, tmp_path / "out")
    base_out = [g.token_ids for g in ctx.generate(PROMPTS, max_tokens=6)]
    fctx = load_context(CONFIG, "base", 0, base_dir, full, tmp_path, tmp_path / "out")
    assert [g.token_ids for g in fctx.generate(PROMPTS, max_tokens=6)] != base_out
    with pytest.raises(EvalDataError, match="neither adapter_config.json"):
        load_context(CONFIG, "base", 0, base_dir, tmp_path, tmp_path, tmp_path / "out")


def test_a_run_that_does_not_fit_the_base_names_the_run(tmp_path, tiny):
    bad = make_adapter_dir(tiny[0], tmp_path / "runs" / "bad")
    weights = {k: mx.zeros((3, 3)) for k in mx.load(str(bad / "adapters.safetensors"))}
    mx.save_safetensors(str(bad / "adapters.safetensors"), weights)
    with pytest.raises(EvalDataError, match=r"bad: cannot load the trained run"):
        load_context(CONFIG, "lora-r4", 0, tiny[0], bad, tmp_path, tmp_path / "out")


def test_format_uses_the_study_template(tmp_path, tiny):
    ctx = load_context(CONFIG, "base", 0, tiny[0], None, tmp_path, tmp_path / "out")
    prompt = ctx.format("Say hi.", "to Bob")
    assert "Say hi." in prompt and "to Bob" in prompt and prompt.rstrip().endswith(":")


# -- runner -----------------------------------------------------------------------------------

CALLS = {"n": 0}


def _echo_suite(ctx, settings):
    CALLS["n"] += 1
    gens = ctx.generate(PROMPTS[: settings.get("n", 2)], max_tokens=4)
    for i, g in enumerate(gens):
        ctx.record_generation(str(i), PROMPTS[i], g.text)
    return [
        {"benchmark": "echo", "item_id": i, "metric": "len", "value": len(g.token_ids)}
        for i, g in enumerate(gens)
    ]


def _bad_suite(ctx, settings):
    return [{"benchmark": "x", "item_id": 0, "metric": "m", "value": "not a number"}]


def test_run_suite_writes_rows_and_resumes(tmp_path, tiny, monkeypatch):
    monkeypatch.setitem(SUITES, "_test_echo", f"{__name__}:_echo_suite")
    monkeypatch.setitem(SUITES, "_test_bad", f"{__name__}:_bad_suite")
    ctx = load_context(CONFIG, "base", 0, tiny[0], None, tmp_path, tmp_path / "out")
    CALLS["n"] = 0
    path = run_suite(ctx, "_test_echo", {"n": 3})
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 3 and CALLS["n"] == 1
    assert list(rows[0]) == ["suite", "benchmark", "item_id", "metric", "value"]
    assert rows[0]["suite"] == "_test_echo" and rows[0]["item_id"] == "0"
    gens = (tmp_path / "out" / "_test_echo.generations.jsonl").read_text().splitlines()
    assert len(gens) == 3 and set(json.loads(gens[0])) >= {"item_id", "prompt", "response"}
    assert run_suite(ctx, "_test_echo", {"n": 3}) == path and CALLS["n"] == 1  # resumed
    run_suite(ctx, "_test_echo", {"n": 2}, force=True)
    assert CALLS["n"] == 2 and len(path.read_text().splitlines()) == 2
    with pytest.raises(SuiteError, match="not a number"):
        run_suite(ctx, "_test_bad", {})
    assert not (tmp_path / "out" / "_test_bad.jsonl").exists()
    with pytest.raises(SuiteError, match="unknown suite"):
        run_suite(ctx, "no_such_suite", {})
    monkeypatch.setitem(SUITES, "_test_gone", "mlx_instruct.evaluate.no_such_module:suite")
    with pytest.raises(SuiteError, match="cannot import mlx_instruct.evaluate.no_such_module"):
        get_suite("_test_gone")
    monkeypatch.setitem(SUITES, "_test_gone", f"{__name__}:no_such_function")
    with pytest.raises(SuiteError, match="has no function 'no_such_function'"):
        get_suite("_test_gone")


def test_cli_errors_are_one_line_exit_2(tmp_path, capsys, tiny):
    import yaml

    from mlx_instruct.evaluate.__main__ import main

    repo = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((repo / "config.yaml").read_text())
    experiment = next(iter(config["experiments"]))
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(config))
    base = ["--config", str(study), "--experiment", experiment, "--model", str(tiny[0])]
    base += ["--data", str(tmp_path), "--out", str(tmp_path / "out")]
    assert main(base + ["--suite", "no_such_suite"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "unknown suite" in err and "\n" not in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: x\n")
    assert main(["--config", str(bad), *base[2:], "--suite", "humaneval"]) == 2
    assert "\n" not in capsys.readouterr().err.strip()
    missing = [*base[:5], str(tmp_path / "nope"), *base[6:], "--suite", "humaneval"]
    assert main(missing) == 2
    assert "model dir not found" in capsys.readouterr().err


def test_eval_modules_do_not_import_torch():
    import subprocess
    import sys

    code = (
        "import mlx_instruct, sys\n"
        "import mlx_instruct.evaluate.lmeval, mlx_instruct.evaluate.benchmarks\n"
        "import mlx_instruct.evaluate.humaneval, lm_eval.evaluator, lm_eval.tasks\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
