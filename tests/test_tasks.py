"""The verifiable task generator: references pass their checkers, corruptions fail them,
checkers never raise on arbitrary text, and generation is deterministic and balanced."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import random
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlx_instruct.data.tasks import (
    CHECKERS,
    DIFFICULTIES,
    FAMILIES,
    PHRASINGS,
    SEED_PROMPTS,
    CheckResult,
    Task,
    adherence_score,
    check,
    generate_tasks,
    task_from_dict,
    task_text,
    to_record,
    unique_trigram_ratio,
)
from mlx_instruct.data.tasks.families_reason import FORMATS

NAMES = sorted(FAMILIES)


def task_for(family: str, seed: int, index: int) -> Task:
    return FAMILIES[family].generate(random.Random(f"t/{family}/{seed}"), index)


@pytest.fixture(scope="module")
def tasks_2000() -> list[Task]:
    return generate_tasks(2000, seed=0)


# --------------------------------------------------------------- references pass


def test_at_least_fourteen_families():
    assert len(FAMILIES) >= 14
    assert set(FAMILIES) <= set(CHECKERS)


@pytest.mark.parametrize("family", NAMES)
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**9), index=st.integers(0, 60))
def test_reference_output_passes_its_own_checker(family, seed, index):
    task = task_for(family, seed, index)
    result = check(task, task.output)
    assert result.correct, (task.instruction, task.input, task.output, result.detail)
    assert result.follows_format and result.score == 1.0 and result.detail == ""
    assert adherence_score(result) == 100.0
    assert task.family == family and task.difficulty in DIFFICULTIES and task.phrasing in PHRASINGS
    assert task.instruction.strip() and task.output.strip()


def test_generated_batch_references_all_pass(tasks_2000):
    assert all(check(t, t.output).correct for t in tasks_2000)


# --------------------------------------------------------------- corruptions fail


def _date_shift(t: Task) -> str:
    day = dt.date.fromisoformat(t.constraints["expected"]) + dt.timedelta(days=1)
    return FORMATS[t.constraints["target_format"]][2](day)


def _first_start_word_changed(t: Task) -> str:
    c = t.constraints
    if c["start"]:
        return "Indeed, " + t.output
    return t.output.rstrip(".") + ", as a rule."


CORRUPT: dict[str, Callable[[Task], str]] = {
    "json_fields": lambda t: t.output[:-1],  # broken JSON
    "bullet_list": lambda t: "\n".join(t.output.splitlines()[:-1]),  # one bullet short
    "numbered_list": lambda t: "\n".join(t.output.splitlines()[:-1]),
    "word_limit": lambda t: t.output + " extra" * (t.constraints["max_words"] + 1),
    "sentence_count": lambda t: t.output + " This sentence is one too many.",
    "letter_case": lambda t: t.output.swapcase(),
    "extraction": lambda t: ("\n" if t.constraints["ordered"] else ", ").join(
        t.constraints["expected"][:-1]
    ),
    "sorting": lambda t: ", ".join(reversed(t.constraints["expected"])),
    "counting": lambda t: str(t.constraints["answer"] + 1),
    "arithmetic": lambda t: f"The answer is {t.constraints['answer'] + 1}.",
    "date_format": _date_shift,
    "unit_conversion": lambda t: (
        f"{t.constraints['expected'] + 3 * t.constraints['tolerance'] + 1:.2f} {t.constraints['unit']}"
    ),
    "kv_to_table": lambda t: "\n".join(t.output.splitlines()[:-1]),  # a row lost
    "csv_format": lambda t: "\n".join(t.output.splitlines()[:-1]),
    "keyword_inclusion": lambda t: re.sub(
        "|".join(rf"\b{w}\w*" for w in t.constraints["include"]), "thing", t.output, flags=re.I
    ),
    "starts_ends": _first_start_word_changed,
    "text_transform": lambda t: t.output + " extra",
    "yes_no": lambda t: "No" if t.constraints["answer"] == "yes" else "Yes",
}


def test_every_family_has_a_corruption():
    assert set(CORRUPT) == set(FAMILIES)


@pytest.mark.parametrize("family", NAMES)
def test_corrupted_outputs_fail(family):
    for index in range(24):  # every phrasing x difficulty, several contents
        task = task_for(family, 11, index)
        bad = CORRUPT[family](task)
        result = check(task, bad)
        assert not result.correct, (task.instruction, bad)
        assert result.score < 1.0 and adherence_score(result) < 100.0


def test_partial_credit_is_between_zero_and_hundred():
    task = next(t for t in generate_tasks(60, 5, ["bullet_list"]) if t.difficulty == "multi_step")
    result = check(task, "Here you go:\n" + task.output)  # right count, but text outside the list
    assert result.follows_format and not result.correct
    assert 0 < result.score < 1 and 50 < adherence_score(result) < 100


# --------------------------------------------------------------- never raises


@pytest.mark.parametrize("family", NAMES)
@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=400))
def test_checkers_never_raise_on_arbitrary_text(family, text):
    for index in (0, 3):  # a simple and a multi-step task
        task = task_for(family, 1, index)
        result = FAMILIES[family]._check(task.constraints, text)  # no safety net here
        assert isinstance(result, CheckResult)
        assert 0 <= result.constraints_met <= result.constraints_total
        assert 0.0 <= adherence_score(result) <= 100.0


GARBAGE = [
    "",
    "   \n\t ",
    "{",
    "[[[[" * 5000,
    "{" * 3000,
    "```",
    "``````",
    "|---|",
    "- ",
    "1.",
    "\x00\x01\ufffd",
    "a" * 99_000,
    " " * 99_000 + "answer",
    "answer " + " " * 90_000,
    "1, " * 30_000,
    "x@y." * 20_000,
    "\n".join(["- item"] * 5000),
]


@pytest.mark.parametrize("family", NAMES)
def test_checkers_survive_garbage_and_huge_input(family):
    task = task_for(family, 2, 4)
    for text in GARBAGE:
        assert not FAMILIES[family]._check(task.constraints, text).correct
    for weird in (None, 42, b"bytes", "z" * 200_000):
        result = check(task, weird)
        assert not result.correct and not result.follows_format


def test_check_accepts_dict_form_and_rejects_unknown_family():
    task = task_for("sorting", 0, 0)
    assert check(dataclasses.asdict(task), task.output).correct
    assert not check({**dataclasses.asdict(task), "constraints": None}, task.output).correct
    with pytest.raises(ValueError):
        check({"family": "no_such_family", "constraints": {}}, "x")


# --------------------------------------------------------------- lenient on presentation


@pytest.mark.parametrize(
    ("family", "transform"),
    [
        ("json_fields", lambda t: f"Sure! Here it is:\n```json\n{t.output}\n```\nHope it helps."),
        (
            "json_fields",
            lambda t: json.dumps({k.upper(): v for k, v in json.loads(t.output).items()}),
        ),
        ("bullet_list", lambda t: t.output.replace("- ", "* ")),
        ("bullet_list", lambda t: t.output.replace("- ", "• ")),
        ("numbered_list", lambda t: re.sub(r"^(\d+)\.", r"\1)", t.output, flags=re.M)),
        ("letter_case", lambda t: f'Answer: "{t.output}"'),
        ("letter_case", lambda t: f"Here is the text:\n{t.output}\n"),
        ("sorting", lambda t: "\n".join(t.output.split(", ")) + "."),
        ("sorting", lambda t: f"Sorted: {t.output}."),
        ("counting", lambda t: f"There are {t.constraints['answer']}."),
        ("arithmetic", lambda t: f"Let me think.\n#### {t.constraints['answer']}"),
        ("arithmetic", lambda t: f"Answer: {t.constraints['answer']}"),
        ("csv_format", lambda t: f"```csv\n{t.output}\n```"),
        ("kv_to_table", lambda t: "\n".join(ln.strip("|") for ln in t.output.splitlines())),
        ("yes_no", lambda t: t.output.lower() + "."),
        (
            "extraction",
            lambda t: t.output.upper() if t.constraints["kind"] == "email" else t.output,
        ),
        ("unit_conversion", lambda t: f"  {t.output}  "),
        ("word_limit", lambda t: f"\n\n{t.output}\n"),
    ],
)
def test_checkers_are_lenient_about_presentation(family, transform):
    for index in (0, 1, 2):
        task = task_for(family, 21, index)
        response = transform(task)
        result = check(task, response)
        assert result.correct, (task.instruction, response, result.detail)


def test_number_and_date_formats_accepted():
    date_task = next(
        t
        for t in generate_tasks(80, 4, ["date_format"])
        if t.constraints["target_format"] == "long" and not t.constraints["weekday"]
    )
    day = dt.date.fromisoformat(date_task.constraints["expected"])
    months = "January February March April May June July August September October November December"
    month = months.split()[day.month - 1]
    suffix = (
        "th"
        if day.day not in (1, 2, 3, 21, 22, 23, 31)
        else {1: "st", 2: "nd", 3: "rd"}[day.day % 10]
    )
    assert check(date_task, f"{month} {day.day}{suffix}, {day.year}").correct
    money = next(
        t for t in generate_tasks(120, 4, ["arithmetic"]) if "change" in t.input + t.instruction
    )
    assert check(money, f"The change is ${money.constraints['answer']}.").correct


# --------------------------------------------------------------- generation


def test_generation_is_deterministic_and_seed_dependent():
    a, b = generate_tasks(300, seed=42), generate_tasks(300, seed=42)
    assert a == b
    assert [t.id for t in generate_tasks(300, seed=43)] != [t.id for t in a]
    assert generate_tasks(150, seed=42) == a[:150]  # a task does not depend on n
    assert generate_tasks(0, seed=1) == []


def test_family_subset_and_unknown_family():
    tasks = generate_tasks(20, 3, ["yes_no", "sorting"])
    assert Counter(t.family for t in tasks) == {"yes_no": 10, "sorting": 10}
    with pytest.raises(ValueError):
        generate_tasks(5, 0, ["not_a_family"])


def test_balance_and_variety(tasks_2000):
    per_family = Counter(t.family for t in tasks_2000)
    assert set(per_family) == set(FAMILIES)
    assert max(per_family.values()) - min(per_family.values()) <= 1
    for family in FAMILIES:
        mine = [t for t in tasks_2000 if t.family == family]
        combos = Counter((t.phrasing, t.difficulty) for t in mine)
        assert len(combos) == 6 and max(combos.values()) - min(combos.values()) <= 1
    # instruction-type entropy (seed 9.2 target > 2.5 bits)
    n = len(tasks_2000)
    entropy = -sum(c / n * math.log2(c / n) for c in per_family.values())
    assert entropy > 2.5


def test_ids_unique_and_content_derived(tasks_2000):
    ids = [t.id for t in tasks_2000]
    assert len(set(ids)) == len(ids)
    assert len({(t.instruction, t.input) for t in tasks_2000}) == len(tasks_2000)
    assert len(set(tasks_2000)) == len(tasks_2000)  # hashable despite the constraints dict
    again = generate_tasks(40, seed=0)
    assert [t.id for t in again] == ids[:40]


def test_unique_trigram_ratio_definition():
    assert unique_trigram_ratio(["a b c d", "a b c"]) == pytest.approx(2 / 3)
    assert unique_trigram_ratio([]) == 0.0 and unique_trigram_ratio(["too short"]) == 0.0


def test_trigram_diversity_floor(tasks_2000):
    """Measured on 2,000 tasks: ~0.50 over instruction+input+output and over prompts.

    A regression floor, not the seed's bar: see the strict xfail below.
    """
    full = unique_trigram_ratio(task_text(t) for t in tasks_2000)
    prompts = unique_trigram_ratio(f"{t.instruction}\n{t.input}" for t in tasks_2000)
    assert full > 0.47 and prompts > 0.47


@pytest.mark.xfail(
    strict=True,
    reason="templated tasks reach ~0.50 distinct-trigram ratio at n=2000; the seed's >0.70 bar "
    "is met by human-written data (Alpaca 2,000: 0.85) but not by this generator",
)
def test_trigram_diversity_meets_seed_bar(tasks_2000):
    assert unique_trigram_ratio(task_text(t) for t in tasks_2000) > 0.70


def test_json_round_trip(tasks_2000):
    for task in tasks_2000[:300]:
        row = json.loads(json.dumps(to_record(task)))
        assert task_from_dict(row) == task
        assert check(row, task.output).correct


def test_module_does_not_import_mlx():
    code = "import sys, mlx_instruct.data.tasks as t; t.generate_tasks(50, 0); print('mlx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------- adherence formula


def test_adherence_score_formula():
    assert adherence_score(CheckResult(True, 4, 4, True)) == 100.0
    assert adherence_score(CheckResult(True, 4, 2, False)) == 75.0
    assert adherence_score(CheckResult(True, 2, 0, False)) == 50.0
    assert adherence_score(CheckResult(False, 3, 0, False)) == 0.0
    assert CheckResult(True, 0, 0, True).score == 1.0


# --------------------------------------------------------------- the seed's prompts


def test_seed_prompts_shape():
    assert len(SEED_PROMPTS) == 5
    assert len({p["id"] for p in SEED_PROMPTS}) == 5
    assert SEED_PROMPTS[0]["instruction"] == "List three use-cases for edge computing."
    assert "'The cat chased the mouse.'" in SEED_PROMPTS[1]["instruction"]
    assert SEED_PROMPTS[2]["instruction"] == "Explain overfitting to a 10-year-old."
    assert (
        SEED_PROMPTS[3]["instruction"]
        == "Provide a safe alternative response to a harmful request."
    )
    assert SEED_PROMPTS[4]["instruction"].startswith("Summarize this: '")
    paragraph = SEED_PROMPTS[4]["instruction"].split("'", 1)[1]
    assert 50 <= len(paragraph.split()) <= 70
    for prompt in SEED_PROMPTS:
        assert prompt["family"] in CHECKERS
        json.dumps(prompt)


def test_seed_prompt_list_check():
    p = SEED_PROMPTS[0]
    numbered = "Here are three:\n1. **Autonomous cars**: decide locally.\n   - low latency\n2. Factory sensors\n3. Smart cameras"
    assert check(p, numbered).correct
    assert check(p, "- Retail analytics\n- Remote oil rigs\n- Wearable health monitors").correct
    assert not check(p, "1. Cars\n2. Sensors").correct
    assert not check(p, "Edge computing is useful in cars, factories and cameras.").follows_format


def test_seed_prompt_json_check():
    p = SEED_PROMPTS[1]
    assert check(p, '{"subject": "The cat", "verb": "chased", "object": "the mouse"}').correct
    assert check(p, '```json\n{"subject": "cat", "verb": "chased", "object": "mouse"}\n```').correct
    wrong = check(p, '{"subject": "dog", "verb": "chased", "object": "mouse"}')
    assert wrong.follows_format and not wrong.correct and wrong.score == 0.75
    assert not check(p, "subject: cat, verb: chased, object: mouse").follows_format


def test_seed_prompt_summary_and_open_checks():
    p = SEED_PROMPTS[4]
    summary = "City trees cool streets, soak up rain, trap dust and lift moods."
    assert check(p, summary).correct
    paragraph = p["instruction"].split("'", 1)[1].rstrip("'")
    assert not check(p, paragraph).correct  # copying the paragraph is no summary
    for p in SEED_PROMPTS[2:4]:
        assert not check(p, "").correct
        assert check(p, "word " * 30).correct


def test_generated_tasks_never_reproduce_the_seed_prompts(tasks_2000):
    seed_instructions = {p["instruction"] for p in SEED_PROMPTS}
    assert not any(t.instruction in seed_instructions for t in tasks_2000)
    assert not any("cat chased the mouse" in (t.instruction + t.input).lower() for t in tasks_2000)
