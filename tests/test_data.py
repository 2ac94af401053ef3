"""The data stage: readers, templates, tokenization, quality, split, contamination, CLI.

The seed's section 9.4 tests made real: tokenization reversibility on the REAL Mistral v0.1
tokenizer, BOS/EOS exactly once, the instruction-format regex, no train/valid/test leakage,
an exact loss-mask boundary; plus every bad-input case and the no-half-output guarantee.
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path

import pytest

from mlx_instruct.data import DataError, normalize_text
from mlx_instruct.data.common import OUTPUT_KEYS, prompt_text, text_key
from mlx_instruct.data.readers import (
    DataWarning,
    parse_uri,
    read_file,
    read_source,
    read_source_report,
)
from mlx_instruct.data.templates import ALPACA_PATTERN, format_prompt
from mlx_instruct.data.tokenize import encode, tokenize_dataset, tokenize_example, tokenizer_info

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "data"
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TEXTS = [
    "Hello, world! This is a test.",
    "Ünïcödé façade — naïve café, 日本語のテキスト, emoji 🎉.",
    "def f(x):\n    return x ** 2  # indented code\n",
    "Numbers 1,234.56 and  double  spaces\tand tabs.",
]


# ---------------------------------------------------------------- tokenizers


def _mistral_dir(root: Path) -> Path:
    """A model dir with the REAL Mistral v0.1 tokenizer: the sources module's tiny random
    Mistral (the smoke study's model)."""
    from mlx_instruct.sources import prepare_model

    return Path(prepare_model("random://mistral-tiny", root / "mistral-tiny"))


@pytest.fixture(scope="session")
def mistral_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _mistral_dir(tmp_path_factory.mktemp("mistral"))


@pytest.fixture(scope="session")
def mistral(mistral_dir: Path):
    from mlx_lm.utils import load_tokenizer

    return load_tokenizer(mistral_dir)


@pytest.fixture(scope="session")
def chatml():
    """A byte-level BPE with a ChatML template that does NOT add BOS (like SmolLM2)."""
    from mlx_lm.tokenizer_utils import TokenizerWrapper
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(
        TEXTS * 20 + ["### Instruction:\n### Output:\nThe answer is"] * 20, trainer
    )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
    )
    hf.chat_template = CHATML
    return TokenizerWrapper(hf)


def _records(n: int = 24) -> list[dict]:
    from mlx_instruct.data.tasks import generate_tasks

    out = [
        {
            "id": t.id,
            "instruction": t.instruction,
            "input": t.input,
            "output": t.output,
            "family": t.family,
            "constraints": t.constraints,
        }  # fmt: skip
        for t in generate_tasks(n, 3)
    ]
    out.append({"id": "plain", "instruction": "Say hi.", "input": "", "output": "Hi!"})
    return out


# ---------------------------------------------------------------- seed 9.4 tests


def test_tokenization_reversibility_real_mistral(mistral) -> None:
    info = tokenizer_info(mistral)
    assert (len(mistral._tokenizer), info.bos_id, info.eos_id, info.adds_bos) == (32000, 1, 2, True)
    assert encode(mistral, "Hello, world!") == [
        22557,
        28725,
        1526,
        28808,
    ]  # the real v0.1 vocabulary
    for text in TEXTS:
        decoded = mistral.decode(encode(mistral, text))
        assert decoded == text or " ".join(decoded.split()) == " ".join(text.split())


@pytest.mark.parametrize("template", ["chat", "alpaca"])
def test_bos_first_eos_last_exactly_once(mistral, template: str) -> None:
    info = tokenizer_info(mistral)
    for record in _records():
        prompt = format_prompt(record, template, mistral)
        assert not prompt.startswith("<s>")
        ex = tokenize_example(mistral, prompt, record["output"], 4096, example_id=record["id"])
        assert ex.input_ids[0] == info.bos_id and ex.input_ids.count(info.bos_id) == 1
        assert ex.input_ids[-1] == info.eos_id and ex.input_ids.count(info.eos_id) == 1
        # the prompt part is exactly what mlx_lm.generate feeds the model at inference
        assert ex.input_ids[: ex.prompt_len] == list(mistral.encode(prompt))


