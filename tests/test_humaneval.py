"""HumanEval: the subprocess sandbox, pass@k, problem loading and the suite (no model needed)."""

from __future__ import annotations

import gzip
import json
import time

import pytest

import mlx_instruct  # noqa: F401  (OpenBLAS before mlx)
from mlx_instruct.evaluate.context import EvalDataError, Generation
from mlx_instruct.evaluate.humaneval import (
    check_many,
    pass_at_k,
    read_problems,
    run_humaneval,
    truncate_completion,
)
from mlx_instruct.evaluate.sandbox import landlock_available, run_program


@pytest.fixture(scope="module")
def problems():
    return read_problems()


def test_infinite_loop_is_killed_within_timeout():
    start = time.perf_counter()
    result = run_program("while True:\n    pass\n", timeout_s=1.0)
    assert not result.passed and result.status == "timeout"
    assert time.perf_counter() - start < 4.0


def test_sleeping_program_times_out():
    start = time.perf_counter()
    result = run_program("import time\ntime.sleep(30)\n", timeout_s=0.5)
    assert result.status == "timeout" and time.perf_counter() - start < 4.0


def test_writes_outside_the_temp_dir_are_blocked(tmp_path):
    target = tmp_path / "escaped.txt"
    result = run_program(f"open({str(target)!r}, 'w').write('x')\n")
    assert not result.passed and "PermissionError" in result.detail
    assert not target.exists()
    # the low-level open bypasses the Python guard; Landlock (where present) still blocks it
    result = run_program(f"import _io\n_io.open({str(target)!r}, 'w').write('x')\n")
    if landlock_available():
        assert not result.passed and not target.exists()
    # its own temp dir (the working directory) is writable
    inside = run_program("open('ok.txt', 'w').write('x')\nassert open('ok.txt').read() == 'x'\n")
    assert inside.passed


def test_exit_and_memory_and_destructive_calls_fail():
    assert not run_program("import sys\nsys.exit(0)\n").passed  # tests never ran
    assert not run_program("import os\nos._exit(0)\n").passed
    assert not run_program("x = bytearray(8 * 1024 ** 3)\n", memory_mb=512).passed
    assert not run_program("import os\nos.system('true')\n").passed
    assert not run_program("def f(:\n").passed
    assert run_program("assert sum(range(4)) == 6\n").passed


def test_canonical_solutions_pass_and_wrong_ones_fail(problems):
    chosen = problems[:8]
    right = check_many([(p, p["canonical_solution"]) for p in chosen])
    assert all(r.passed for r in right), [r.detail for r in right]
    wrong = check_many([(p, "    return None\n") for p in chosen[:3]] + [(chosen[0], "")])
    assert not any(r.passed for r in wrong)


def test_pass_at_k_unbiased_estimator():
    assert pass_at_k(5, [0, 1, 5], 1) == pytest.approx([0.0, 0.2, 1.0])
    assert pass_at_k(5, [0, 1, 5], 2) == pytest.approx([0.0, 0.4, 1.0])  # 1 - C(4,2)/C(5,2)
    assert pass_at_k(10, [3], 10) == pytest.approx([1.0])


def test_truncate_completion():
    text = "    return a + b\n\ndef other():\n    pass\n"
    assert truncate_completion(text) == "    return a + b\n"
    assert truncate_completion("    x = 1\nprint(x)") == "    x = 1"


def test_bad_problem_files(tmp_path):
    with pytest.raises(EvalDataError, match="missing.jsonl: HumanEval problems file not found"):
        read_problems(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl.gz"
    with gzip.open(bad, "wt") as handle:
        handle.write('{"task_id": "x"}\n')
    with pytest.raises(EvalDataError, match=r"bad.jsonl.gz:1: missing field"):
        read_problems(bad)
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n")
    with pytest.raises(EvalDataError, match=r"broken.jsonl:1: malformed JSON"):
        read_problems(broken)


class FakeContext:
    """What the suite uses of EvalContext: generate + record_generation."""

    def __init__(self, completions):
        self.completions = completions
        self.generations = []
        self.calls = []

    def generate(self, prompts, max_tokens=None, temperature=0.0, stop=None, batch_size=None):
        self.calls.append({"n": len(prompts), "temperature": temperature, "stop": stop})
        return [Generation(self.completions[i], 10, 5, "stop", 0.0) for i in range(len(prompts))]

    def record_generation(self, item_id, prompt, response, **extra):
        self.generations.append(
            {"item_id": item_id, "prompt": prompt, "response": response, **extra}
        )


def test_suite_rows_with_a_scripted_model(problems, tmp_path):
    p0, _p1 = problems[0], problems[1]
    hang = "    while True:\n        pass\n"
    # 2 problems x 3 samples: p0 right, wrong, right; p1 hangs, crashes, empty
    completions = [
        p0["canonical_solution"],
        "    return 42\n",
        p0["canonical_solution"],
        hang,
        "    raise SystemExit(0)\n",
        "",
    ]
    fake = FakeContext(completions)
    rows = run_humaneval(fake, {"n": 2, "k": [1, 2], "samples": 3, "timeout_s": 1.0})
    got = {(r["item_id"], r["metric"]): r["value"] for r in rows}
    assert got[("HumanEval/0", "pass@1")] == pytest.approx(2 / 3)
    assert got[("HumanEval/0", "pass@2")] == pytest.approx(1.0)
    assert got[("HumanEval/1", "pass@1")] == 0.0 and got[("HumanEval/1", "pass@2")] == 0.0
    assert fake.calls[0]["temperature"] > 0 and "\ndef " in fake.calls[0]["stop"]
    statuses = [g["status"] for g in fake.generations]
    assert statuses == ["passed", "failed", "passed", "timeout", "failed", "failed"]
    with pytest.raises(EvalDataError, match="samples"):
        run_humaneval(fake, {"n": 1, "k": [5], "samples": 2})
    assert json.dumps(rows)  # JSON-able
