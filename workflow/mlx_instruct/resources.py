"""The vendored datasets (resources/data): where each file is and that it is the file we ship.

Why: the study must be the same on every clone, with nothing beside the repository. So every
public dataset a study reads lives in resources/data, its provenance and sha256 are in
resources/data/manifest.yaml (the one place these facts live; the README's table is
rendered from it by `python -m mlx_instruct.resources readme`), and a file is checked against
its sha256 before first use in a process: an edited or truncated copy fails loudly instead
of quietly changing the study.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from mlx_instruct.config import ROOT
from mlx_instruct.io import sha256_file, write_text

DATA_DIR = ROOT / "resources" / "data"
MANIFEST = DATA_DIR / "manifest.yaml"
README = DATA_DIR / "README.md"
TABLE_START, TABLE_END = "<!-- manifest table: start -->", "<!-- manifest table: end -->"

# What each part of a study reads from here (checked by `check_study` when a study loads).
SUITE_DATASETS = {"safety": ("advbench", "xstest"), "semantic": ("alpaca",)}
BENCHMARK_DATASETS = {  # benchmarks with a vendored copy: source "local" by default
    "truthfulqa_mc1": "truthfulqa",
    "bbh": "bbh",
    "gsm8k": "gsm8k",
    "ifeval": "ifeval",
}
EVAL_DATASETS = ("truthfulqa", "bbh", "gsm8k", "ifeval", "advbench", "xstest")  # contamination
RETENTION_DATASET = "self_instruct_seed"

__all__ = [
    "BENCHMARK_DATASETS",
    "DATA_DIR",
    "Dataset",
    "ResourceError",
    "check_study",
    "data_file",
    "datasets",
    "verify",
]


class ResourceError(ValueError):
    """A vendored file that is missing, altered or unknown; the message names the file."""


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    license: str
    source: str
    files: dict[str, dict]  # path relative to DATA_DIR -> {records, sha256}


@cache
def datasets() -> dict[str, Dataset]:
    try:
        raw = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ResourceError(f"{MANIFEST}: unreadable manifest ({error})") from None
    out = {}
    for name, spec in (raw or {}).get("datasets", {}).items():
        out[name] = Dataset(name, spec["title"], spec["license"], spec["source"], spec["files"])
    return out


@cache
def _verified(relative: str, expected: str) -> Path:
    path = DATA_DIR / relative
    restore = f"restore it with `git checkout -- resources/data/{relative}`"
    if not path.is_file():
        raise ResourceError(
            f"{path}: vendored data file not found (listed in {MANIFEST.name}); {restore}"
        )
    actual = sha256_file(path)
    if actual != expected:
        raise ResourceError(
            f"{path}: sha256 {actual[:12]}... does not match the manifest's {expected[:12]}... "
            f"(the vendored file was edited or truncated); {restore}"
        )
    return path


def data_file(dataset: str, file: str | None = None) -> Path:
    """The verified path of one vendored file (`file`: e.g. "bbh/navigate.json"; default: the
    dataset's only file)."""
    known = datasets()
    if dataset not in known:
        raise ResourceError(f"{MANIFEST}: no dataset {dataset!r} (known: {sorted(known)})")
    files = known[dataset].files
    if file is None:
        if len(files) != 1:
            raise ResourceError(f"{MANIFEST}: dataset {dataset!r} has {len(files)} files; name one")
        file = next(iter(files))
    if file not in files:
        raise ResourceError(
            f"{MANIFEST}: dataset {dataset!r} has no file {file!r} (e.g. {sorted(files)[:3]})"
        )
    return _verified(file, files[file]["sha256"])


def verify(names: list[str] | None = None) -> list[Path]:
    """Check every file of the named datasets (all when None); returns their paths."""
    return [
        data_file(name, file)
        for name in names or list(datasets())
        for file in datasets()[name].files
    ]


def bbh_task(task: str) -> Path:
    """The verified bbh/<task>.json; an unknown task lists the known ones."""
    files = datasets()["bbh"].files
    if f"bbh/{task}.json" not in files:
        known = ", ".join(sorted(Path(f).stem for f in files))
        raise ResourceError(f"no BBH task {task!r} (known: {known})")
    return data_file("bbh", f"bbh/{task}.json")


def check_study(config: dict) -> None:
    """Before any compute: every vendored file the study reads exists and is unaltered, and
    every BBH task it names exists. Raises ResourceError prefixed with the config key."""

    def check(key: str, names: tuple[str, ...] | list[str]) -> None:
        try:
            verify(list(names))
        except ResourceError as error:
            raise ResourceError(f"{key}: {error}") from None

    for index, source in enumerate(config.get("data", {}).get("sources", [])):
        uri = str(source.get("uri", ""))
        if uri.startswith("resource://"):
            name = uri.removeprefix("resource://")
            if name not in datasets():
                raise ResourceError(
                    f"data.sources[{index}].uri: no vendored dataset {name!r} "
                    f"(known: {', '.join(datasets())})"
                )
            check(f"data.sources[{index}].uri", [name])
    suites = config.get("evaluation", {}).get("suites", {}) or {}
    for suite, names in SUITE_DATASETS.items():  # first: the most specific key names a fault
        if suite in suites:
            check(f"evaluation.suites.{suite}", names)
    if config.get("data", {}).get("retention"):
        check("data.retention", [RETENTION_DATASET])
    check("data (the contamination check reads every evaluation set)", EVAL_DATASETS)
    bbh = ((suites.get("benchmarks") or {}).get("bbh") or {}).get("tasks") or []
    for index, task in enumerate(bbh):
        try:
            bbh_task(task)
        except ResourceError as error:
            raise ResourceError(
                f"evaluation.suites.benchmarks.bbh.tasks[{index}]: {error}"
            ) from None


def readme_table() -> str:
    lines = [
        "| dataset | files | records | license | source (repo @ commit : path) | sha256 |",
        "|---|---|---|---|---|---|",
    ]
    for d in datasets().values():
        records = sum(f["records"] for f in d.files.values())
        if len(d.files) == 1:
            ((path, info),) = d.files.items()
            digest = f"`{info['sha256']}`"
            files = f"`{path}`"
        else:
            digest = f"per file in `{MANIFEST.name}`"
            files = f"`{Path(next(iter(d.files))).parent}/` ({len(d.files)} files)"
        lines.append(f"| {d.title} | {files} | {records} | {d.license} | {d.source} | {digest} |")
    return "\n".join(lines)


def render_readme(text: str) -> str:
    head, _, rest = text.partition(TABLE_START)
    _, _, tail = rest.partition(TABLE_END)
    return f"{head}{TABLE_START}\n{readme_table()}\n{TABLE_END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlx_instruct.resources", description=__doc__)
    parser.add_argument("command", choices=["verify", "readme"])
    args = parser.parse_args(argv)
    try:
        if args.command == "verify":
            paths = verify()
            print(f"{len(paths)} vendored files match {MANIFEST.relative_to(ROOT)}")
        else:
            write_text(README, render_readme(README.read_text(encoding="utf-8")))
            print(f"wrote the table of {README.relative_to(ROOT)}")
    except ResourceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