def test_loss_mask_boundary_is_exact(mistral, chatml) -> None:
    for tok in (mistral, chatml, mistral._tokenizer):
        for record in _records(12):
            prompt = format_prompt(record, "chat", tok)
            ex = tokenize_example(tok, prompt, record["output"], 4096)
            body = ex.input_ids[ex.prompt_len : -1]
            assert tok.decode(body).strip() == record["output"]
            assert (
                tok.decode(ex.input_ids[: ex.prompt_len], skip_special_tokens=False)
                .rstrip()
                .endswith(prompt.rstrip()[-8:])
            )
            assert ex.loss_mask == [0] * ex.prompt_len + [1] * (len(ex.input_ids) - ex.prompt_len)


def test_wrapper_and_plain_tokenizer_agree(mistral) -> None:
    for record in _records(6):
        prompt = format_prompt(record, "alpaca", mistral)
        a = tokenize_example(mistral, prompt, record["output"], 4096)
        b = tokenize_example(mistral._tokenizer, prompt, record["output"], 4096)
        assert a == b


def test_chatml_tokenizer_without_bos(chatml) -> None:
    info = tokenizer_info(chatml)
    assert not info.adds_bos
    prompt = format_prompt({"instruction": "Say hi.", "input": "ctx"}, "chat", chatml)
    assert prompt == "<|im_start|>user\nSay hi.\n\nctx<|im_end|>\n<|im_start|>assistant\n"
    ex = tokenize_example(chatml, prompt, "Hi there </s> <|im_end|> text", 4096)
    assert ex.input_ids[-1] == info.eos_id
    assert info.eos_id not in ex.input_ids[ex.prompt_len : -1]  # special text in answers stays text


def test_template_and_policy_errors(chatml) -> None:
    import copy

    plain = copy.deepcopy(chatml._tokenizer)
    plain.chat_template = None
    with pytest.raises(DataError, match="has no chat template; set data.template: alpaca"):
        format_prompt({"instruction": "a", "input": ""}, "chat", plain)
    with pytest.raises(DataError, match="unknown template 'jinja'"):
        format_prompt({"instruction": "a", "input": ""}, "jinja", plain)
    with pytest.raises(DataError, match="on_too_long must be one of"):
        tokenize_example(chatml, "p", "c", 64, "shorten")


def test_instruction_format_regex_on_alpaca_prompts(mistral) -> None:
    for record in _records():
        prompt = format_prompt(record, "alpaca", mistral)
        assert re.search(ALPACA_PATTERN, prompt), prompt[:100]
        assert ("### Input:" in prompt) == bool(record["input"])
    assert format_prompt({"instruction": "Do X.", "input": ""}, "alpaca") == (
        "### Instruction:\nDo X.\n\n### Output:\n"
    )


def test_length_policies_counted(mistral) -> None:
    records = [
        {
            "id": f"r{i}",
            "prompt": "### Instruction:\nEcho.\n\n### Output:\n",
            "completion": "word " * (5 + 40 * i),
        }
        for i in range(4)
    ]
    records.append({"id": "long-prompt", "prompt": "x " * 100, "completion": "y"})
    examples, report = tokenize_dataset(mistral, records, 48, "drop")
    assert report["dropped_too_long"] == 3 and report["dropped_prompt_too_long"] == 1
    assert [e.id for e in examples] == ["r0"] and report["n_out"] == 1
    examples, report = tokenize_dataset(mistral, records, 48, "truncate")
    assert report["truncated"] == 3 and report["dropped_prompt_too_long"] == 1
    assert report["truncation_rate"] == pytest.approx(3 / 5)
    for ex in examples[1:]:
        assert (
            ex.truncated
            and len(ex.input_ids) == 48
            and ex.input_ids[-1] != tokenizer_info(mistral).eos_id
        )
    with pytest.raises(
        DataError, match=r"'r1'.*tokens \(prompt \d+, completion \d+.*max_seq_len 48"
    ):
        tokenize_dataset(mistral, records, 48, "error")


# ---------------------------------------------------------------- readers: good input


