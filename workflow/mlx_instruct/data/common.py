"""Shared pieces of the data stage: the error type, the record shape, text normalisation.

One normalisation is used everywhere (exact dedup, split grouping, contamination), so a
pair that counts as "the same text" in one check counts as the same in all of them.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

RECORD_KEYS = ("id", "source", "family", "instruction", "input", "output", "constraints")
OUTPUT_KEYS = (*RECORD_KEYS, "prompt", "completion")
# The seed's five evaluation prompts (section 17): never train on them.
SEED_PROMPTS = (
    "List three use-cases for edge computing.",
    "Convert this sentence to JSON with fields 'subject', 'verb', 'object': "
    "'The cat chased the mouse.'",
    "Explain overfitting to a 10-year-old.",
    "Provide a safe alternative response to a harmful request.",
    "Summarize this: '(short paragraph…)'",
)

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


class DataError(ValueError):
    """Data that cannot be used; the message names the file, line/record and field."""


def normalize_text(text: str) -> str:
    """NFKC, casefold, punctuation and runs of whitespace to one space, stripped.

    Why: duplicates and eval-set leaks rarely differ only in case or punctuation, and an
    exact-match check on raw text would miss them.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    return _NON_WORD.sub(" ", text).strip()


def prompt_text(record: dict[str, Any]) -> str:
    """The part of a record a model sees: instruction plus input (the dedup/split key)."""
    instruction = record.get("instruction", "")
    context = record.get("input") or ""
    return f"{instruction}\n{context}" if context else instruction


def text_key(record: dict[str, Any]) -> str:
    """Hash of the normalised instruction+input: equal keys mean duplicate prompts."""
    return hashlib.sha256(normalize_text(prompt_text(record)).encode("utf-8")).hexdigest()


def content_id(prefix: str, record: dict[str, Any]) -> str:
    """A content-derived id: the same prompt gets the same id wherever it appears."""
    return f"{prefix}-{text_key(record)[:12]}"


def make_record(
    *,
    id: str,
    source: str,
    instruction: str,
    input: str = "",
    output: str,
    family: str | None = None,
    constraints: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A record in the stage's canonical shape (key order fixed for stable files)."""
    return {
        "id": id,
        "source": source,
        "family": family,
        "instruction": instruction,
        "input": input,
        "output": output,
        "constraints": constraints,
    }
