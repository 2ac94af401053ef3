"""Mix self-replay (retention) examples into the training set at a fixed fraction.

The total stays len(train), so a retention run sees as many examples per epoch as its
plain counterpart and the comparison isolates the mix, not the data volume.
"""

from __future__ import annotations

import random
from typing import Any

from mlx_instruct.data.common import DataError


def mix_retention(
    train_records: list[dict[str, Any]],
    retention_records: list[dict[str, Any]],
    fraction: float,
    seed: int,
) -> list[dict[str, Any]]:
    """len(train) examples, round(fraction * len(train)) of them from retention; shuffled.

    Train examples are sampled without replacement; retention examples are drawn in
    shuffled passes (each used floor or ceil of the needed repeats) when there are fewer
    of them than needed. Deterministic in (inputs, fraction, seed).
    """
    if not 0 <= fraction < 1:
        raise DataError(f"retention fraction must be in [0, 1), got {fraction}")
    total = len(train_records)
    n_retention = round(fraction * total)
    if n_retention == 0:
        return list(train_records)
    if not retention_records:
        raise DataError(f"retention fraction {fraction} needs retention examples, got none")
    rng = random.Random(seed)
    kept = rng.sample(range(total), total - n_retention)
    mixed = [train_records[i] for i in sorted(kept)]
    drawn: list[dict[str, Any]] = []
    while len(drawn) < n_retention:
        order = list(range(len(retention_records)))
        rng.shuffle(order)
        drawn.extend(retention_records[i] for i in order[: n_retention - len(drawn)])
    mixed.extend(drawn)
    rng.shuffle(mixed)
    return mixed
