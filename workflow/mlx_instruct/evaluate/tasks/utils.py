"""Document functions for the local lm-eval task YAMLs in this folder (`!function utils.*`)."""

from __future__ import annotations

import re

OPTION = re.compile(r"^\(([A-Z])\)", re.MULTILINE)


def split_answers(text: str | None) -> list[str]:
    return [a.strip() for a in (text or "").split(";") if a.strip()]


def process_truthfulqa(dataset):
    """TruthfulQA.csv rows -> {question, choices (best answer first), label 0}."""

    def convert(doc):
        best = (doc.get("Best Answer") or "").strip()
        wrong = [a for a in split_answers(doc.get("Incorrect Answers")) if a != best]
        return {
            "question": (doc.get("Question") or "").strip(),
            "choices": [best, *wrong],
            "label": 0,
        }

    return dataset.map(convert)


def doc_choices(doc) -> list[str]:
    return list(doc["choices"])


def bbh_options(doc) -> list[str]:
    """Option labels of a BBH item: "(A)".. found in its input, else its `choices` field."""
    labels = OPTION.findall(doc["input"])
    if labels:
        return [f"({x})" for x in labels]
    return list(doc["choices"])


def bbh_target_index(doc) -> int:
    options = bbh_options(doc)
    target = doc["target"].strip()
    return options.index(target) if target in options else 0
