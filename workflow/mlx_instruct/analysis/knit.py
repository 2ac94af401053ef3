"""Execute a Quarto document's Python cells and write plain Quarto Markdown.

The paper (paper/report.qmd) is an ordinary Quarto document: with Quarto and Jupyter it
renders directly. This module runs the same cells without Jupyter, in one namespace and in
document order, the way Quarto would: `#|` cell options (label, fig-cap, tbl-cap, include,
echo, output: asis, eval), `{{< include >}}` shortcodes, inline `{python} expr`. Figures
become PNG files, tables Markdown pipe tables, so the result (report.md) renders with
Quarto alone (pandoc + typst, no Python kernel), and reads as Markdown without Quarto.
The tests execute the paper through here.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import io
import os
import re
import shutil
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PAPER = Path(__file__).resolve().parents[3] / "paper"
FENCE = re.compile(r"^```\{python\}\s*$")
INCLUDE = re.compile(r"^\{\{<\s*include\s+(\S+)\s*>\}\}\s*$")
INLINE = re.compile(r"`\{python\}\s+([^`]+)`")
OPTION = re.compile(r"^#\|\s?(.*)$")
DROP_KEYS = ("jupyter", "execute", "engine", "params", "project")
# The `#|` cell options knit implements; any other is an error, so the paper cannot come to
# rely on a Quarto feature that this executor would silently drop (tests/test_paper.py).
OPTIONS = frozenset(
    {"label", "fig-cap", "fig-alt", "fig-dpi", "tbl-cap", "include", "echo", "output", "eval"}
)


class KnitError(RuntimeError):
    """A cell or inline expression failed; the message names the file, line and label."""


@dataclass
class Cell:
    source: str
    options: dict[str, Any]
    path: Path
    line: int

    @property
    def label(self) -> str | None:
        return self.options.get("label")


@dataclass
class Document:
    front: dict[str, Any]
    parts: list[str | Cell] = field(default_factory=list)

    @property
    def cells(self) -> list[Cell]:
        return [p for p in self.parts if isinstance(p, Cell)]

    @property
    def text(self) -> str:
        return "".join(p for p in self.parts if isinstance(p, str))


def _split_front(text: str) -> tuple[dict, str, int]:
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end > 0:
            front = yaml.safe_load(text[4:end]) or {}
            body_start = text.find("\n", end + 4) + 1
            return front, text[body_start:], text[:body_start].count("\n")
    return {}, text, 0


def parse(path: str | Path, _depth: int = 0) -> Document:
    """Front matter, then text and cells in order; includes are inlined (relative paths)."""
    path = Path(path)
    front, body, offset = _split_front(path.read_text(encoding="utf-8"))
    doc = Document(front if _depth == 0 else {})
    lines = body.splitlines(keepends=True)
    text: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        include = INCLUDE.match(line.strip())
        if include and _depth < 5:
            doc.parts.append("".join(text))
            text = []
            doc.parts.extend(parse(path.parent / include[1], _depth + 1).parts)
            i += 1
            continue
        if FENCE.match(line.strip()):
            start = i
            i += 1
            source: list[str] = []
            while i < len(lines) and lines[i].strip() != "```":
                source.append(lines[i])
                i += 1
            if i == len(lines):
                raise KnitError(f"{path}:{offset + start + 1}: unclosed ```{{python}} cell")
            options_text = []
            while source and OPTION.match(source[0]):
                options_text.append(OPTION.match(source.pop(0))[1])
            options = yaml.safe_load("\n".join(options_text)) or {}
            unknown = sorted(set(options) - OPTIONS)
            if unknown:
                raise KnitError(
                    f"{path}:{offset + start + 1}: cell option(s) {', '.join(unknown)} not "
                    f"supported by analysis.knit (supported: {', '.join(sorted(OPTIONS))})"
                )
            doc.parts.append("".join(text))
            text = []
            doc.parts.append(Cell("".join(source), options, path, offset + start + 1))
            i += 1
            continue
        text.append(line)
        i += 1
    doc.parts.append("".join(text))
    return doc


def run_cell(source: str, namespace: dict, filename: str) -> tuple[str, Any]:
    """exec the cell; return (stdout, value of a trailing expression)."""
    tree = ast.parse(source, filename)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    out = io.StringIO()
    value = None
    with contextlib.redirect_stdout(out):
        exec(compile(tree, filename, "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), filename, "eval"), namespace)
    return out.getvalue(), value


def _markdown(value) -> str | None:
    if value is None:
        return None
    if hasattr(value, "_repr_markdown_"):
        return value._repr_markdown_()
    if hasattr(value, "_repr_png_"):  # shown as a figure by render_cell
        return None
    import pandas as pd
    from matplotlib.figure import Figure

    from mlx_instruct.analysis.report import md_table

    if isinstance(value, pd.DataFrame):
        return md_table(value)
    if isinstance(value, Figure):
        return None
    return f"```\n{value!r}\n```"


def _inline(text: str, namespace: dict, where: str) -> str:
    def replace(match: re.Match) -> str:
        try:
            return str(eval(match[1], namespace))
        except Exception as error:
            raise KnitError(f"{where}: inline `{{python}} {match[1]}` failed: {error!r}") from error

    return INLINE.sub(replace, text)


def _attr(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace('"', '\\"')


def _figure_block(cell: Cell, files: list[str]) -> str:
    caption = cell.options.get("fig-cap", "")
    blocks = []
    for k, name in enumerate(files):
        if k == 0 and cell.label and cell.label.startswith("fig-"):
            alt = cell.options.get("fig-alt", caption)
            blocks.append(
                f'![{caption}]({name}){{#{cell.label} fig-alt="{_attr(alt)}" width="100%"}}'
            )
        else:
            blocks.append(f'![]({name}){{width="100%"}}')
    return "\n\n".join(blocks)


def render_cell(cell: Cell, namespace: dict, fig_dir: Path, rel: str, counter: list[int]) -> str:
    """Run one cell; return the Markdown its outputs become."""
    # Imported here, not at the top: the Snakefile imports this module for `sources`.
    from matplotlib.figure import Figure

    from mlx_instruct.analysis.plotting import plt  # the one place that picks the backend

    if cell.options.get("eval") is False:
        return ""
    before = set(plt.get_fignums())
    try:
        stdout, value = run_cell(cell.source, namespace, f"{cell.path.name}:{cell.line}")
    except Exception as error:
        trace = traceback.format_exc(limit=-3)
        raise KnitError(
            f"{cell.path}:{cell.line}: cell {cell.label or '(unlabelled)'} failed: {error!r}\n{trace}"
        ) from error
    files = []
    figures = [plt.figure(n) for n in plt.get_fignums() if n not in before]
    if isinstance(value, Figure) and value not in figures:
        figures.append(value)
    if hasattr(value, "_repr_png_"):  # an image already drawn (report.FigureFile)
        figures.append(value)
    for k, fig in enumerate(figures):
        counter[0] += 1
        stem = cell.label or f"cell-{counter[0]}"
        name = f"{stem}-{k + 1}.png" if len(figures) > 1 else f"{stem}.png"
        if isinstance(fig, Figure):
            fig.savefig(
                fig_dir / name, dpi=int(cell.options.get("fig-dpi", 150)), bbox_inches="tight"
            )
            plt.close(fig)
        else:
            (fig_dir / name).write_bytes(fig._repr_png_())
        files.append(f"{rel}/{name}")
    if cell.options.get("include") is False:
        return ""
    blocks = []
    if cell.options.get("echo") is True:
        blocks.append(f"```python\n{cell.source.rstrip()}\n```")
    asis = cell.options.get("output") == "asis"
    if stdout.strip() and cell.options.get("output") is not False:
        blocks.append(stdout.rstrip() if asis else f"```\n{stdout.rstrip()}\n```")
    text = _markdown(value) if cell.options.get("output") is not False else None
    if text:
        if cell.label and cell.label.startswith("tbl-"):
            text += f"\n\n: {cell.options.get('tbl-cap', '')} {{#{cell.label}}}"
        blocks.append(text)
    if files:
        blocks.append(_figure_block(cell, files))
    return "\n\n".join(blocks)


def front_matter(doc: Document, paper_dir: Path, study=None) -> dict:
    """The report's front matter: _quarto.yml's formats and bibliography, the document's own
    keys, the study's title; execution keys dropped (the output is already executed)."""
    project = {}
    if (paper_dir / "_quarto.yml").is_file():
        project = yaml.safe_load((paper_dir / "_quarto.yml").read_text()) or {}
    front = {k: v for k, v in project.items() if k not in DROP_KEYS}
    for key, value in doc.front.items():
        if key in DROP_KEYS:
            continue
        if key == "format" and isinstance(value, dict) and isinstance(front.get("format"), dict):
            merged = dict(front["format"])
            for name, spec in value.items():  # `html: default` keeps the project's settings
                if isinstance(spec, dict):
                    merged[name] = {**(merged.get(name) or {}), **spec}
                else:
                    merged.setdefault(name, spec)
            value = merged
        front[key] = value
    if study is not None:
        front["title"] = study.title
        front["subtitle"] = f"Study `{study.name}`: {front.get('subtitle', 'comparative report')}"
    front["date"] = dt.date.today().isoformat()
    return front


