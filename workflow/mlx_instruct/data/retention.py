"""The retention-mix source: the BASE model's own answers to held-out generic prompts.

Self-replay: mixing the untuned model's answers to general prompts into fine-tuning data
pulls the tuned model back towards its original behaviour outside the tuned tasks (less
forgetting) without any external "teacher" data. Prompts come from Self-Instruct's 175
human-written seed tasks (vendored in resources/data) and a built-in list, never
overlapping the training/eval prompts. Greedy decoding, batched with mlx_lm.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlx_instruct.config import data_settings
from mlx_instruct.data.budget import answer_room
from mlx_instruct.data.common import DataError, content_id, make_record, text_key
from mlx_instruct.data.contamination import find_matches
from mlx_instruct.data.generic_prompts import GENERIC_PROMPTS
from mlx_instruct.data.prepare import load_tokenizer, output_row
from mlx_instruct.data.templates import format_prompt
from mlx_instruct.data.tokenize import encode, tokenize_example, tokenizer_info
from mlx_instruct.io import write_jsonl
from mlx_instruct.resources import data_file

SOURCE = "self-replay"
# A sentence end: . ! ? before space/quote/end (not a list marker like "2."), or a newline.
_SENTENCE_END = re.compile(r"(?<!\b\d)[.!?](?=[\s\"')\]]|$)|\n")


def self_instruct_prompts(path: str | Path) -> list[dict[str, Any]]:
    """Self-Instruct seed tasks as (instruction, first instance's input) records."""
    records = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                task = json.loads(line)
                instances = task.get("instances") or [{}]
                context = (instances[0].get("input") or "").strip()
                instruction = task["instruction"].strip()
            except (ValueError, KeyError, AttributeError, TypeError) as error:
                raise DataError(
                    f"{path}:{number}: not a Self-Instruct seed task ({type(error).__name__})"
                ) from None
            records.append(
                {"instruction": instruction, "input": context, "origin": "self-instruct"}
            )
    return records


def retention_pool() -> list[dict[str, Any]]:
    """Every candidate prompt: the vendored Self-Instruct seed tasks + the built-in list."""
    pool = self_instruct_prompts(data_file("self_instruct_seed")) + [
        {"instruction": p, "input": "", "origin": "built-in"} for p in GENERIC_PROMPTS
    ]
    unique: dict[str, dict[str, Any]] = {}
    for record in pool:
        unique.setdefault(text_key(record), record)
    return list(unique.values())


def select_prompts(
    pool: list[dict[str, Any]],
    n: int,
    seed: int,
    exclude: Mapping[str, Iterable[str]] | None = None,
) -> list[dict[str, Any]]:
    """A seeded sample of `n` pool prompts none of which equals an excluded text."""
    for index, record in enumerate(pool):
        record.setdefault("id", str(index))
    bad = {rid for rid, _, _ in find_matches(pool, exclude or {})}
    candidates = sorted((r for r in pool if r["id"] not in bad), key=text_key)
    if not candidates:
        raise DataError("retention: no held-out prompts left after excluding training/eval texts")
    rng = random.Random(seed)
    return rng.sample(candidates, min(n, len(candidates)))


def trim_unfinished(text: str) -> str:
    """Cut an answer that hit max_tokens back to its last sentence end, when that keeps at
    least half of it: the replay should not teach the model to stop mid-sentence."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if ends and ends[-1] >= len(text) / 2:
        return text[: ends[-1]].strip()
    return text.strip()


def generate_answers(
    model: Any, tokenizer: Any, prompts: list[str], max_tokens: int, batch_size: int = 16
) -> list[tuple[str, bool]]:
    """Greedy answers (text, hit max_tokens) for prompts, batched with mlx_lm."""
    from mlx_lm.generate import batch_generate

    info = tokenizer_info(tokenizer)
    head = [info.bos_id] if info.adds_bos else []
    ids = [head + encode(tokenizer, prompt) for prompt in prompts]
    response = batch_generate(
        model,
        tokenizer,
        ids,
        max_tokens=max_tokens,
        return_token_ids=True,
        completion_batch_size=batch_size,
        prefill_batch_size=min(batch_size, 8),
    )
    return [
        (text, len(tokens) >= max_tokens)
        for text, tokens in zip(response.texts, response.token_ids, strict=True)
    ]


def _read_prompts(paths: Iterable[Path]) -> list[str]:
    texts = []
    for path in paths:
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    texts.append(f"{row['instruction']}\n{row.get('input') or ''}".strip())
    return texts


def _settings(config: dict[str, Any]) -> tuple[int, int, str]:
    """(n, max_tokens, template) of data.retention."""
    data = config["data"]
    settings = data.get("retention") or {}
    if settings.get("source", SOURCE) != SOURCE:
        raise DataError(
            f"data.retention.source: only {SOURCE!r} is supported, got {settings['source']!r}"
        )
    n, max_tokens = int(settings.get("n", 200)), int(settings.get("max_tokens", 128))
    return n, max_tokens, data_settings(config)["template"]


def _load_model(model_dir: str | Path, model: Any, tokenizer: Any) -> tuple[Any, Any]:
    """The base model and tokenizer (those given win), with a DataError naming the dir."""
    if model is not None:
        return model, tokenizer if tokenizer is not None else load_tokenizer(model_dir)
    if not Path(model_dir).is_dir():
        raise DataError(
            f"{model_dir}: model directory not found (run the prepare_model stage first)"
        )
    try:
        from mlx_instruct.sources import load_model  # also random:// dirs without weights

        model, loaded = load_model(model_dir)
    except Exception as error:
        raise DataError(
            f"{model_dir}: could not load the model ({type(error).__name__}: {error})"
        ) from None
    return model, tokenizer if tokenizer is not None else loaded


def within_budget(
    pool: list[dict[str, Any]], tokenizer: Any, template: str, max_seq_len: int, max_tokens: int
) -> list[dict[str, Any]]:
    """The pool prompts that leave room for a `max_tokens` answer and EOS in `max_seq_len`.

    Why: a longer prompt's replay row would be dropped by the training stage's length
    policy (or have no answer at all), so the mix would silently hold fewer rows.
    """
    kept = [
        record
        for record in pool
        if answer_room(tokenizer, format_prompt(record, template, tokenizer), max_seq_len)
        >= max_tokens
    ]
    if not kept:
        raise DataError(
            f"data.retention.max_tokens: {max_tokens} answer tokens leave no room for any "
            f"retention prompt within data.max_seq_len {max_seq_len}"
        )
    return kept


def _answer_rows(
    chosen: list[dict[str, Any]],
    prompts: list[str],
    answers: list[tuple[str, bool]],
    tokenizer: Any,
    max_seq_len: int,
) -> tuple[list[dict[str, Any]], int, int, int]:
    """Contract rows of the non-empty answers that fit `max_seq_len`;
    (rows, empty answers, trimmed answers, answers dropped as too long)."""
    specials = tokenizer_info(tokenizer).special_texts
    rows, empty, trimmed, too_long = [], 0, 0, 0
    for record, prompt, (text, hit_limit) in zip(chosen, prompts, answers, strict=True):
        for special in specials:  # a special token other than the stop token ends the answer
            text = text.split(special)[0]
        answer = trim_unfinished(text) if hit_limit else text.strip()
        trimmed += int(hit_limit and answer != text.strip())
        if not answer:
            empty += 1
            continue
        if tokenize_example(tokenizer, prompt, answer, max_seq_len, "drop") is None:
            too_long += 1  # re-tokenised text can exceed the generated ids (rare)
            continue
        row = make_record(
            id="",
            source=SOURCE,
            instruction=record["instruction"],
            input=record["input"],
            output=answer,
        )
        row["id"] = content_id(SOURCE, row)
        rows.append(output_row({**row, "prompt": prompt, "completion": answer}))
    return rows, empty, trimmed, too_long


def build_retention(
    config: dict[str, Any],
    model_dir: str | Path,
    out_path: str | Path,
    exclude_texts: Mapping[str, Iterable[str]] | None = None,
    model: Any = None,
    tokenizer: Any = None,
    batch_size: int = 32,
) -> dict[str, Any]:
    """Write data/retention.jsonl (contract record shape, source "self-replay").

    Excluded prompts: `exclude_texts` plus the train/valid/test prompts found beside
    `out_path`. `model`/`tokenizer` override loading them from `model_dir` (tests).
    `batch_size` 32: measured on a 2-core CPU with SmolLM2-135M, batch 1/16/32/64 give
    2.6/15/34/33 tokens/s, so 200 answers x 96 tokens take ~9 minutes at 32.
    """
    n, max_tokens, template = _settings(config)
    max_seq_len = int(data_settings(config)["max_seq_len"])
    out_path = Path(out_path)
    exclude = {name: list(values) for name, values in (exclude_texts or {}).items()}
    exclude["prepared_data"] = _read_prompts(
        out_path.parent / f"{s}.jsonl" for s in ("train", "valid", "test")
    )
    model, tokenizer = _load_model(model_dir, model, tokenizer)
    pool = retention_pool()
    fitting = within_budget(pool, tokenizer, template, max_seq_len, max_tokens)
    chosen = select_prompts(fitting, n, int(config.get("seed", 0)), exclude)
    prompts = [format_prompt(r, template, tokenizer) for r in chosen]
    answers = generate_answers(model, tokenizer, prompts, max_tokens, batch_size)
    rows, empty, trimmed, too_long = _answer_rows(chosen, prompts, answers, tokenizer, max_seq_len)
    if not rows:
        raise DataError("retention: the base model produced no non-empty answers")
    write_jsonl(out_path, rows)
    return {
        "n_requested": n,
        "n_prompts": len(chosen),
        "n_written": len(rows),
        "pool": len(pool),
        "pool_prompt_too_long": len(pool) - len(fitting),
        "empty_answers": empty,
        "dropped_too_long": too_long,
        "hit_max_tokens": sum(1 for _, hit in answers if hit),
        "trimmed_to_sentence": trimmed,
        "max_tokens": max_tokens,
        "max_seq_len": max_seq_len,
        "template": template,
        "origins": {
            o: sum(1 for r in chosen if r["origin"] == o) for o in ("self-instruct", "built-in")
        },
    }
