"""Training data: read the data stage's jsonl, turn tokenized rows into examples, batch.

Batching is mlx_lm's (`tuner.trainer.iterate_batches`): examples sorted by length and cut
into micro-batches, the order of micro-batches shuffled each epoch, each micro-batch
right-padded to 1 + a multiple of 32 tokens (capped at the maximum length). Unlike mlx_lm,
the shuffle comes from a seeded generator per epoch, so the data position is two integers
(epoch, cursor) that a checkpoint can store and a resumed run can continue from.

A curriculum (`data_order`, the plan's section 15) keeps the same micro-batches and the same
seeded draw, and only reorders the micro-batches each epoch consumes within the run's budget
easy to hard: by mean token length (`length`) or by the untuned model's response-token loss
(`base_loss`, measured by train.curriculum before the first step). A shuffled arm and its
curriculum arm at one seed thus see the same examples, in a different order.

The loss is on response tokens only: target position t (predicting token t+1) counts when
prompt_len <= t + 1 < length. Prompt and padding positions carry no label at all.

With packing (`data.packing`, train.packing) the plan's rows are packed rows of examples
instead of single examples, fixed for the whole run by (examples, max_seq_len, seed); the
micro-batches are cut from them by length and shuffled as above, so the data position stays
(epoch, cursor) over a list a resumed run rebuilds identically.
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
from mlx_instruct.train.packing import PackedBatch, Rows, collate_rows, pack

PAD_TO = 32
ORDERS = ("shuffled", "length", "base_loss")
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
class Batch(Rows):
    """One padded micro-batch: one example per row."""

    lengths: np.ndarray  # (B,)
    prompt_lens: np.ndarray  # (B,)

    @property
    def mask(self) -> np.ndarray:
        """(B, W-1) bool: the positions whose next token is a response token."""
        positions = np.arange(1, self.tokens.shape[1])[None, :]
        return (positions >= self.prompt_lens[:, None]) & (positions < self.lengths[:, None])

    @property
    def n_tokens(self) -> int:
        """Real (non-padding) tokens this batch feeds the model."""
        return int(np.minimum(self.lengths, self.tokens.shape[1] - 1).sum())


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
    """Length-sorted micro-batches in a seeded order per epoch (mlx_lm's batching), or in a
    curriculum order within `budget` (the micro-batches the run consumes).

    A micro-batch is a list of row indices; a row is one example, or with `packing` the
    examples of one packed row (`rows`).
    """

    def __init__(
        self,
        examples: list[Example],
        micro_batch: int,
        max_seq_len: int,
        seed: int,
        order: str = "shuffled",
        budget: int | None = None,
        packing: bool = False,
    ):
        lengths = [min(len(ex), max_seq_len) for ex in examples]
        self.packing = packing
        self.rows = (
            pack(lengths, max_seq_len, seed) if packing else [[i] for i in range(len(examples))]
        )
        if len(self.rows) < micro_batch:
            what = "packed rows (data.packing)" if packing else "usable training examples"
            raise DataError(f"only {len(self.rows)} {what} for micro_batch_size {micro_batch}")
        if order not in ORDERS:
            raise DataError(f"data_order: unknown {order!r}; expected one of {list(ORDERS)}")
        self.examples = examples
        self.max_seq_len = max_seq_len
        self.seed = seed
        self.order = order
        self.budget = budget
        self.row_lengths = [sum(lengths[i] for i in row) for row in self.rows]
        by_length = sorted(range(len(self.rows)), key=lambda r: self.row_lengths[r])
        self.batches = [
            by_length[i : i + micro_batch]
            for i in range(0, len(by_length) - micro_batch + 1, micro_batch)
        ]
        # per micro-batch: the curriculum's measure (None: not measured, never reordered)
        self.difficulty: list[float | None] | None = None
        if order == "length":
            self.difficulty = [
                float(np.mean([self.row_lengths[r] for r in b])) for b in self.batches
            ]
        self.epoch = 0
        self.cursor = 0
        self._order = self._permutation(0)

    def _window(self, epoch: int) -> int:
        """How many micro-batches of `epoch` the run consumes."""
        n = len(self.batches)
        return n if self.budget is None else min(n, max(0, self.budget - epoch * n))

    def _permutation(self, epoch: int) -> np.ndarray:
        perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.batches))
        if self.difficulty is None:
            return perm
        window, measure = self._window(epoch), self.difficulty
        head = sorted(perm[:window].tolist(), key=lambda b: (measure[b], b))
        return np.array(head + perm[window:].tolist(), dtype=np.int64)

    def consumed(self) -> list[int]:
        """The micro-batches the run's budget reaches (those a curriculum orders)."""
        n, seen, epoch = len(self.batches), set(), 0
        while self._window(epoch) > 0 and len(seen) < n:
            perm = np.random.default_rng([self.seed, epoch]).permutation(n)
            seen.update(perm[: self._window(epoch)].tolist())
            epoch += 1
        return sorted(seen)

    def set_difficulty(self, values: list[float | None]) -> None:
        """The measured curriculum (one value per micro-batch); the order follows it."""
        if len(values) != len(self.batches):
            raise DataError(
                f"curriculum: {len(values)} difficulties for {len(self.batches)} micro-batches"
            )
        self.difficulty = [None if v is None else float(v) for v in values]
        self._order = self._permutation(self.epoch)

    @property
    def position(self) -> dict[str, Any]:
        """What a checkpoint stores; a measured curriculum goes with it (not re-measured)."""
        position: dict[str, Any] = {"epoch": self.epoch, "cursor": self.cursor}
        if self.order == "base_loss":
            position["difficulty"] = self.difficulty
        return position

    def seek(self, epoch: int, cursor: int, difficulty: list[float | None] | None = None) -> None:
        if difficulty is not None:
            self.difficulty = [None if v is None else float(v) for v in difficulty]
        self.epoch, self.cursor = int(epoch), int(cursor)
        self._order = self._permutation(self.epoch)

    def describe(self) -> dict[str, Any]:
        """run.json's record of the order: the measure and its first and last values."""
        record: dict[str, Any] = {"order": self.order, "budget_micro_batches": self.budget}
        if self.difficulty is not None:
            window = self._window(0)
            first = [self.difficulty[b] for b in self._permutation(0)[:window]]
            record.update(
                measure="mean tokens" if self.order == "length" else "untuned response loss",
                first=first[0] if first else None,
                last=first[-1] if first else None,
            )
        return record

    def next_indices(self) -> list[int]:
        if self.cursor >= len(self._order):
            self.seek(self.epoch + 1, 0)
        indices = self.batches[self._order[self.cursor]]
        self.cursor += 1
        return indices

    def collate(self, rows: list[int]) -> Batch | PackedBatch:
        """The micro-batch of these rows, padded (or packed) for the model."""
        if self.packing:
            packed = [[self.examples[i] for i in self.rows[r]] for r in rows]
            return collate_rows(packed, self.max_seq_len, PAD_TO)
        return collate([self.examples[r] for r in rows], self.max_seq_len)

    def next(self) -> Batch | PackedBatch:
        return self.collate(self.next_indices())

    def shapes(self) -> list[tuple[int, int]]:
        """(padded width, response tokens) of every micro-batch of an epoch."""
        shapes = []
        for rows in self.batches:
            batch = self.collate(rows)
            shapes.append((batch.tokens.shape[1], batch.n_loss_tokens))
        return shapes

    def longest(self) -> Batch | PackedBatch:
        """The micro-batch with the longest rows (the dry run's worst case)."""
        return self.collate(self.batches[-1])

    def mean_row_length(self) -> float:
        """Tokens per row on average (an example, or a packed row)."""
        return sum(self.row_lengths) / len(self.row_lengths)


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
