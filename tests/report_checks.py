"""Checks of a rendered report (HTML, PDF, the HTML in headless Chromium), used by the smoke
study's end-to-end test.

The tools they need (Quarto, pdftotext/pdfinfo, Chromium and the playwright package that
drives it) are skipped with the reason on a machine that lacks them, but fail the test when
$CI is set: CI installs them (.ci/run), so a render check can never be skipped silently.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mlx_instruct.analysis import knit

PAPER = Path(__file__).resolve().parents[1] / "paper"
IMG = re.compile(r"<img\b[^>]*\bsrc=\"([^\"]+)\"")
UNRESOLVED = re.compile(r"\?@(?:fig|tbl|sec)-[\w-]+")
CITES = re.compile(r"data-cites=\"([^\"]+)\"")
# The headline table (tbl-adherence) as its caption starts; the PDF must carry it.
HEADLINE = "Instruction adherence: mean"


def need(tool: str, hint: str) -> str:
    """The tool's path; skip without it, but fail under CI."""
    found = shutil.which(tool) or (
        os.environ.get("QUARTO_PATH")
        if tool == "quarto" and os.environ.get("QUARTO_PATH")
        else None
    )
    if found:
        return found
    message = f"`{tool}` not found: {hint}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must run this check: .ci/run installs it)")
    pytest.skip(message)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return need("chromium", "apt-get install chromium")


def labels(qmd: Path = PAPER / "report.qmd") -> dict[str, list[str]]:
    """The paper's cross-reference labels by kind (fig, tbl, sec), from the source, and
    `toc`: the top-level sections the table of contents lists (appendices are not)."""
    doc = knit.parse(qmd)
    found = {cell.label for cell in doc.cells if cell.label}
    found |= set(re.findall(r"\{#((?:sec|fig|tbl)-[\w-]+)", doc.text))
    by_kind = {k: sorted(x for x in found if x.startswith(f"{k}-")) for k in ("fig", "tbl", "sec")}
    top = re.findall(r"^# [^\n]*\{#(sec-[\w-]+)(?![^}]*\.appendix)", doc.text, re.M)
    return {**by_kind, "toc": top}


def html_problems(html: Path) -> list[str]:
    """What is wrong with a rendered report.html: a missing or empty image, an unresolved
    cross-reference or citation, a figure/table/section of the source that is absent."""
    text = html.read_text(encoding="utf-8")
    problems = []
    images = IMG.findall(text)
    for src in images:
        if src.startswith("data:"):
            payload = src.split(",", 1)[1] if "," in src else ""
            if len(base64.b64decode(payload + "==", validate=False)) < 1000:
                problems.append(f"empty embedded image {src[:60]}")
        elif not src.startswith(("http:", "https:")) and not (html.parent / src).is_file():
            problems.append(f"missing image file {src}")
    problems += [f"unresolved cross-reference {m}" for m in sorted(set(UNRESOLVED.findall(text)))]
    for keys in CITES.findall(text):
        problems += [
            f"unresolved citation {k}" for k in keys.split() if f'id="ref-{k}"' not in text
        ]
    source = labels()
    for label in source["fig"] + source["tbl"] + source["sec"]:
        if f'id="{label}"' not in text:
            problems.append(f"{label} is not in the HTML")
    figures = re.findall(r"<div id=\"fig-[\w-]+\"[^>]*>\s*<figure[\s\S]*?<img\b", text)
    if len(figures) < len(source["fig"]):
        problems.append(f"{len(figures)} figures with an image, {len(source['fig'])} in the source")
    if len(re.findall(r"<h\d[^>]*>References</h\d>", text)) != 1 or "Bibliography" in text:
        problems.append("the references must appear once, under 'References'")
    links = re.findall(r'<a href="([^"]+)"[^>]*><i class="bi bi-file-pdf"></i>([^<]*)</a>', text)
    if links != [(f"{html.stem}.pdf", "PDF")]:
        problems.append(f"'Other Formats' must link the PDF once, labelled PDF; found {links}")
    return problems


def pdf_text(pdf: Path) -> tuple[str, int]:
    """(text, page count) of a PDF, by poppler's pdftotext and pdfinfo."""
    hint = "apt-get install poppler-utils"
    text = subprocess.run(
        [need("pdftotext", hint), "-layout", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    info = subprocess.run(
        [need("pdfinfo", hint), str(pdf)], capture_output=True, text=True, check=True
    ).stdout
    return text, int(re.search(r"^Pages:\s+(\d+)", info, re.M)[1])


def browse(html: Path, screenshot: Path) -> dict:
    """Open the report from disk (file://, as a reader does) in headless Chromium; return the
    console errors, failed requests, broken images, the section ids present and visible, and
    the table of contents' visible entries. Saves a screenshot of the first screen."""
    executable = chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover
        need("playwright", "uv sync (playwright is a dev dependency)")
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url[:120]}"))
            page.goto(html.resolve().as_uri(), wait_until="load")
            page.wait_for_timeout(500)
            page.screenshot(path=str(screenshot))
            state = page.evaluate(
                """() => ({
                  broken: Array.from(document.images)
                    .filter(i => !i.complete || i.naturalWidth === 0)
                    .map(i => (i.getAttribute('src') || '').slice(0, 80)),
                  images: document.images.length,
                  sections: Array.from(document.querySelectorAll('section[id^="sec-"]'))
                    .filter(s => s.getClientRects().length > 0).map(s => s.id),
                  toc: Array.from(document.querySelectorAll('#TOC a'))
                    .filter(a => a.getClientRects().length > 0)
                    .map(a => a.getAttribute('href')),
                })"""
            )
        finally:
            browser.close()
    return {**state, "errors": errors}