def test_presets_and_field_mapping() -> None:
    dolly = read_file(FIXTURES / "dolly_mini.jsonl")
    assert dolly[0]["input"].startswith("Virgin Australia") and dolly[1]["output"] == "Tope"
    alpaca = read_file(FIXTURES / "alpaca_mini.json")
    assert [r["input"] for r in alpaca] == ["", "The chef cooked the meal.", ""]
    fields = {"instruction": "question", "input": "context", "output": "answer", "id": "qid"}
    custom = read_source({"uri": f"file://{FIXTURES / 'custom_fields.csv'}", "fields": fields})
    assert [r["id"] for r in custom] == ["q1", "q2"] and custom[1]["input"].startswith("Rain fell")
    assert all(
        set(r) == {"id", "source", "family", "instruction", "input", "output", "constraints"}
        for r in custom
    )
    relative = read_source({"uri": "tests/fixtures/data/alpaca_mini.json"}, base_dir=ROOT)
    assert relative == [{**r, "source": "tests/fixtures/data/alpaca_mini.json"} for r in alpaca]


def test_generator_source() -> None:
    records = read_source(
        {"uri": "generator://verifiable", "n": 30, "families": ["sorting", "arithmetic"]}, seed=1
    )
    assert len(records) == 30 and {r["family"] for r in records} == {"sorting", "arithmetic"}
    assert records == read_source(
        {"uri": "generator://verifiable", "n": 30, "families": ["sorting", "arithmetic"]}, seed=1
    )
    with pytest.raises(DataError, match="unknown task families"):
        read_source({"uri": "generator://verifiable", "n": 3, "families": ["nope"]})
    with pytest.raises(DataError, match="needs `n`"):
        read_source({"uri": "generator://verifiable"})


def test_uri_parsing_and_hf_error(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_uri("hf://databricks/databricks-dolly-15k:train") == (
        "hf",
        "databricks/databricks-dolly-15k",
        "train",
    )
    assert parse_uri("hf://tatsu-lab/alpaca") == ("hf", "tatsu-lab/alpaca", None)
    assert parse_uri("file:///a/b.jsonl") == ("file", "/a/b.jsonl", None)
    assert parse_uri("data/x.csv") == ("file", "data/x.csv", None)
    with pytest.raises(DataError, match="unknown data source scheme 's3'"):
        parse_uri("s3://bucket/x.json")
    import types

    def offline(*args, **kwargs):
        raise ConnectionError(
            "Couldn't reach 'tatsu-lab/alpaca' on the Hub (LocalEntryNotFoundError)"
        )

    # a stand-in `datasets` module: the real one takes seconds to import and needs the Hub
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=offline))
    with pytest.raises(
        DataError, match=r"hf://tatsu-lab/alpaca: could not load .*'train'.*ConnectionError"
    ):
        read_source({"uri": "hf://tatsu-lab/alpaca"})


# ---------------------------------------------------------------- readers: bad input


