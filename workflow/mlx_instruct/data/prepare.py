"""The data stage: sources -> dedup -> template + tokenize -> split -> contamination -> files.

Everything that can fail is checked before the first byte is written, and the four outputs
are renamed into place together at the end, so a failed run leaves the output directory
exactly as it was (Snakemake never sees a half-prepared dataset).
"""

from __future__ import annotations

import contextlib
import json
import platform
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlx_instruct.config import data_settings, quality_settings
from mlx_instruct.data.budget import example_fits
from mlx_instruct.data.common import OUTPUT_KEYS, DataError, prompt_text, text_key
from mlx_instruct.data.contamination import (
    as_labelled,
    check_contamination,
    find_matches,
    load_eval_texts,
    seed_prompt_texts,
)
from mlx_instruct.data.dedup import dedup
from mlx_instruct.data.quality import quality_report, targets
from mlx_instruct.data.readers import read_source_report
from mlx_instruct.data.screen import screen_toxicity
from mlx_instruct.data.split import SPLITS, assert_disjoint, split_records
from mlx_instruct.data.templates import format_prompt
from mlx_instruct.data.tokenize import hf_tokenizer, tokenize_dataset, tokenizer_info
from mlx_instruct.io import atomic_path

__all__ = ["prepare_data", "load_eval_texts", "load_tokenizer", "tokenizer_summary", "output_row"]


def load_tokenizer(model_dir: str | Path) -> Any:
    """mlx_lm's tokenizer for a model dir, with a DataError instead of a library traceback."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise DataError(
            f"{model_dir}: model directory not found (run the prepare_model stage first)"
        )
    try:
        from mlx_lm.utils import load_tokenizer as _load

        return _load(model_dir)
    except Exception as error:
        raise DataError(
            f"{model_dir}: could not load the tokenizer ({type(error).__name__}: {error})"
        ) from None


def tokenizer_summary(tokenizer: Any, model_dir: str | Path | None = None) -> dict[str, Any]:
    info = tokenizer_info(tokenizer)
    hf = hf_tokenizer(tokenizer)
    return {
        "model_dir": str(model_dir) if model_dir is not None else None,
        "class": type(hf).__name__,
        "name_or_path": str(getattr(hf, "name_or_path", "")),
        "vocab_size": len(hf),
        "bos_id": info.bos_id,
        "eos_id": info.eos_id,
        "adds_bos": info.adds_bos,
        "unk_id": info.unk_id,
    }


def output_row(record: dict[str, Any]) -> dict[str, Any]:
    """A record in the docs/contracts.md line shape (exact keys, fixed order)."""
    return {key: record.get(key) for key in OUTPUT_KEYS}


def _read_all(
    data: dict[str, Any], seed: int, base_dir: Path | None, fits: Any = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    reports = []
    for spec in data["sources"]:
        found, report = read_source_report(spec, seed, base_dir, fits=fits)
        records.extend(found)
        reports.append(report)
    if not records:
        raise DataError("data.sources: no records from any source (all optional sources absent?)")
    by_id: dict[str, tuple[str, str]] = {}
    for record in records:  # the same id for different prompts across sources is ambiguous
        first = by_id.setdefault(record["id"], (text_key(record), record["source"]))
        if first[0] != text_key(record):
            raise DataError(
                f"field 'id': id {record['id']!r} names different prompts in {first[1]} and "
                f"{record['source']}; ids must be unique"
            )
    return records, reports


def _drop_special_text(
    records: list[dict[str, Any]], tokenizer: Any
) -> tuple[list[dict[str, Any]], list[str]]:
    """Records whose text contains special-token text ('</s>', '<|im_end|>') would put
    control tokens into the ids; they are dropped and counted, never silently kept."""
    specials = tokenizer_info(tokenizer).special_texts
    kept, dropped = [], []
    for record in records:
        text = "\n".join((record["instruction"], record.get("input") or "", record["output"]))
        if any(s in text for s in specials):
            dropped.append(record["id"])
        else:
            kept.append(record)
    return kept, dropped


def _tokenize(
    records: list[dict[str, Any]], tokenizer: Any, template: str, data: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, int], dict[str, Any]]:
    """Template + tokenize; (records kept, their examples by id, full lengths by id, report)."""
    for record in records:
        record["prompt"] = format_prompt(record, template, tokenizer)
        record["completion"] = record["output"]
    examples, report = tokenize_dataset(
        tokenizer, records, int(data["max_seq_len"]), data["on_too_long"]
    )
    full_lengths = dict(zip((r["id"] for r in records), report.pop("full_lengths"), strict=True))
    by_id = {e.id: e for e in examples}
    records = [r for r in records if r["id"] in by_id]
    if len(records) < 3:
        raise DataError(
            f"only {len(records)} usable records after dedup and length limits; need >= 3"
        )
    return records, by_id, full_lengths, report


def _split_clean(
    records: list[dict[str, Any]],
    data: dict[str, Any],
    seed: int,
    eval_sets: Mapping[str, Iterable[str]] | Iterable[str] | None,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Splits, and the contamination check of train + valid against every evaluation text
    (the plan's five prompts and the test split included); 'drop' removes matches first."""
    splits = split_records(records, data.get("split"), seed)
    assert_disjoint(splits)
    eval_texts = as_labelled(eval_sets)
    eval_texts.setdefault("seed_prompts", seed_prompt_texts())
    eval_texts["test_split"] = [prompt_text(r) for r in splits["test"]]
    bad: set[str] = set()
    if data.get("on_contamination", "error") == "drop":  # needs the schema to allow the key
        bad = {rid for rid, _, _ in find_matches(splits["train"] + splits["valid"], eval_texts)}
        splits = {k: [r for r in v if r["id"] not in bad or k == "test"] for k, v in splits.items()}
    contamination = check_contamination(splits["train"] + splits["valid"], eval_texts)
    contamination["dropped"] = len(bad)
    return splits, contamination


