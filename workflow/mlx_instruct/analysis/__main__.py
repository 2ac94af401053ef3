"""`python -m mlx_instruct.analysis <command>`: the analysis stage CLIs the Snakemake rules call.

aggregate  tidy tables + bootstrap summary        (results.parquet, summary.csv, ...)
figures    every figure as PNG + SVG + sidecar     (figures/index.json)
tables     every table as CSV + Markdown           (tables/index.json)
paper      the Quarto report (HTML + PDF)          (report/STATUS.md; --require demands it)
knit       execute the report's cells into Markdown, no Quarto needed (report/report.md)
preview    the author's loop: quarto preview, re-executed when paper/ or analysis/ changes
timing     per-rule times and memory from Snakemake benchmark files
power      minimum detectable effects and seed vs item variance (power.parquet, variance.parquet)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _study(args) -> dict:
    from mlx_instruct.analysis import tidy

    return tidy.study_config(args.results, args.config)


def cmd_aggregate(args) -> int:
    from mlx_instruct.analysis import aggregate

    aggregate.run(
        args.results,
        _study(args),
        args.out or args.results,
        with_geometry=not args.no_geometry,
        geometry_budget=args.geometry_budget,
        workers=args.workers,
        log=sys.stdout,
    )
    return 0


def cmd_figures(args) -> int:
    from mlx_instruct.analysis import artifacts
    from mlx_instruct.analysis.report import Study

    study = Study(args.results, _study(args))
    index = artifacts.write_figures(
        study, Path(args.out or Path(args.results) / "figures"), formats=args.formats.split(",")
    )
    for entry in index["figures"]:
        print(f"figures: {entry['name']:<24} {entry.get('skipped') or ', '.join(entry['files'])}")
    return 0


def cmd_tables(args) -> int:
    from mlx_instruct.analysis import artifacts
    from mlx_instruct.analysis.report import Study

    study = Study(args.results, _study(args))
    index = artifacts.write_tables(study, Path(args.out or Path(args.results) / "tables"))
    for entry in index["tables"]:
        print(f"tables: {entry['name']:<24} {', '.join(entry['files'])}")
    return 0


def cmd_knit(args) -> int:
    from mlx_instruct.analysis import knit

    out = Path(args.out or Path(args.results) / "report")
    doc = knit.knit(args.qmd, out, results=args.results, config=args.config)
    print(f"knit: {doc}")
    return 0


def cmd_paper(args) -> int:
    """`paper` renders once; `preview` keeps re-rendering while the sources change."""
    from mlx_instruct.analysis import paper

    out = args.out or str(Path(args.results) / "report")
    if args.command == "preview":
        extra = ["--no-browser"] * args.no_browser + (
            ["--port", str(args.port)] if args.port else []
        )
        return paper.preview(args.results, out, config=args.config, qmd=args.qmd, quarto_args=extra)
    return paper.main(args.results, out, config=args.config, require=args.require, qmd=args.qmd)


def cmd_timing(args) -> int:
    from mlx_instruct.analysis import timing

    print(timing.render(timing.timing_table(args.results)))
    return 0


def cmd_power(args) -> int:
    import pandas as pd

    from mlx_instruct.analysis import power, tidy
    from mlx_instruct.analysis.stats import Bootstrap

    config = _study(args)
    results_file = Path(args.results) / "results.parquet"
    if not results_file.is_file():
        raise FileNotFoundError(f"{results_file}: no results table (run `aggregate` first)")
    results = pd.read_parquet(results_file)
    meta = tidy.experiments(config)
    frame = power.power_table(
        results, config, meta, power.parse_effects(args.effect), args.alpha, args.power
    )
    boot = Bootstrap.from_config(config)
    seeds = power.variance_table(results, meta, boot.resamples, boot.confidence, boot.seed)
    print(power.render(frame))
    print(power.render_variance(seeds))
    out = Path(args.out or args.results)
    for name, table in (("power", frame), ("variance", seeds)):
        print(f"power: wrote {', '.join(power.write(out, table, name))}")
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="python -m mlx_instruct.analysis",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = main.add_subparsers(dest="command", required=True)
    for name, handler, help_text in (
        ("aggregate", cmd_aggregate, "tidy tables and the bootstrap summary"),
        ("figures", cmd_figures, "every figure (PNG/SVG + JSON sidecar)"),
        ("tables", cmd_tables, "every table (CSV + Markdown)"),
        ("knit", cmd_knit, "run the report's code cells into Markdown (no Quarto needed)"),
        ("paper", cmd_paper, "render the report with Quarto (HTML + PDF)"),
        ("preview", cmd_paper, "quarto preview, re-executed when a source changes"),
        ("timing", cmd_timing, "per-rule times from Snakemake benchmark files"),
        ("power", cmd_power, "minimum detectable effects, seed vs item variance"),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--results", required=True, help="the study folder, results/<study>")
        sub.add_argument(
            "--config", help="the study config (default: <results>/config.resolved.yaml)"
        )
        sub.add_argument("--out", help="output folder (default: per command, under --results)")
        sub.set_defaults(handler=handler)
        if name == "aggregate":
            sub.add_argument(
                "--no-geometry", action="store_true", help="skip the LoRA / delta-W geometry"
            )
            sub.add_argument(
                "--workers", type=int, default=1, help="processes for the bootstrap (default 1)"
            )
            sub.add_argument(
                "--geometry-budget",
                type=float,
                default=1e9,
                help="matrix elements of a full fine-tune to SVD (evenly spaced layers; default 1e9)",
            )
        if name == "power":
            sub.add_argument(
                "--effect",
                action="append",
                help="reference effect OUTCOME=POINTS or OUTCOME=PCT%% (repeatable; "
                "default adherence=5, ifeval=5, retention=5%%)",
            )
            sub.add_argument("--alpha", type=float, default=0.05, help="two-sided level")
            sub.add_argument("--power", type=float, default=0.8, help="target power")
        if name == "figures":
            sub.add_argument("--formats", default="png,svg", help="comma-separated image formats")
        if name in ("knit", "paper", "preview"):
            sub.add_argument(
                "--qmd", default=None, help="the report source (default: paper/report.qmd)"
            )
        if name == "paper":
            sub.add_argument("--require", action="store_true", help="fail when Quarto is missing")
        if name == "preview":
            sub.add_argument("--port", type=int, help="the preview server's port")
            sub.add_argument("--no-browser", action="store_true", help="do not open a browser")
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (FileNotFoundError, ValueError) as error:
        print(f"analysis {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
