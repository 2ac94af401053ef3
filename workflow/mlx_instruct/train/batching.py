"""Training data: read the data stage's jsonl, turn tokenized rows into examples, batch.

Batching is mlx_lm's (`tuner.trainer.iterate_batches`): examples sorted by length and cut
into micro-batches, the order of micro-batches shuffled each epoch, each micro-batch
right-padded to 1 + a multiple of 32 tokens (capped at the maximum length). Unlike mlx_lm,
the shuffle comes from a seeded generator per epoch, so the data position is two integers
(epoch, cursor) that a checkpoint can store and a resumed run can continue from.

The loss is on response tokens only: target position t (predicting token t+1) counts when
prompt_len <= t + 1 < length. Prompt and padding positions carry no label at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mlx_instruct.data.common import DataError  # one error type for data, in either stage
from mlx_instruct.io import read_jsonl

PAD_TO = 32
REQUIRED_FIELDS = ("id", "prompt", "completion")


class Tokenized(Protocol):
    id: str
    input_ids: Sequence[int]
    prompt_len: int


@dataclass(frozen=True)
class Example:
    id: str
    input_ids: tuple[int, ...]
    prompt_len: int

    def __len__(self) -> int:
        return len(self.input_ids)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a data-stage jsonl file, each checked for the fields training needs."""
    if not path.is_file():
        raise DataError(f"{path}: no such file (run the data stage first)")
    try:
        rows = read_jsonl(path)
    except ValueError as error:
        raise DataError(str(error)) from None
    for number, row in enumerate(rows, start=1):
        for key in REQUIRED_FIELDS:
            if not isinstance(row.get(key), str):
                raise DataError(f"{path}:{number}: field {key!r} missing or not a string")
    return rows


def to_examples(items: Sequence[Tokenized | None]) -> list[Example]:
    """Examples from tokenized items, skipping dropped ones and any with no response token."""
    examples = []
    for item in items:
        if item is None:
            continue
        ids = tuple(int(t) for t in item.input_ids)
        if len(ids) >= 2 and 0 < int(item.prompt_len) < len(ids):
            examples.append(Example(str(item.id), ids, int(item.prompt_len)))
    return examples


def fingerprint_files(paths: list[Path]) -> dict[str, str]:
    return {str(p.name): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def fingerprint_examples(examples: list[Example]) -> str:
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(json.dumps([ex.id, ex.prompt_len, ex.input_ids]).encode())
    return digest.hexdigest()[:16]


@dataclass
class Batch:
    """One padded micro-batch in the dense form (tests, the generic loss path)."""

    tokens: np.ndarray  # (B, W) int32, W = 1 + multiple of 32
    lengths: np.ndarray  # (B,)
    prompt_lens: np.ndarray  # (B,)

    @property
    def inputs(self) -> np.ndarray:
        return self.tokens[:, :-1]

    @property
    def targets(self) -> np.ndarray:
        return self.tokens[:, 1:]

    @property
    def mask(self) -> np.ndarray:
        """(B, W-1) bool: the positions whose next token is a response token."""
        positions = np.arange(1, self.tokens.shape[1])[None, :]
        return (positions >= self.prompt_lens[:, None]) & (positions < self.lengths[:, None])

    @property
    def n_tokens(self) -> int:
        """Real (non-padding) tokens this batch feeds the model."""
        return int(np.minimum(self.lengths, self.tokens.shape[1] - 1).sum())

    @property
    def n_loss_tokens(self) -> int:
        return int(self.mask.sum())


def collate(examples: Sequence[Example], max_seq_len: int) -> Batch:
    lengths = [min(len(ex), max_seq_len) for ex in examples]
    width = 1 + PAD_TO * ((max(lengths) + PAD_TO - 1) // PAD_TO)
    width = min(width, max_seq_len)
    tokens = np.zeros((len(examples), width), np.int32)
    for row, (ex, length) in enumerate(zip(examples, lengths, strict=True)):
        length = min(length, width)
        tokens[row, :length] = ex.input_ids[:length]
        lengths[row] = length
    prompt_lens = np.array([ex.prompt_len for ex in examples], np.int32)
    return Batch(tokens, np.array(lengths, np.int32), prompt_lens)


class BatchPlan:
    """Length-sorted micro-batches in a seeded order per epoch (mlx_lm's batching)."""

    def __init__(self, examples: list[Example], micro_batch: int, max_seq_len: int, seed: int):
        if len(examples) < micro_batch:
            raise DataError(
                f"only {len(examples)} usable training examples for micro_batch_size {micro_batch}"
            )
        self.examples = examples
        self.max_seq_len = max_seq_len
        self.seed = seed
        order = sorted(range(len(examples)), key=lambda i: len(examples[i]))
        self.batches = [
            order[i : i + micro_batch] for i in range(0, len(order) - micro_batch + 1, micro_batch)
        ]
        self.epoch = 0
        self.cursor = 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.batches))

    @property
    def position(self) -> dict[str, int]:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def seek(self, epoch: int, cursor: int) -> None:
        self.epoch, self.cursor = int(epoch), int(cursor)
        self._order = self._permutation(self.epoch)

    def next_indices(self) -> list[int]:
        if self.cursor >= len(self._order):
            self.seek(self.epoch + 1, 0)
        indices = self.batches[self._order[self.cursor]]
        self.cursor += 1
        return indices

    def next(self) -> Batch:
        return collate([self.examples[i] for i in self.next_indices()], self.max_seq_len)

    def shapes(self) -> list[tuple[int, int]]:
        """(padded width, response tokens) of every micro-batch of an epoch."""
        shapes = []
        for indices in self.batches:
            batch = collate([self.examples[i] for i in indices], self.max_seq_len)
            shapes.append((batch.tokens.shape[1], batch.n_loss_tokens))
        return shapes

    def longest(self) -> Batch:
        """The micro-batch with the longest examples (the dry run's worst case)."""
        return collate([self.examples[i] for i in self.batches[-1]], self.max_seq_len)


def eval_batches(
    examples: list[Example], micro_batch: int, n_batches: int, max_seq_len: int
) -> list[Batch]:
    """A fixed, length-sorted, evenly spread subset of validation micro-batches."""
    if not examples:
        return []
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]))
    chunks = [order[i : i + micro_batch] for i in range(0, len(order), micro_batch)]
    if n_batches > 0 and len(chunks) > n_batches:
        picks = np.linspace(0, len(chunks) - 1, n_batches).round().astype(int)
        chunks = [chunks[i] for i in sorted(set(picks.tolist()))]
    return [collate([examples[i] for i in chunk], max_seq_len) for chunk in chunks]