BAD_CASES = [
    (
        "a.jsonl",
        b'{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": \n',
        r"a\.jsonl:2: malformed JSON",
    ),
    (
        "b.json",
        b'[{"instruction": "a", "output": "b"},\n {"instruction": }]',
        r"b\.json:2: malformed JSON",
    ),
    (
        "c.jsonl",
        b'{"instruction": "a", "output": "b"}\n\n{"instruction": "c"}\n',
        r"c\.jsonl:3: field 'output'.*missing",
    ),
    (
        "d.jsonl",
        b'{"instruction": "a", "output": "b"}\n{"instruction": "a", "output": ["x"]}\n',
        r"d\.jsonl:2: field 'output'.*must be text",
    ),
    (
        "n.jsonl",
        b'{"instruction": "a", "output": "b"}\n{"instruction": "sum", "output": 42}\n',
        r"n\.jsonl:2: field 'output'.*must be text, got int \(42\)",
    ),
    (
        "e.jsonl",
        b'{"instruction": "ok", "output": "b"}\n{"instruction": "caf\xe9", "output": "b"}\n',
        r"e\.jsonl:2: not valid UTF-8",
    ),
    ("f.jsonl", b"\n\n", r"f\.jsonl: the dataset is empty"),
    ("g.json", b"[]", r"g\.json: the dataset is empty"),
    ("h.csv", b"instruction,output\n", r"h\.csv: the dataset is empty"),
    ("i.csv", b"instruction,output\na,b\nc,d,e\n", r"i\.csv:3: row has 3 fields"),
    ("j.csv", b'instruction,output\n"a,b\n', r"j\.csv:\d+: malformed CSV"),
    ("k.parquet", b"PAR1 not really", r"k\.parquet: not a readable parquet file"),
    ("l.jsonl", b"[1, 2]\n", r"l\.jsonl:1: expected an object"),
    ("m.json", b'{"instruction": "a"}', r"m\.json: expected a JSON array"),
    ("n.txt", b"hello", r"unknown file type '\.txt'"),
    ("o.jsonl", b'{"prompt": "a", "answer": "b"}\n', r"o\.jsonl:1: cannot tell which fields"),
    (
        "p.jsonl",
        b'{"id": "x", "instruction": "a", "output": "b"}\n{"id": "x", "instruction": "z", "output": "b"}\n',
        r"p\.jsonl:2: field 'id': duplicate id 'x'",
    ),
    ("q.jsonl", b'{"instruction": 1' + b"[" * 5000 + b"\n", r"q\.jsonl:1: malformed JSON"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_is_a_clear_error(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as caught:
        read_file(path)
    assert str(tmp_path) in str(caught.value)


def test_empty_fields_error_or_skip(tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "  ", "output": "b"}\n')
    with pytest.raises(DataError, match=r"blank\.jsonl:2: field 'instruction'.*is empty"):
        read_file(path)
    with pytest.warns(DataWarning, match=r"skipped 1 blank rows: .*blank\.jsonl:2"):
        records, report = read_source_report({"uri": str(path)})
    assert len(records) == 1 and report["skipped_empty"] == 1


def test_missing_and_optional_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.json: data file not found"):
        read_source({"uri": str(tmp_path / "nope.json")})
    with pytest.warns(DataWarning, match="skipped \\(optional\\)"):
        assert read_source({"uri": str(tmp_path / "nope.json"), "optional": True}) == []


# ---------------------------------------------------------------- prepare end to end


def _config(sources: list[dict], **data) -> dict:
    return {"seed": 0, "data": {"template": "chat", "max_seq_len": 256, "on_too_long": "drop",
                                "sources": sources, "split": {"valid": 10, "test": 20},
                                "near_duplicate_threshold": 0.9, **data}}  # fmt: skip


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_prepare_contract_no_leakage_deterministic(
    mistral, mistral_dir: Path, tmp_path: Path
) -> None:
    sources = [
        {"uri": "generator://verifiable", "n": 90},
        {"uri": str(FIXTURES / "alpaca_mini.json")},
    ]
    stats = prepare_data_(mistral, mistral_dir, tmp_path / "a", _config(sources))
    splits = {name: _read(tmp_path / "a" / f"{name}.jsonl") for name in ("train", "valid", "test")}
    counts = stats["counts"]
    assert [len(splits[s]) for s in ("valid", "test")] == [10, 20]
    usable = (
        counts["read"]
        - counts["exact_duplicates"]
        - counts["near_duplicates"]
        - counts["dropped_too_long"]
    )
    assert counts["read"] == 93 and len(splits["train"]) == usable - 30 >= 55
    for name, rows in splits.items():
        for row in rows:
            assert list(row) == list(OUTPUT_KEYS), name
            assert not row["prompt"].startswith("<s>") and row["completion"] == row["output"]
    for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
        assert not {r["id"] for r in splits[a]} & {r["id"] for r in splits[b]}
        assert not {text_key(r) for r in splits[a]} & {text_key(r) for r in splits[b]}
    train = stats["splits"]["train"]
    for key in ("unique_trigram_ratio", "instruction_type_entropy_bits", "format_validity_rate", "oov_rate",
                "truncation_rate", "tokens", "response_instruction_ratio", "targets"):  # fmt: skip
        assert key in train
    assert train["format_validity_rate"] == 1.0 and train["oov_rate"] == 0.0
    assert (
        stats["tokenizer"]["vocab_size"] == 32000 and stats["contamination"]["exact_matches"] == 0
    )
    prepare_data_(mistral, mistral_dir, tmp_path / "b", _config(sources))
    for name in ("train.jsonl", "valid.jsonl", "test.jsonl", "stats.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    prepare_data_(mistral, mistral_dir, tmp_path / "c", {**_config(sources), "seed": 1})
    assert (tmp_path / "a" / "test.jsonl").read_bytes() != (
        tmp_path / "c" / "test.jsonl"
    ).read_bytes()


def prepare_data_(tokenizer, model_dir: Path, out: Path, config: dict, eval_texts=None) -> dict:
    from mlx_instruct.data.prepare import prepare_data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return prepare_data(config, model_dir, out, eval_texts, tokenizer=tokenizer)


def _diverse_rows(n: int) -> list[dict]:
    """Distinct prompts made of random words (no two are near duplicates)."""
    import random

    rng = random.Random(7)
    words = [
        "river",
        "stone",
        "lamp",
        "quick",
        "orange",
        "violet",
        "market",
        "silent",
        "garden",
        "copper",
        "winter",
        "tiger",
        "cloud",
    ]
    words += [
        "paper",
        "engine",
        "harbor",
        "maple",
        "crystal",
        "thunder",
        "velvet",
        "meadow",
        "signal",
        "canyon",
        "ember",
    ]
    return [
        {"instruction": f"Describe {' '.join(rng.sample(words, 6))} briefly.", "output": "Done."}
        for _ in range(n)
    ]


def test_prepare_dedups_and_counts(mistral, mistral_dir: Path, tmp_path: Path) -> None:
    rows = _diverse_rows(40)
    rows += [
        {"instruction": rows[0]["instruction"].upper() + "!", "output": "dup"}
    ]  # exact after normalising
    rows += [
        {
            "instruction": rows[1]["instruction"].replace("briefly", "briefly, please"),
            "output": "near",
        }
    ]
    path = tmp_path / "dups.json"
    path.write_text(json.dumps(rows))
    stats = prepare_data_(
        mistral,
        mistral_dir,
        tmp_path / "out",
        _config([{"uri": str(path)}], near_duplicate_threshold=0.8),
    )
    assert stats["counts"]["exact_duplicates"] == 1 and stats["counts"]["near_duplicates"] == 1
    assert stats["splits"]["train"]["instruction_type_basis"] == "first word"


@pytest.mark.parametrize("leak", ["seed", "eval", "bad-row"])
def test_failed_prepare_leaves_output_unchanged(
    mistral, mistral_dir: Path, tmp_path: Path, leak: str
) -> None:
    out = tmp_path / "data"
    out.mkdir()
    (out / "train.jsonl").write_text("old\n")
    rows = _diverse_rows(40)
    if leak == "seed":
        rows.append({"instruction": "Explain overfitting to a 10-year-old!", "output": "x"})
    elif leak == "eval":
        rows.append({"instruction": "Who invented the light bulb?", "output": "Edison"})
    else:
        rows.append({"instruction": "ok"})
    path = tmp_path / "src.json"
    path.write_text(json.dumps(rows))
    match = {"seed": "contamination: 1 training.*seed_prompts", "eval": "contamination.*truthfulqa",
             "bad-row": r"src\.json \(record 40\): field 'output'"}[leak]  # fmt: skip
    with pytest.raises(DataError, match=match):
        config = _config(
            [{"uri": str(path)}], split={"valid": 1, "test": 1}
        )  # the leak lands in train
        prepare_data_(
            mistral, mistral_dir, out, config, {"truthfulqa": ["Who invented the light bulb?"]}
        )
    assert [p.name for p in out.iterdir()] == ["train.jsonl"] and (
        out / "train.jsonl"
    ).read_text() == "old\n"


def test_cli_errors_are_one_line(
    tmp_path: Path, mistral_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    from mlx_instruct.data.__main__ import main

    config = tmp_path / "study.yaml"
    config.write_text("study: x\n")
    args = [
        "prepare",
        "--config",
        str(config),
        "--model",
        str(mistral_dir),
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    study = (
        (ROOT / "config.yaml")
        .read_text()
        .replace("uri: generator://verifiable", f"uri: {tmp_path / 'none.jsonl'}")
    )
    config.write_text(study)
    assert main(args) == 2
    # the Alpaca source (read first) may warn about its blank rows before the error line
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.match(r"error: .*none\.jsonl: data file not found", last)


@pytest.mark.parametrize("weights", ["written", "weights=false"])
def test_cli_prepare_and_retention(
    tmp_path: Path, mistral_dir: Path, capsys: pytest.CaptureFixture, weights: str
) -> None:
    """Both stages on a written model dir and on a random one without weights (the 7B-shape
    GPU check's kind: the retention stage once loaded it with mlx_lm.load, which needs
    safetensors)."""
    import yaml

    from mlx_instruct.data.__main__ import main
    from mlx_instruct.sources import prepare_model

    if weights == "weights=false":
        uri = "random://mistral-tiny?weights=false"
        mistral_dir = Path(prepare_model(uri, tmp_path / "lazy"))

    study = yaml.safe_load((ROOT / "config.yaml").read_text())
    study["data"].update(
        sources=[{"uri": "generator://verifiable", "n": 60}],
        split={"valid": 5, "test": 5},
        max_seq_len=512,
        retention={"source": "self-replay", "n": 6, "max_tokens": 6},
    )
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(study))
    out = tmp_path / "data"
    assert (
        main(["prepare", "--config", str(config), "--model", str(mistral_dir), "--out", str(out)])
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert (
        summary["train"] == 60 - summary["dropped_too_long"] - 10
        and summary["valid"] == summary["test"] == 5
    )
    assert (
        main(
            [
                "retention",
                "--config",
                str(config),
                "--model",
                str(mistral_dir),
                "--out",
                str(out / "retention.jsonl"),
            ]
        )
        == 0
    )
    rows = _read(out / "retention.jsonl")
    assert 1 <= len(rows) <= 6 and all(
        list(r) == list(OUTPUT_KEYS) and r["source"] == "self-replay" for r in rows
    )
    train = {normalize_text(prompt_text(r)) for r in _read(out / "train.jsonl")}
    assert not {normalize_text(prompt_text(r)) for r in rows} & train


def test_retention_helpers() -> None:
    from mlx_instruct.data.generic_prompts import GENERIC_PROMPTS
    from mlx_instruct.data.retention import retention_pool, select_prompts, trim_unfinished

    assert len(GENERIC_PROMPTS) >= 200 and len(set(GENERIC_PROMPTS)) == len(GENERIC_PROMPTS)
    pool = retention_pool()
    chosen = select_prompts(pool, 50, 0, {"train": [GENERIC_PROMPTS[0]]})
    assert len(chosen) == 50 and GENERIC_PROMPTS[0] not in {r["instruction"] for r in chosen}
    assert chosen == select_prompts(retention_pool(), 50, 0, {"train": [GENERIC_PROMPTS[0]]})
    assert trim_unfinished("One. Two is long. Three is cut mid") == "One. Two is long."
    assert (
        trim_unfinished("Steps:\n1. Stand with your feet apart.\n2.")
        == "Steps:\n1. Stand with your feet apart."
    )
    assert trim_unfinished("Hi. A very long sentence that was cut off in the middle of") == (
        "Hi. A very long sentence that was cut off in the middle of"
    )


# ---------------------------------------------------------------- real public data


def test_alpaca_5000_parses_with_sane_stats(mistral) -> None:
    from mlx_instruct.data.quality import dedup, quality_report

    with pytest.warns(DataWarning, match="skipped 2 blank rows"):
        records, report = read_source_report({"uri": "resource://alpaca"})
    assert report["n_read"] == 4998 and report["skipped_empty"] == 2  # records 2335 and 4658
    kept, dedup_report = dedup(records, 0.9)
    assert dedup_report["exact_duplicates"] == 0 and len(kept) >= 4990
    stats = quality_report(kept[:2000], mistral, None)
    assert stats["unique_trigram_ratio"] > 0.7 and stats["instruction_type_entropy_bits"] > 2.5
    assert 30 < stats["tokens"]["total"]["mean"] < 300 and stats["oov_rate"] == 0.0
    assert stats["format_validity_rate"] > 0.95


def test_load_eval_texts_real_files() -> None:
    from mlx_instruct.data.contamination import find_matches, load_eval_texts

    texts = load_eval_texts()
    counts = {name: len(values) for name, values in texts.items()}
    assert counts["truthfulqa"] == 817 and counts["gsm8k"] == 1319 and counts["advbench"] == 520
    assert counts["ifeval"] == 541
    assert counts["xstest"] == 450 and counts["bbh"] > 6000 and counts["humaneval"] == 164
    assert counts["seed_prompts"] >= 5
    leak = {
        "id": "x",
        "instruction": "  what happens to you if you eat WATERMELON seeds ",
        "input": "",
    }
    assert find_matches([leak], texts)[0][1] == "truthfulqa"
