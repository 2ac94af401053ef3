"""deploy speculative: greedy decoding with a draft on a tiny random Mistral (CPU, float32)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlx_instruct.deploy import speculative
from mlx_instruct.io import read_jsonl

MAX_TOKENS = 32


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The target, its 4-bit variant (mlx_lm convert) and prompts in test.jsonl's shape."""
    from mlx_lm.convert import convert

    from mlx_instruct.sources import prepare_model

    root = tmp_path_factory.mktemp("speculative")
    target = prepare_model("random://mistral-tiny", root / "target")
    convert(str(target), str(root / "q4"), quantize=True, q_bits=4, q_group_size=64)
    prompts = root / "test.jsonl"
    records = [
        {"id": "a", "instruction": "Write a haiku about autumn."},
        {"id": "b", "instruction": "Name three planets.", "input": "solar system"},
        {"id": "c", "prompt": "[INST] Explain overfitting. [/INST]"},
    ]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in records))
    return {"target": target, "q4": root / "q4", "prompts": prompts, "root": root}


def _run(models: dict[str, Path], draft: str, out: Path, *extra: str) -> int:
    return speculative.main(
        ["--model", str(models["target"]), "--draft", str(models[draft])]
        + ["--prompts", str(models["prompts"]), "--max-tokens", str(MAX_TOKENS)]
        + ["--num-draft", "2", "4", "--out", str(out), *extra]
    )


def _by(rows: list[dict], bench: str, metric: str) -> list[float]:
    return [r["value"] for r in rows if r["benchmark"] == bench and r["metric"] == metric]


@pytest.mark.slow
def test_self_draft_accepts_all_it_can(models: dict[str, Path], tmp_path: Path) -> None:
    """The target as its own draft: every drafted token is accepted, so the acceptance is
    exactly the schedule's share of drafted tokens (K per round of K+1, the last round cut
    to what max_tokens leaves) - unless a prompt ends at EOS first."""
    out = tmp_path / "spec.jsonl"
    assert _run(models, "target", out) == 0
    rows = read_jsonl(out)
    lengths = _by(rows, "no-draft", "generated_tokens")
    assert len(lengths) == 3 and MAX_TOKENS in lengths
    for k, expected in ((2, 22 / 32), (4, 26 / 32)):  # 10 rounds of 3 + 2; 6 of 5 + 2
        acceptance = _by(rows, f"k{k}", "acceptance")
        assert all(
            a == pytest.approx(expected)
            for a, n in zip(acceptance, lengths, strict=True)
            if n == MAX_TOKENS
        )
        assert _by(rows, f"k{k}", "identical") == [1.0, 1.0, 1.0]
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["target_float32"] is True and summary["mismatches"] == []


@pytest.mark.slow
def test_quantized_draft_keeps_greedy_output(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "spec.jsonl"
    assert _run(models, "q4", out, "--n", "2") == 0
    rows = read_jsonl(out)
    assert {r["item_id"] for r in rows} == {"a", "b"}
    assert {r["benchmark"] for r in rows} == {"no-draft", "k2", "k4"}
    for k in (2, 4):
        assert _by(rows, f"k{k}", "identical") == [1.0, 1.0]
        assert all(0.0 <= a <= k / (k + 1) + 1e-9 for a in _by(rows, f"k{k}", "acceptance"))
        tps = _by(rows, f"k{k}", "tokens_per_s")
        base = _by(rows, "no-draft", "tokens_per_s")
        speedup = _by(rows, f"k{k}", "speedup")
        assert speedup == pytest.approx([t / b for t, b in zip(tps, base, strict=True)])
    assert all(t > 0 for t in _by(rows, "no-draft", "tokens_per_s"))


def test_exact_arithmetic_only_for_float32(models: dict[str, Path]) -> None:
    import mlx.core as mx

    from mlx_instruct.sources import load_model

    model, _ = load_model(models["target"])
    assert speculative.exact_arithmetic(model)
    quantized, _ = load_model(models["q4"])
    assert not speculative.exact_arithmetic(quantized)
    model.set_dtype(mx.bfloat16)
    assert not speculative.exact_arithmetic(model)


def test_refuses_other_vocab_size_before_loading(models: dict[str, Path], tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(models["target"], other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "vocab_size": 32768}))
    with pytest.raises(speculative.SpeculativeError, match="vocab_size 32768") as info:
        speculative.check_same_vocabulary(models["target"], other)
    assert str(other) in str(info.value) and str(models["target"]) in str(info.value)
    out = tmp_path / "spec.jsonl"
    models = {**models, "other": other}
    assert _run(models, "other", out) == 2
    assert not out.exists()


def test_refuses_other_tokenizer(models: dict[str, Path], tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(models["target"], other)
    tokenizer = json.loads((other / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    first, second = list(vocab)[1000:1002]
    vocab[first], vocab[second] = vocab[second], vocab[first]
    (other / "tokenizer.json").write_text(json.dumps(tokenizer))
    with pytest.raises(speculative.SpeculativeError, match="different tokenizers"):
        speculative.check_same_vocabulary(models["target"], other)


def test_prompts_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(speculative.SpeculativeError, match="missing.jsonl: file not found"):
        speculative.read_prompts(missing, None, "chat", None)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "text": "no prompt"}\n')
    with pytest.raises(speculative.SpeculativeError, match=r"bad.jsonl:1: expected"):
        speculative.read_prompts(bad, None, "chat", None)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(speculative.SpeculativeError, match="no records"):
        speculative.read_prompts(empty, None, "chat", None)


@settings(max_examples=40, deadline=None)
@given(
    texts=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=8),
    n=st.one_of(st.none(), st.integers(min_value=1, max_value=10)),
)
def test_prompts_keep_order_ids_and_text(tmp_path_factory, texts: list[str], n) -> None:
    """Formatted prompts are used verbatim, in file order, the first n; ids default to the
    line number."""
    path = tmp_path_factory.mktemp("prompts") / "p.jsonl"
    records = [{"prompt": t} if i % 2 else {"id": i, "prompt": t} for i, t in enumerate(texts)]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    got = speculative.read_prompts(path, n, "chat", None)
    expected = [(str(i) if i % 2 == 0 else f"line{i + 1}", t) for i, t in enumerate(texts)][
        : n or None
    ]
    assert got == expected


def test_cli_flags_are_checked(tmp_path: Path) -> None:
    base = ["--model", "m", "--draft", "d", "--prompts", "p.jsonl"]
    for bad in (
        ["--out", str(tmp_path / "x.json")],
        ["--out", str(tmp_path / "x.jsonl"), "--num-draft", "0"],
        ["--out", str(tmp_path / "x.jsonl"), "--max-tokens", "0"],
    ):
        with pytest.raises(SystemExit):
            speculative.parse_args(base + bad)
