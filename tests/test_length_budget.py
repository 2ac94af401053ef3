"""The length budget (issue 11 item 6): generated tasks and retention prompts fit
`data.max_seq_len` where they are made, so the data stage drops none of them later."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlx_instruct.data.budget import answer_room, example_fits
from mlx_instruct.data.retention import retention_pool, within_budget
from mlx_instruct.data.tasks import FAMILIES, generate_tasks, generate_tasks_report
from mlx_instruct.data.templates import format_prompt
from mlx_instruct.data.tokenize import tokenize_example

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mistral(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The smoke study's tokenizer (real Mistral v0.1 vocabulary)."""
    from mlx_lm.utils import load_tokenizer

    from mlx_instruct.sources import prepare_model

    root = tmp_path_factory.mktemp("budget")
    return load_tokenizer(Path(prepare_model("random://mistral-tiny?weights=false", root / "m")))


def _fits(tokenizer: Any, task: Any, max_seq_len: int) -> bool:
    record = {"instruction": task.instruction, "input": task.input}
    prompt = format_prompt(record, "chat", tokenizer)
    return tokenize_example(tokenizer, prompt, task.output, max_seq_len) is not None


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 40),
    seed=st.integers(0, 10_000),
    max_seq_len=st.integers(96, 256),
    families=st.lists(st.sampled_from(sorted(FAMILIES)), min_size=1, max_size=4, unique=True),
)
def test_every_generated_task_fits_and_the_count_is_n(
    mistral: Any, n: int, seed: int, max_seq_len: int, families: list[str]
) -> None:
    fits = example_fits(mistral, "chat", max_seq_len)
    try:
        tasks, report = generate_tasks_report(n, seed, families, fits)
    except ValueError as error:  # only when no cell of these families fits at all
        assert "fits the length budget" in str(error)
        return
    assert len(tasks) == n
    assert all(_fits(mistral, t, max_seq_len) for t in tasks)
    assert len({(t.instruction, t.input) for t in tasks}) == n
    assert report["drawn"] == n + sum(report["rejected"].values())
    again, _ = generate_tasks_report(n, seed, families, fits)
    assert again == tasks  # deterministic in (n, seed, families, budget)


def test_without_a_budget_the_tasks_are_unchanged() -> None:
    tasks, report = generate_tasks_report(60, 3)
    assert tasks == generate_tasks(60, 3)
    assert report == {"drawn": 0, "rejected": {}, "skipped_slots": {}, "slots": 60}


def test_a_budget_nothing_fits_is_a_clear_error(mistral: Any) -> None:
    with pytest.raises(ValueError, match="max_seq_len"):
        generate_tasks_report(5, 0, ["extraction"], example_fits(mistral, "chat", 40))


def test_prepared_data_keeps_n_examples_and_reports_the_draws(mistral: Any, tmp_path: Path):
    """The data stage at the smoke budget: n in, n out over the splits, none dropped."""
    import yaml

    from mlx_instruct.config import load_config
    from mlx_instruct.data.prepare import prepare_data

    raw = yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text(encoding="utf-8"))
    raw["data"]["sources"][0]["n"] = 90
    raw["data"]["split"] = {"valid": 10, "test": 10}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    stats = prepare_data(
        load_config(tmp_path / "study.yaml"), "m", tmp_path / "d", {}, None, mistral
    )
    counts = stats["counts"]
    assert counts["read"] == 90
    assert counts["dropped_too_long"] == counts["dropped_prompt_too_long"] == 0
    assert counts["train"] + counts["valid"] + counts["test"] == 90
    budget = stats["sources"][0]["length_budget"]
    assert counts["generated_rejected_too_long"] == sum(budget["rejected"].values()) > 0


def test_retention_prompts_leave_room_for_the_answer(mistral: Any) -> None:
    pool = retention_pool()
    kept = within_budget(pool, mistral, "chat", 128, 16)
    assert 0 < len(kept) < len(pool)
    rooms = [answer_room(mistral, format_prompt(r, "chat", mistral), 128) for r in kept]
    assert min(rooms) >= 16
