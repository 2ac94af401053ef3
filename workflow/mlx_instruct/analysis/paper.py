"""`python -m mlx_instruct.analysis paper`: the study's report as HTML and PDF (Quarto, typst).

Always executes the paper's cells first (analysis.knit -> report/report.md + figures), so a
study gets a readable Markdown report even without Quarto. When the Quarto CLI is on PATH
it then renders that Markdown to HTML and PDF (typst: no LaTeX needed). Without Quarto it
warns, writes report/NOT_RENDERED.md with the fix, and succeeds, so `snakemake --cores 1`
still finishes; `--require` (the `paper` target) fails with the same message instead.
report/STATUS.md records what happened either way. A cross-reference or citation that
Quarto cannot resolve fails the render (its warning would otherwise leave `?@fig-x` in the
paper). `preview` re-executes the report whenever a source changes, under `quarto preview`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from mlx_instruct.analysis import knit, tidy, timing
from mlx_instruct.io import write_text

MESSAGE = (
    "Quarto CLI not found: the paper was not rendered. Install Quarto from "
    "https://quarto.org/docs/get-started/ (`bash workflow/setup.sh` does it with the PyPI "
    "package quarto-cli where GitHub is reachable) and rerun `snakemake --cores 1 paper`"
)
FORMATS = {"html": ("html", "html"), "typst": ("typst", "pdf"), "pdf": ("pdf", "pdf")}
# Quarto's warnings for what the paper references but the document lacks.
UNRESOLVED = re.compile(r"Unable to resolve crossref @\S+|Citeproc: citation \S+ not found")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def find_quarto() -> str | None:
    """The Quarto executable: $QUARTO_PATH, else `quarto` on PATH (or beside this Python)."""
    explicit = os.environ.get("QUARTO_PATH")
    if explicit and Path(explicit).is_file():
        return explicit
    found = shutil.which("quarto")
    if found:
        return found
    beside = Path(sys.executable).parent / "quarto"
    return str(beside) if beside.is_file() else None


def _status(out: Path, rendered: bool, lines: list[str]) -> None:
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    head = "# Report status\n\n" + (
        f"Rendered {stamp}.\n" if rendered else f"**Not rendered** ({stamp}).\n"
    )
    write_text(out / "STATUS.md", head + "\n" + "\n".join(lines) + "\n")


def render(quarto: str, document: Path, formats: list[str]) -> list[Path]:
    """quarto render <document> --to <format> for each format; return the produced files."""
    produced = []
    for name in formats:
        to, suffix = FORMATS[name]
        started = time.perf_counter()
        done = subprocess.run(
            [quarto, "render", document.name, "--to", to],
            cwd=document.parent,
            capture_output=True,
            text=True,
        )
        log = ANSI.sub("", done.stdout + done.stderr)
        unresolved = sorted(set(UNRESOLVED.findall(log)))
        if done.returncode != 0 or unresolved:
            raise RuntimeError(
                f"quarto render --to {to} failed (exit {done.returncode}"
                + (f"; unresolved: {'; '.join(unresolved)}" if unresolved else "")
                + f"):\n{log[-4000:]}"
            )
        target = document.with_suffix(f".{suffix}")
        print(f"paper: {target} ({time.perf_counter() - started:.1f}s)")
        produced.append(target)
    return produced


def main(
    results: str, out: str, config: str | None = None, require: bool = False, qmd: str | None = None
) -> int:
    results_dir, out_dir = Path(results), Path(out)
    study = tidy.study_config(results_dir, config)
    formats = [f for f in study.get("report", {}).get("formats", ["html", "typst"]) if f in FORMATS]
    quarto = find_quarto()
    if require and quarto is None:
        print(f"ERROR: {MESSAGE}", file=sys.stderr)
        return 1
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    document = knit.knit(qmd, out_dir, results=results_dir, config=config)
    print(
        f"paper: executed the report's cells into {document} ({time.perf_counter() - started:.1f}s)"
    )
    if quarto is None:
        print(f"WARNING: {MESSAGE}", file=sys.stderr)
        note = [
            MESSAGE + ".",
            "",
            f"The report's code cells did run: `{document.name}` (with figures in `{document.stem}_files/`) is the",
            "executed report in Markdown; Quarto adds numbering, cross-references, citations, HTML and PDF.",
        ]
        write_text(out_dir / "NOT_RENDERED.md", "# Paper not rendered\n\n" + "\n".join(note) + "\n")
        _status(out_dir, False, note)
    else:
        try:
            produced = render(quarto, document, formats)
        except RuntimeError as error:
            print(f"ERROR: {error}", file=sys.stderr)
            return 1
        (out_dir / "NOT_RENDERED.md").unlink(missing_ok=True)
        version = subprocess.run(
            [quarto, "--version"], capture_output=True, text=True
        ).stdout.strip()
        _status(
            out_dir,
            True,
            [
                f"Quarto {version}: " + ", ".join(f"`{p.name}`" for p in produced),
                f"Source: `{document.name}` (executed from paper/report.qmd).",
            ],
        )
    print(timing.render(timing.timing_table(results_dir)))
    return 0


def preview(
    results: str,
    out: str,
    config: str | None = None,
    qmd: str | None = None,
    quarto_args: list[str] | None = None,
) -> int:
    """The author's loop: execute the report into `out`, run `quarto preview` on it (a local
    server that re-renders and reloads the browser when report.md changes), and re-execute
    the report whenever one of its sources (knit.sources: sections, _quarto.yml, the
    analysis code) is saved. Ctrl-C stops both."""
    quarto = find_quarto()
    if quarto is None:
        print(f"ERROR: {MESSAGE}", file=sys.stderr)
        return 1

    def stamp() -> dict:
        return {p: p.stat().st_mtime_ns for p in knit.sources(qmd) if p.is_file()}

    seen = stamp()
    try:
        document = knit.knit(qmd, out, results=results, config=config)
    except knit.KnitError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    server = subprocess.Popen(
        [quarto, "preview", document.name, "--to", "html", *(quarto_args or [])],
        cwd=document.parent,
    )
    print(f"paper: previewing {document}; edit paper/ or analysis/ and save to re-render")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stops the server too (finally)
    try:
        while server.poll() is None:
            time.sleep(1)
            now = stamp()
            if now != seen:
                seen = now
                try:
                    knit.knit(qmd, out, results=results, config=config)
                    print(f"paper: re-executed {document}")
                except knit.KnitError as error:
                    print(f"ERROR: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0
