"""The offline toxicity screen of the data stage (seed section 9.2).

Why a classifier and not a word list: `alt-profanity-check` (PyPI, its model trained with
the scikit-learn version it is released for) is a linear SVM over TF-IDF features, trained
on ~200k human-labelled clean and profane/offensive strings. It ships its model in the
wheel, so it runs without a network. What it can and cannot catch is in
docs/data-quality.md: it scores explicit profanity, slurs and insults, not polite harmful
requests, misinformation or toxicity expressed without offensive words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlx_instruct.data.common import DataError

SCREEN_NAME = "alt-profanity-check"


def screened_text(record: dict[str, Any]) -> str:
    """Everything the model sees or learns to produce: instruction, input and output."""
    return "\n".join(
        (record.get("instruction") or "", record.get("input") or "", record.get("output") or "")
    )


def toxicity_scores(texts: Sequence[str]) -> np.ndarray:
    """The classifier's probability that each text is offensive (0..1), in input order."""
    if not len(texts):
        return np.zeros(0)
    try:
        from profanity_check import predict_prob
    except ImportError as error:  # a broken install should say what is missing
        raise DataError(
            f"data.quality.toxicity: the screen needs the package {SCREEN_NAME} ({error}); "
            "run `uv sync`"
        ) from None
    return np.asarray(predict_prob(list(texts)), dtype=float)


def screen_toxicity(
    records: list[dict[str, Any]], mode: str = "flag", threshold: float = 0.5
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Flag records scoring >= threshold; with mode "drop" remove them. Returns the kept
    records and a report with the counts per source (flagged items are never silent)."""
    if mode not in ("flag", "drop"):
        raise DataError(f"data.quality.toxicity: expected 'flag' or 'drop', got {mode!r}")
    scores = toxicity_scores([screened_text(r) for r in records])
    flagged = [r for r, s in zip(records, scores, strict=True) if s >= threshold]
    flagged_ids = {r["id"] for r in flagged}
    kept = [r for r in records if r["id"] not in flagged_ids] if mode == "drop" else records
    screened = Counter(r["source"] for r in records)
    hits = Counter(r["source"] for r in flagged)
    report = {
        "screen": SCREEN_NAME,
        "mode": mode,
        "threshold": threshold,
        "screened": len(records),
        "flagged": len(flagged),
        "dropped": len(flagged) if mode == "drop" else 0,
        "by_source": {
            source: {"screened": n, "flagged": hits.get(source, 0)}
            for source, n in screened.items()
        },
        "flagged_ids": sorted(flagged_ids)[:50],
    }
    return kept, report
