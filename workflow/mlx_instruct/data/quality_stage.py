"""The data_quality rule: section 9.2's framework over the prepared training split.

Reads data/{train,valid,test}.jsonl and data/stats.json (the prepare stage's toxicity
counts over every record read) and writes, atomically, into the data folder:

  quality.json            per source + mix metrics against the targets, toxicity, the
                          composite score's distribution, the embedding map's summary
  quality_scores.parquet  one row per training example: composite score and components
  embedding_map.parquet   one row per embedded instruction: x, y, cluster, marks

Why a rule of its own: the MiniLM embedding and t-SNE cost seconds to minutes on a 2-core
CPU; kept out of prepare_data they never delay training and show in their own benchmark.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from mlx_instruct.config import data_settings, quality_settings
from mlx_instruct.data.common import DataError, prompt_text
from mlx_instruct.data.contamination import as_labelled, find_matches, seed_prompt_texts
from mlx_instruct.data.embed_map import embedding_map
from mlx_instruct.data.quality_mix import TARGETS, by_source, example_scores, score_summary
from mlx_instruct.data.screen import screened_text, toxicity_scores
from mlx_instruct.data.tokenize import tokenize_dataset
from mlx_instruct.io import atomic_path, read_jsonl, write_json

OUTPUTS = ("quality.json", "quality_scores.parquet", "embedding_map.parquet")
MAP_COLUMNS = ("id", "source", "type", "x", "y", "cluster", "over_represented")


def _read_splits(data_dir: Path) -> dict[str, list[dict[str, Any]]]:
    splits = {}
    for name in ("train", "valid", "test"):
        path = data_dir / f"{name}.jsonl"
        if not path.is_file():
            raise DataError(f"{path}: missing; run the prepare_data stage first")
        splits[name] = read_jsonl(path)
    if not splits["train"]:
        raise DataError(f"{data_dir / 'train.jsonl'}: no training records to assess")
    return splits


def _contaminated(
    splits: dict[str, list[dict[str, Any]]],
    eval_sets: Mapping[str, Iterable[str]] | Iterable[str] | None,
) -> set[str]:
    """Ids of training records matching an evaluation text (prepare's check, measured again)."""
    texts = as_labelled(eval_sets)
    texts.setdefault("seed_prompts", seed_prompt_texts())
    texts["test_split"] = [prompt_text(r) for r in splits["test"]]
    return {rid for rid, _, _ in find_matches(splits["train"], texts)}


def _toxicity(stats: dict[str, Any], train: list[dict[str, Any]], scores, threshold: float):
    """The prepare stage's screen (every record read) and the hits left in the training split."""
    hits: dict[str, int] = {}
    for record, score in zip(train, scores, strict=True):
        hits[record["source"]] = hits.get(record["source"], 0) + int(score >= threshold)
    return {**(stats.get("toxicity") or {}), "train_flagged_by_source": hits}


def assess(
    config: dict[str, Any],
    data_dir: str | Path,
    tokenizer: Any,
    eval_sets: Mapping[str, Iterable[str]] | Iterable[str] | None = None,
    encoder: Any = None,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """(quality.json's content, per-example scores, embedding map) for a prepared folder."""
    data_dir = Path(data_dir)
    data, settings = data_settings(config), quality_settings(config)
    seed = int(config.get("seed", 0))
    splits = _read_splits(data_dir)
    train = splits["train"]
    stats_path = data_dir / "stats.json"
    stats = json.loads(stats_path.read_text(encoding="utf-8")) if stats_path.is_file() else {}
    _, tok = tokenize_dataset(tokenizer, train, int(data["max_seq_len"]), "truncate")
    lengths = tok["full_lengths"]
    contaminated = _contaminated(splits, eval_sets)
    toxic = toxicity_scores([screened_text(r) for r in train])
    scores = example_scores(train, lengths, toxic, contaminated, data["template"])
    if int(settings["embed_max"]) > 0:
        points, map_summary = embedding_map(train, settings, seed, encoder)
    else:
        points, map_summary = pd.DataFrame(columns=list(MAP_COLUMNS)), None
    report = {
        "basis": "train split",
        "settings": settings,
        "targets": [
            {"metric": t.metric, "label": t.label, "target": t.text(), "op": t.op, "bound": t.bound}
            for t in TARGETS
        ],
        "groups": by_source(train, lengths, contaminated, data["template"]),
        "toxicity": _toxicity(stats, train, toxic, float(settings["toxicity_threshold"])),
        "composite": score_summary(scores),
        "map": map_summary,
    }
    return report, scores, points


def write_quality(
    report: dict[str, Any], scores: pd.DataFrame, points: pd.DataFrame, out_dir: str | Path
) -> None:
    """The three outputs, each written atomically."""
    out_dir = Path(out_dir)
    for frame, name in ((scores, OUTPUTS[1]), (points, OUTPUTS[2])):
        with atomic_path(out_dir / name) as tmp:
            frame.to_parquet(tmp, index=False)
    write_json(out_dir / OUTPUTS[0], report)
