"""The generator source (`generator://verifiable`): seeded verifiable tasks as records.

Kept apart from the file readers: a generated source has no rows to parse, only a count,
a seed and, where the study has a length budget, a fit test (`data.budget`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlx_instruct.data.common import DataError, make_record

GENERATORS = ("verifiable",)


def generator_records(
    uri: str,
    name: str,
    n: int | None,
    seed: int,
    families: list[str] | None,
    fits: Callable[[Any], bool] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """n tasks of generator `name` as records, and the length-budget report."""
    if name not in GENERATORS:
        raise DataError(f"{uri}: unknown generator {name!r}; known: {list(GENERATORS)}")
    if not n:
        raise DataError(f"{uri}: a generator source needs `n` (how many tasks)")
    from mlx_instruct.data.tasks import generate_tasks_report

    try:
        tasks, budget = generate_tasks_report(n, seed, families, fits)
    except (KeyError, ValueError) as error:
        raise DataError(f"{uri}: {error}") from None
    return [
        make_record(
            id=task.id,
            source=uri,
            family=task.family,
            instruction=task.instruction,
            input=task.input,
            output=task.output,
            constraints=dict(task.constraints),
        )
        for task in tasks
    ], budget