def _names(value) -> list[str]:
    return [value] if isinstance(value, str) else [v for v in value or [] if isinstance(v, str)]


def resources(front: dict) -> list[str]:
    """Files the front matter names (bibliography, CSL, Lua filters, HTML themes and CSS),
    which must sit beside the executed report for Quarto to find them."""
    names = [n for key in ("bibliography", "csl", "filters") for n in _names(front.get(key))]
    formats = front.get("format") if isinstance(front.get("format"), dict) else {}
    for spec in formats.values():
        if isinstance(spec, dict):
            names += _names(spec.get("theme")) + _names(spec.get("css"))
    return [n for n in names if n.endswith((".bib", ".csl", ".lua", ".scss", ".css"))]


def _imports(source: str, package: str) -> set[str]:
    """Modules of the dotted `package` that the Python source imports."""

    def inside(name: str) -> bool:
        return name == package or name.startswith(package + ".")

    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if inside(a.name)}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == package:
                found |= {f"{package}.{a.name}" for a in node.names}
            elif inside(node.module):
                found.add(node.module)
    return found


def _includes(path: Path, depth: int = 0) -> set[Path]:
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        match = INCLUDE.match(line.strip())
        if match and depth < 5:
            found.add((path.parent / match[1]).resolve())
            found |= _includes(path.parent / match[1], depth + 1)
    return found