def _split_reports(
    splits: dict[str, list[dict[str, Any]]],
    tokenizer: Any,
    template: str,
    full_lengths: dict[str, int],
    by_id: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Section 9.2's quality report per split, with truncation rate and the seed's targets."""
    reports = {}
    for name, rows in splits.items():
        report = quality_report(rows, tokenizer, template, [full_lengths[r["id"]] for r in rows])
        n_trunc = sum(1 for r in rows if by_id[r["id"]].truncated)
        report["truncation_rate"] = n_trunc / len(rows) if rows else 0.0
        report["targets"] = targets(report)
        reports[name] = report
    return reports


def _write_outputs(
    out_dir: Path, splits: dict[str, list[dict[str, Any]]], stats: dict[str, Any]
) -> None:
    with contextlib.ExitStack() as stack:  # all temp files first; renamed together on success
        for name in SPLITS:
            tmp = stack.enter_context(atomic_path(out_dir / f"{name}.jsonl"))
            with tmp.open("w", encoding="utf-8") as handle:
                for record in splits[name]:
                    handle.write(json.dumps(output_row(record), ensure_ascii=False) + "\n")
        tmp = stack.enter_context(atomic_path(out_dir / "stats.json"))
        tmp.write_text(json.dumps(stats, indent=2, default=str) + "\n", encoding="utf-8")


def prepare_data(
    config: dict[str, Any],
    model_dir: str | Path,
    out_dir: str | Path,
    eval_sets: Mapping[str, Iterable[str]] | Iterable[str] | None = None,
    base_dir: str | Path | None = None,
    tokenizer: Any = None,
) -> dict[str, Any]:
    """Build data/{train,valid,test}.jsonl and data/stats.json; return the stats.

    `eval_sets`: every evaluation text (see `load_eval_texts`), by benchmark name or as a
    flat list; the plan's five prompts and the test split are always checked as well.
    `tokenizer` overrides loading it from `model_dir` (tests).
    """
    data = data_settings(config)
    seed = int(config.get("seed", 0))
    template = data["template"]
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(model_dir)
    fits = example_fits(tokenizer, template, int(data["max_seq_len"]))  # generator sources
    records, source_reports = _read_all(data, seed, Path(base_dir) if base_dir else None, fits)
    n_read = len(records)
    quality = quality_settings(config)  # the toxicity screen: flag (count) or drop
    records, toxicity = screen_toxicity(
        records, quality["toxicity"], float(quality["toxicity_threshold"])
    )
    records, special = _drop_special_text(records, tokenizer)
    records, dedup_report = dedup(records, data.get("near_duplicate_threshold"))
    records, by_id, full_lengths, tok_report = _tokenize(records, tokenizer, template, data)
    splits, contamination = _split_clean(records, data, seed, eval_sets)
    stats: dict[str, Any] = {
        "seed": seed,
        "template": template,
        "max_seq_len": int(data["max_seq_len"]),
        "on_too_long": data["on_too_long"],
        "tokenizer": tokenizer_summary(tokenizer, model_dir),
        "python": platform.python_version(),
        "sources": source_reports,
        "counts": {
            "read": n_read,
            "generated_rejected_too_long": sum(
                sum(r["length_budget"]["rejected"].values())
                for r in source_reports
                if "length_budget" in r
            ),
            "dropped_toxicity": toxicity["dropped"],
            "dropped_special_token_text": len(special),
            "exact_duplicates": dedup_report["exact_duplicates"],
            "near_duplicates": dedup_report["near_duplicates"],
            "truncated": tok_report["truncated"],
            "dropped_too_long": tok_report["dropped_too_long"],
            "dropped_prompt_too_long": tok_report["dropped_prompt_too_long"],
            **{name: len(rows) for name, rows in splits.items()},
        },
        "toxicity": toxicity,
        "dedup": dedup_report,
        "tokenization": tok_report,
        "contamination": contamination,
        "splits": _split_reports(splits, tokenizer, template, full_lengths, by_id),
    }
    _write_outputs(Path(out_dir), splits, stats)
    return stats
