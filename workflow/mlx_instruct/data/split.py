"""Deterministic, leak-free train/valid/test split.

Records that share an id OR a normalised instruction+input text form one group, and a group
goes to exactly one split: a duplicate can never sit in train while its twin is in test,
even if dedup was switched off or ids were reused. Seeded and independent of input order.
"""

from __future__ import annotations

import random
from typing import Any

from mlx_instruct.data.common import DataError, text_key

SPLITS = ("train", "valid", "test")
DEFAULT_SPLIT = {"valid": 0.05, "test": 0.1}


def _groups(records: list[dict[str, Any]]) -> list[list[int]]:
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for index, record in enumerate(records):
        for key in (("id", str(record["id"])), ("text", text_key(record))):
            if key in first:
                a, b = find(index), find(first[key])
                parent[max(a, b)] = min(a, b)
            else:
                first[key] = index
    groups: dict[int, list[int]] = {}
    for index in range(len(records)):
        groups.setdefault(find(index), []).append(index)
    return list(groups.values())


def split_sizes(n: int, spec: dict[str, float] | None) -> dict[str, int]:
    """Counts (values >= 1) or fractions (values < 1) of valid and test; train gets the rest."""
    spec = DEFAULT_SPLIT if spec is None else spec
    sizes = {}
    for name in ("valid", "test"):
        value = spec.get(name, DEFAULT_SPLIT[name])
        if value >= 1:
            if value != int(value):
                raise DataError(f"data.split.{name}: a count must be a whole number, got {value}")
            sizes[name] = int(value)
        else:
            sizes[name] = max(1, round(value * n)) if value > 0 else 0
    if sizes["valid"] + sizes["test"] >= n:
        raise DataError(
            f"data.split: valid {sizes['valid']} + test {sizes['test']} leave no training data "
            f"from {n} records"
        )
    sizes["train"] = n - sizes["valid"] - sizes["test"]
    return sizes


def split_records(
    records: list[dict[str, Any]], spec: dict[str, float] | None, seed: int
) -> dict[str, list[dict[str, Any]]]:
    """{train, valid, test}: seeded, grouped, each split in a stable (id-sorted) order."""
    sizes = split_sizes(len(records), spec)
    groups = _groups(records)
    groups.sort(key=lambda g: min(text_key(records[i]) for i in g))
    random.Random(seed).shuffle(groups)
    out: dict[str, list[int]] = {name: [] for name in SPLITS}
    for group in groups:
        for name in ("test", "valid", "train"):
            if name == "train" or len(out[name]) < sizes[name]:
                out[name].extend(group)
                break
    return {
        name: sorted((records[i] for i in indices), key=lambda r: (str(r["id"]), text_key(r)))
        for name, indices in out.items()
    }


def assert_disjoint(splits: dict[str, list[dict[str, Any]]]) -> None:
    """Raise if any id or normalised prompt appears in two splits (a bug, not bad data)."""
    seen: dict[tuple[str, str], str] = {}
    for name, records in splits.items():
        for record in records:
            for key in (("id", str(record["id"])), ("text", text_key(record))):
                other = seen.setdefault(key, name)
                if other != name:
                    raise DataError(
                        f"split leak: {key[0]} of {record['id']!r} is in both {other} and {name}"
                    )
