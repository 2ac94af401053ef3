"""Data quality metrics of the seed's section 9.2, measured rather than assumed.

Targets (seed 9.2): >70% unique trigrams, instruction-type entropy > 2.5 bits, token length
mean 50-200 with the tail < 1024, > 95% format-valid, 0% exact overlap with eval sets.
Dedup (exact + MinHash near-duplicates) lives in `dedup.py` and is re-exported here.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlx_instruct.data.common import normalize_text
from mlx_instruct.data.dedup import dedup, exact_dedup, near_dedup
from mlx_instruct.data.templates import prompt_is_valid
from mlx_instruct.data.tokenize import encode_batch, tokenizer_info

__all__ = [
    "dedup",
    "exact_dedup",
    "near_dedup",
    "length_stats",
    "unique_trigram_ratio",
    "instruction_type",
    "entropy_bits",
    "format_check",
    "quality_report",
]

HIST_EDGES = (0, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
TEMPLATE_MARKERS = re.compile(r"###\s*(?:Instruction|Input|Output|Response)\s*:", re.I)
_WORD = re.compile(r"\w+", re.UNICODE)
_LEADING_FILLER = {"please", "kindly", "now", "then", "also", "so"}


def length_stats(values: Sequence[int | float]) -> dict[str, Any]:
    """Mean, median, p95, max and a power-of-two histogram (last bin open-ended)."""
    if not len(values):
        return {"n": 0, "mean": None, "median": None, "p95": None, "max": None, "histogram": None}
    arr = np.asarray(values, dtype=float)
    edges = [*HIST_EDGES, max(float(arr.max()) + 1, HIST_EDGES[-1] + 1)]
    counts, _ = np.histogram(arr, bins=edges)
    return {
        "n": int(arr.size),
        "mean": round(float(arr.mean()), 3),
        "median": float(np.median(arr)),
        "p95": round(float(np.percentile(arr, 95)), 3),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "histogram": {"edges": list(HIST_EDGES) + ["inf"], "counts": [int(c) for c in counts]},
    }


def unique_trigram_ratio(texts: Sequence[str]) -> float:
    """Distinct word trigrams / all word trigrams over the texts (seed target > 0.70)."""
    total = 0
    distinct: set[tuple[str, str, str]] = set()
    for text in texts:
        words = _WORD.findall(text.casefold())
        grams = list(zip(words, words[1:], words[2:], strict=False))
        total += len(grams)
        distinct.update(grams)
    return len(distinct) / total if total else 0.0


def instruction_type(record: dict[str, Any]) -> str:
    """The task family for generated data; the first word (usually the verb) for files."""
    if record.get("family"):
        return str(record["family"])
    words = [w for w in _WORD.findall(record["instruction"].casefold()) if not w.isdigit()]
    while words and words[0] in _LEADING_FILLER:
        words = words[1:]
    return words[0] if words else "<none>"


def entropy_bits(labels: Sequence[str]) -> float:
    """Shannon entropy of the label distribution in bits (seed target > 2.5)."""
    counts = Counter(labels)
    n = sum(counts.values())
    return -sum(c / n * math.log2(c / n) for c in counts.values()) if n else 0.0


def format_check(record: dict[str, Any], template: str | None = None) -> list[str]:
    """Reasons a record is not well-formed (empty list = valid).

    Checks: the prompt has the template's structure; the output is non-empty, has no
    leftover template markers, no U+FFFD mojibake, balanced code fences; and a generated
    task's reference output passes its own checker.
    """
    problems = []
    output = record.get("output") or ""
    if not output.strip():
        problems.append("empty_output")
    if TEMPLATE_MARKERS.search(output):
        problems.append("template_marker_in_output")
    if "\ufffd" in output or "\ufffd" in record.get("instruction", ""):
        problems.append("replacement_character")
    if output.count("```") % 2:
        problems.append("unbalanced_code_fence")
    if template and "prompt" in record and not prompt_is_valid(record["prompt"], record, template):
        problems.append("prompt_structure")
    if record.get("family") and record.get("constraints") is not None:
        from mlx_instruct.data.tasks import check

        if not check(record, output).correct:
            problems.append("reference_fails_checker")
    return problems


def _lengths(tokenizer: Any, records: Sequence[dict[str, Any]]) -> dict[str, list[list[int]]]:
    return {
        part: encode_batch(tokenizer, [r.get(part) or "" for r in records])
        for part in ("instruction", "input", "output")
    }


def _text_metrics(records: list[dict[str, Any]], template: str | None) -> dict[str, Any]:
    """Diversity, instruction types and format validity: no tokenizer needed."""
    report: dict[str, Any] = {}
    prompts = [f"{r['instruction']}\n{r.get('input') or ''}" for r in records]
    # Primary: over everything a model sees or produces (instruction, input, output), the
    # same basis as the task generator's own check; prompt-only and output-only beside it.
    full = [f"{p}\n{r['output']}" for p, r in zip(prompts, records, strict=True)]
    report["unique_trigram_ratio"] = round(unique_trigram_ratio(full), 4)
    report["unique_trigram_ratio_prompt"] = round(unique_trigram_ratio(prompts), 4)
    report["unique_trigram_ratio_output"] = round(
        unique_trigram_ratio([r["output"] for r in records]), 4
    )
    types = [instruction_type(r) for r in records]
    report["instruction_type_entropy_bits"] = round(entropy_bits(types), 4)
    report["instruction_type_basis"] = (
        "family" if all(r.get("family") for r in records) else "first word"
    )
    report["instruction_types"] = dict(Counter(types).most_common(25))
    checks = [format_check(r, template) for r in records]
    problems = Counter(p for found in checks for p in found)
    invalid = sum(1 for found in checks if found)
    report["format_validity_rate"] = round(1 - invalid / len(records), 4)
    report["format_problems"] = dict(problems)
    report["distinct_prompts"] = len({normalize_text(p) for p in prompts})
    return report


def _token_metrics(
    records: list[dict[str, Any]], tokenizer: Any, total_lengths: Sequence[int] | None
) -> dict[str, Any]:
    """Token lengths per part, response/instruction ratio and the OOV rate."""
    report: dict[str, Any] = {}
    ids = _lengths(tokenizer, records)
    lengths = {part: [len(x) for x in rows] for part, rows in ids.items()}
    totals = (
        list(total_lengths)
        if total_lengths is not None
        else [sum(parts) for parts in zip(*lengths.values(), strict=True)]
    )
    report["tokens"] = {part: length_stats(values) for part, values in lengths.items()}
    report["tokens"]["total"] = length_stats(totals)
    ratios = [
        o / max(i + c, 1)
        for i, c, o in zip(lengths["instruction"], lengths["input"], lengths["output"], strict=True)
    ]
    report["response_instruction_ratio"] = {
        "mean": round(float(np.mean(ratios)), 4),
        "median": round(float(np.median(ratios)), 4),
    }
    unk = tokenizer_info(tokenizer).unk_id
    n_tokens = sum(len(x) for rows in ids.values() for x in rows)
    n_unk = 0 if unk is None else sum(x.count(unk) for rows in ids.values() for x in rows)
    report["oov_rate"] = n_unk / n_tokens if n_tokens else 0.0
    report["unk_token_id"] = unk
    return report


def quality_report(
    records: Sequence[dict[str, Any]],
    tokenizer: Any = None,
    template: str | None = None,
    total_lengths: Sequence[int] | None = None,
) -> dict[str, Any]:
    """All section 9.2 metrics for one set of records.

    `total_lengths`: the full example lengths (prompt + completion + specials) from
    tokenization; without them, total = instruction + input + output tokens.
    """
    records = list(records)
    report: dict[str, Any] = {"n": len(records)}
    if not records:
        return report
    report.update(_text_metrics(records, template))
    if tokenizer is not None:
        report.update(_token_metrics(records, tokenizer, total_lengths))
    return report


def targets(report: dict[str, Any]) -> dict[str, bool | None]:
    """Which seed 9.2 targets a split meets (None where not measured)."""
    total = report.get("tokens", {}).get("total", {})
    return {
        "unique_trigrams_gt_0.70": report.get("unique_trigram_ratio", 0) > 0.70,
        "type_entropy_gt_2.5_bits": report.get("instruction_type_entropy_bits", 0) > 2.5,
        "mean_tokens_50_200": (50 <= total["mean"] <= 200)
        if total.get("mean") is not None
        else None,
        "max_tokens_lt_1024": (total["max"] < 1024) if total.get("max") is not None else None,
        "format_valid_gt_0.95": report.get("format_validity_rate", 0) > 0.95,
    }
