"""The vendored benchmark files, validated before any model work (the `benchmarks` suite).

Why apart from benchmarks.py: reading and checking a file (missing file, malformed line,
missing column or field: an error naming file and line) is independent of lm-eval.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from mlx_instruct.evaluate.context import EvalDataError
from mlx_instruct.io import iter_jsonl
from mlx_instruct.resources import ResourceError, bbh_task


def _read_truthfulqa(path: Path) -> int:
    if not path.is_file():
        raise EvalDataError(f"{path}: TruthfulQA file not found (needed by truthfulqa_mc1)")
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            need = {"Question", "Best Answer", "Incorrect Answers"}
            missing = need - set(reader.fieldnames or [])
            if missing:
                raise EvalDataError(f"{path}: missing column(s) {sorted(missing)}")
            count = 0
            for row in reader:
                line = reader.line_num
                if not (row.get("Question") or "").strip():
                    raise EvalDataError(f"{path}:{line}: empty Question")
                if not (row.get("Best Answer") or "").strip():
                    raise EvalDataError(f"{path}:{line}: empty Best Answer")
                if not [a for a in (row.get("Incorrect Answers") or "").split(";") if a.strip()]:
                    raise EvalDataError(f"{path}:{line}: no Incorrect Answers")
                count += 1
    except (UnicodeDecodeError, csv.Error) as error:
        raise EvalDataError(f"{path}: malformed CSV ({error})") from None
    if not count:
        raise EvalDataError(f"{path}: no questions")
    return count


def _read_gsm8k(path: Path) -> int:
    if not path.is_file():
        raise EvalDataError(f"{path}: GSM8K file not found (needed by gsm8k)")
    count = 0
    for line_no, doc in iter_jsonl(path, error=EvalDataError, objects=True):
        if not isinstance(doc.get("question"), str):
            raise EvalDataError(f"{path}:{line_no}: no 'question' string")
        if not isinstance(doc.get("answer"), str) or "####" not in doc["answer"]:
            raise EvalDataError(f"{path}:{line_no}: 'answer' lacks the '#### <number>' line")
        count += 1
    if not count:
        raise EvalDataError(f"{path}: no questions")
    return count


def read_bbh(path: Path) -> list[dict]:
    if not path.is_file():
        raise EvalDataError(f"{path}: BBH task file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EvalDataError(f"{path}: malformed JSON ({error})") from None
    examples = data.get("examples") if isinstance(data, dict) else None
    if not isinstance(examples, list) or not examples:
        raise EvalDataError(f"{path}: expected {{'examples': [{{input, target}}, ...]}}")
    for i, ex in enumerate(examples):
        if not (isinstance(ex, dict) and isinstance(ex.get("input"), str)):
            raise EvalDataError(f"{path}: examples[{i}]: no 'input' string")
        if not isinstance(ex.get("target"), str):
            raise EvalDataError(f"{path}: examples[{i}]: no 'target' string")
    return examples


def bbh_file(task: str) -> Path:
    """The vendored bbh/<task>.json; an unknown task names the setting and the known ones."""
    try:
        return bbh_task(task)
    except ResourceError as error:
        raise EvalDataError(f"benchmarks.bbh.tasks: {error}") from None
