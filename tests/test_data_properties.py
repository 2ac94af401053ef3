"""Property tests of the data stage: parsers, dedup, split and the retention mix.

Arbitrary valid records survive every file format; arbitrary garbage is a DataError and
never any other exception; dedup is idempotent; the split is deterministic, order-free and
leak-free; the mix hits its fraction exactly.
"""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mlx_instruct.data import DataError
from mlx_instruct.data.common import text_key
from mlx_instruct.data.dedup import dedup
from mlx_instruct.data.mix import mix_retention
from mlx_instruct.data.readers import read_file
from mlx_instruct.data.split import assert_disjoint, split_records

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FORMATS = ("jsonl", "json", "csv", "parquet")

# Field text as readers return it: stripped, no carriage returns, no lone surrogates.
text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"),
    min_size=1,
    max_size=40,
).filter(lambda t: t == t.strip() and t != "")
optional_text = st.one_of(st.just(""), text)
record = st.fixed_dictionaries({"instruction": text, "input": optional_text, "output": text})


def _write(path: Path, fmt: str, rows: list[dict]) -> None:
    if fmt == "jsonl":
        path.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )
    elif fmt == "json":
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    elif fmt == "csv":
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["id", "instruction", "input", "output"])
            writer.writeheader()
            writer.writerows(rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)


@SETTINGS
@given(rows=st.lists(record, min_size=1, max_size=8), fmt=st.sampled_from(FORMATS))
def test_valid_records_round_trip(rows: list[dict], fmt: str) -> None:
    rows = [{"id": f"r{i}", **row} for i, row in enumerate(rows)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data.{fmt}"
        _write(path, fmt, rows)
        back = read_file(path)
    assert [{k: r[k] for k in ("id", "instruction", "input", "output")} for r in back] == rows
    assert all(r["family"] is None and r["constraints"] is None for r in back)


@SETTINGS
@given(data=st.binary(max_size=300), fmt=st.sampled_from(FORMATS))
def test_random_bytes_are_data_errors(data: bytes, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"junk.{fmt}"
        path.write_bytes(data)
        try:
            records = read_file(path)
        except DataError as error:
            assert str(path) in str(error)
        else:  # garbage that happens to be valid must still give well-formed records
            assert records and all(r["instruction"] and r["output"] for r in records)


garbage_line = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        ['{"instruction": 1}', "[]", "null", '{"instruction": "a", "output": ""}', "{", '"x"']
    ),
    st.builds(
        lambda d: json.dumps(d),
        st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=3),
    ),
)


@SETTINGS
@given(lines=st.lists(garbage_line, min_size=1, max_size=6), fmt=st.sampled_from(("jsonl", "csv")))
def test_garbage_lines_are_data_errors(lines: list[str], fmt: str) -> None:
    assume(any(line.strip() for line in lines))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"junk.{fmt}"
        prefix = (
            '{"instruction": "ok", "output": "fine"}\n'
            if fmt == "jsonl"
            else "instruction,output\n"
        )
        path.write_text(prefix + "\n".join(lines) + "\n", encoding="utf-8")
        try:
            read_file(path)
        except DataError as error:
            assert str(path) in str(error)


words = st.lists(
    st.sampled_from(
        ["alpha", "beta", "gamma", "delta", "echo", "fox", "golf", "hotel", "india", "juliet"]
    ),
    min_size=1,
    max_size=8,
)
prompt_record = st.builds(
    lambda w, o: {"instruction": " ".join(w), "input": "", "output": o}, words, text
)


def _with_ids(rows: list[dict]) -> list[dict]:
    return [{"id": f"r{i}", **row} for i, row in enumerate(rows)]


@SETTINGS
@given(
    rows=st.lists(prompt_record, min_size=1, max_size=30),
    threshold=st.sampled_from([0.5, 0.7, 0.9, 1.0]),
)
def test_dedup_is_idempotent(rows: list[dict], threshold: float) -> None:
    once, _ = dedup(_with_ids(rows), threshold)
    twice, report = dedup(once, threshold)
    assert twice == once and report["exact_duplicates"] == report["near_duplicates"] == 0
    assert len({text_key(r) for r in once}) == len(once)


@SETTINGS
@given(
    rows=st.lists(prompt_record, min_size=5, max_size=40),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_split_is_deterministic_order_free_and_leak_free(
    rows: list[dict], seed: int, data: st.DataObject
) -> None:
    rows = _with_ids(rows)  # duplicates kept on purpose: they must not straddle splits
    spec = {"valid": 1, "test": 0.2}
    assume(len({text_key(r) for r in rows}) >= 4)
    first = split_records(rows, spec, seed)
    shuffled = data.draw(st.permutations(rows))
    assert split_records(list(shuffled), spec, seed) == first
    assert_disjoint(first)
    assert sum(len(v) for v in first.values()) == len(rows)
    assert first["train"]


@SETTINGS
@given(
    n_train=st.integers(1, 300),
    n_retention=st.integers(1, 50),
    fraction=st.floats(0, 0.95, allow_nan=False),
    seed=st.integers(0, 1000),
)
def test_mix_fraction_is_exact(n_train: int, n_retention: int, fraction: float, seed: int) -> None:
    train = [{"id": f"t{i}", "source": "train"} for i in range(n_train)]
    retention = [{"id": f"r{i}", "source": "self-replay"} for i in range(n_retention)]
    mixed = mix_retention(train, retention, fraction, seed)
    n_ret = sum(1 for r in mixed if r["source"] == "self-replay")
    assert len(mixed) == n_train and n_ret == round(fraction * n_train)
    assert abs(n_ret / n_train - fraction) <= 0.5 / n_train + 1e-12
    assert mixed == mix_retention(train, retention, fraction, seed)
    kept_train = [r["id"] for r in mixed if r["source"] == "train"]
    assert len(set(kept_train)) == len(kept_train)
    counts = [sum(1 for r in mixed if r["id"] == f"r{i}") for i in range(n_retention)]
    assert max(counts) - min(counts) <= 1  # repeats spread evenly


def test_mix_rejects_bad_fraction() -> None:
    with pytest.raises(DataError, match="fraction"):
        mix_retention([{"id": "a"}], [], 1.0, 0)
    with pytest.raises(DataError, match="needs retention examples"):
        mix_retention([{"id": str(i)} for i in range(10)], [], 0.5, 0)