def modules(names: set[str]) -> set[Path]:
    """The files of the `analysis` modules named (dotted, e.g. `mlx_instruct.analysis.figures`)
    and of every analysis module they import, followed transitively."""
    package, dotted = Path(__file__).resolve().parent, __package__
    todo, seen = set(names), {p for p in [package / "__init__.py"] if p.is_file()}
    while todo:
        parts = todo.pop().removeprefix(dotted).strip(".").split(".")
        path = package.joinpath(*parts).with_suffix(".py")
        if package.joinpath(*parts).is_dir():
            path = package.joinpath(*parts, "__init__.py")
        if path.is_file() and path not in seen:
            seen.add(path)
            todo |= _imports(path.read_text(encoding="utf-8"), dotted)
    return seen


def figure_sources() -> list[Path]:
    """The code that draws the figures (artifacts and what it imports): the `figures` rule's
    inputs, so editing a figure function redraws it, and through it re-renders the report."""
    return sorted(p.resolve() for p in modules({f"{__package__}.artifacts"}))


def sources(qmd: str | Path | None = None) -> list[Path]:
    """Every file the rendered report depends on: the document, its includes and every
    section, the Quarto project file and the resources it names, and the `analysis` modules
    that the cells import, followed transitively (plus the driver: knit, paper, report, the
    CLI). The `report` rule lists them as inputs, so editing any one re-renders the paper.
    The figures are not drawn here: the report shows the files the `figures` rule wrote."""
    qmd = Path(qmd).resolve() if qmd else PAPER / "report.qmd"
    dotted = __package__
    doc = parse(qmd)
    files = {qmd, *qmd.parent.glob("sections/*.qmd"), *_includes(qmd)}
    files |= {p for p in [qmd.parent / "_quarto.yml"] if p.is_file()}
    for name in resources(front_matter(doc, qmd.parent)):
        files |= {p for p in [qmd.parent / name] if p.is_file()}
    todo = {f"{dotted}.{m}" for m in ("knit", "paper", "report", "__main__")}
    for cell in doc.cells:
        todo |= _imports(cell.source, dotted)
    return sorted(p.resolve() for p in files | modules(todo))


def knit(
    qmd: str | Path | None,
    out: str | Path,
    results: str | Path | None = None,
    config: str | Path | None = None,
) -> Path:
    """Execute `qmd` (default paper/report.qmd) against a results folder into out/report.md
    (+ out/report_files/*.png and the bibliography). Returns the Markdown path."""
    qmd = Path(qmd) if qmd else PAPER / "report.qmd"
    out = Path(out).resolve()
    fig_dir = out / f"{qmd.stem}_files"
    if fig_dir.exists():
        shutil.rmtree(fig_dir)
    fig_dir.mkdir(parents=True)
    doc = parse(qmd)
    previous = {key: os.environ.get(key) for key in ("MLX_INSTRUCT_RESULTS", "MLX_INSTRUCT_CONFIG")}
    cwd = Path.cwd()
    try:
        if results is not None:
            os.environ["MLX_INSTRUCT_RESULTS"] = str(Path(results).resolve())
        if config is not None:
            os.environ["MLX_INSTRUCT_CONFIG"] = str(Path(config).resolve())
        os.chdir(qmd.parent)
        namespace: dict[str, Any] = {"__name__": "__report__"}
        pieces, counter = [], [0]
        for part in doc.parts:
            if isinstance(part, Cell):
                output = render_cell(part, namespace, fig_dir, fig_dir.name, counter)
                pieces.append(f"\n{output}\n\n" if output else "")
            else:
                pieces.append(_inline(part, namespace, str(qmd)))
        study = next((v for v in namespace.values() if type(v).__name__ == "Study"), None)
        front = front_matter(doc, qmd.parent, study)
    finally:
        os.chdir(cwd)
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    for name in resources(front):
        if (qmd.parent / name).is_file():
            shutil.copy2(qmd.parent / name, out / Path(name).name)
    body = "".join(pieces)
    body = re.sub(r"\n{3,}", "\n\n", body)
    text = (
        "---\n"
        + yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=10_000)
        + "---\n\n"
        + body.lstrip()
    )
    target = out / f"{qmd.stem}.md"
    target.write_text(text, encoding="utf-8")
    return target
