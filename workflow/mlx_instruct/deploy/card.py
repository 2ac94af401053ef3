"""`python -m mlx_instruct.deploy card`: a Hugging Face model card for one exported variant.

    python -m mlx_instruct.deploy card --variant-dir results/S/deploy/E/sK/q4 \\
        --results results/S --out results/S/deploy/E/sK/q4/README.md

The front matter is built as data and dumped with yaml.safe_dump (so it always parses); the
prose lives in templates/model-card.md. Results come from the study's summary.csv only: the
source run vs the baseline, and for a quantized variant the variant vs the baseline and vs its
fused source (the run itself), each "not evaluated" where the summary has no such rows.
A variant is filed under `settings.evaluated_as(experiment, variant)` in the study's results,
the name the rules give its evaluation.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mlx_instruct.config import baseline, experiment_settings
from mlx_instruct.deploy.settings import DEPLOY_SUMMARY, FUSED, evaluated_as
from mlx_instruct.io import write_text

EXIT_USAGE = 2
TEMPLATE = Path(__file__).parent / "templates" / "model-card.md"
SETTINGS = (  # training settings shown, in this order, where the run has them
    "method", "rank", "alpha", "target_modules", "num_layers", "learning_rate", "schedule",
    "optimizer", "steps", "batch_size", "max_seq_len", "dtype", "retention_fraction", "data_order",
)  # fmt: skip


class CardError(ValueError):
    """A variant or results folder the card cannot be written from (names the file)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlx_instruct.deploy card", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--variant-dir", required=True, help="an exported variant directory")
    parser.add_argument("--results", required=True, help="the study's results folder")
    parser.add_argument("--out", required=True, help="README.md to write")
    return parser


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CardError(f"{path}: not found (is --variant-dir an exported variant?)")
    return json.loads(path.read_text())


def interval(mean: float, low: float, high: float) -> str:
    """'0.65 [0.58, 0.73]'; empty when the estimate is missing, no interval when it is."""
    if mean is None or not math.isfinite(mean):
        return ""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"{mean:.4g}"
    return f"{mean:.4g} [{low:.4g}, {high:.4g}]"


def contrast_rows(summary: pd.DataFrame, first: str, second: str) -> list[dict[str, Any]]:
    """Suite-level rows of `first` against `second` (benchmark level where a suite has none)."""
    rows = summary[(summary["experiment"] == first) & (summary["reference"] == second)]
    suites = set(rows.loc[rows["level"] == "suite", "suite"])
    rows = rows[
        (rows["level"] == "suite") | ((rows["level"] == "benchmark") & ~rows["suite"].isin(suites))
    ]
    refs = summary[(summary["experiment"] == second) & (summary["kind"] == "estimate")]
    ref_ci = {
        (r.suite, r.benchmark, r.metric): (r.mean, r.ci_low, r.ci_high) for r in refs.itertuples()
    }
    out = []
    for row in rows.itertuples():
        ref = ref_ci.get((row.suite, row.benchmark, row.metric), (row.ref_mean, None, None))
        out.append({
            "suite": row.suite, "benchmark": row.benchmark, "metric": row.metric,
            "n_items": int(row.n_items), "estimate": interval(row.mean, row.ci_low, row.ci_high),
            "reference": interval(*ref) if first != second else "",
            "diff": interval(row.diff, row.diff_low, row.diff_high), "value": float(row.mean),
            "ci": (float(row.ci_low), float(row.ci_high)),
        })  # fmt: skip
    return out


def contrasts(
    summary: pd.DataFrame, experiment: str, variant: str, base: str
) -> list[dict[str, Any]]:
    """The card's comparisons: what tuning did, and what exporting did on top of it."""
    pairs = [(experiment, base, "The source run against the base model")]
    if variant != FUSED:
        name = evaluated_as(experiment, variant)
        pairs += [
            (name, base, f"This variant ({variant}) against the base model"),
            (name, experiment, f"This variant ({variant}) against its fused source"),
        ]
    if experiment == base:
        pairs[0] = (base, base, "The base model")
    return [
        {"title": title, "first": a, "second": b, "rows": contrast_rows(summary, a, b)}
        for a, b, title in pairs
    ]


def model_index(name: str, rows: list[dict[str, Any]], confidence: float) -> list[dict[str, Any]]:
    """The front matter's eval results: this variant's own estimates with their intervals."""
    results = [
        {
            "task": {"type": "text-generation", "name": "Text Generation"},
            "dataset": {"name": f"{row['suite']}/{row['benchmark']}", "type": row["suite"]},
            "metrics": [
                {
                    "type": row["metric"],
                    "value": round(row["value"], 6),
                    "name": f"{row['metric']} ({confidence:.0%} CI {row['ci'][0]:.4g} to {row['ci'][1]:.4g})",
                }
            ],
        }
        for row in rows
    ]
    return [{"name": name, "results": results}] if results else []


def data_rows(config: dict[str, Any], settings: dict[str, Any]) -> list[dict[str, str]]:
    """The training data's sources and licenses (vendored ones from the manifest)."""
    from mlx_instruct.resources import RETENTION_DATASET, datasets

    known = datasets()
    out = []
    for source in config.get("data", {}).get("sources", []):
        uri = str(source.get("uri", ""))
        name = uri.removeprefix("resource://")
        if name in known:
            entry = known[name]
            out.append(
                {"name": name, "role": "training", "license": entry.license, "source": entry.source}
            )
        elif uri.startswith("hf://"):
            out.append(
                {
                    "name": uri.removeprefix("hf://"),
                    "role": "training",
                    "license": "see the dataset's card",
                    "source": uri,
                }
            )
        else:
            out.append(
                {
                    "name": uri,
                    "role": "training",
                    "license": "generated by this project",
                    "source": uri,
                }
            )
    if float(settings.get("retention_fraction") or 0) > 0:
        entry = known[RETENTION_DATASET]
        out.append(
            {
                "name": RETENTION_DATASET,
                "role": "retention prompts (base-model self-replay)",
                "license": entry.license,
                "source": entry.source,
            }
        )
    return out  # fmt: skip


def base_model_id(uri: str) -> str:
    """A Hub id for hf:// bases (what the Hub links), the model URI otherwise."""
    from mlx_instruct.sources import parse_model_uri

    parsed = parse_model_uri(uri)
    return parsed.location if parsed.scheme == "hf" else uri


def render(variant_dir: Path, results: Path) -> str:
    """The card's text: front matter from data, the rest from the template."""
    import jinja2

    from mlx_instruct.analysis import stats, tidy

    prov = _read_json(variant_dir / "provenance.json")
    if not (results / "summary.csv").is_file():
        raise CardError(f"{results / 'summary.csv'}: not found (run the aggregate stage first)")
    config = tidy.study_config(results)
    # the deployment aggregate's contrasts (variant vs base, vs its fused source) beside the study's
    found = [results / name for name in ("summary.csv", DEPLOY_SUMMARY)]
    summary = pd.concat([pd.read_csv(p) for p in found if p.is_file()], ignore_index=True)
    experiment, variant = prov["experiment"], prov["variant"]
    settings = prov.get("settings") or experiment_settings(config, experiment)
    base = baseline(config)
    compared = contrasts(summary, experiment, variant, base)
    own = compared[1 if variant != FUSED else 0]["rows"]  # the fused model is the run itself
    name = f"{prov['study']}/{experiment}/s{prov['seed']}/{variant}"
    trained = prov["method"] != "none"
    data = data_rows(config, settings) if trained else []
    quant = prov.get("quantization")
    confidence = stats.Bootstrap.from_config(config).confidence
    base_uri = prov["base_model"]["source"].get("uri") or prov["base_model"]["dir"]
    tags = ["mlx", "mlx-instruct", "instruction-tuning", prov["method"], variant]
    front = {
        "base_model": base_model_id(base_uri),
        "library_name": "mlx",
        "pipeline_tag": "text-generation",
        "license": "other",
        "license_name": "data-licenses",
        "data_licenses": {row["name"]: row["license"] for row in data},
        "tags": tags + ([f"{quant['bits']}-bit"] if quant else []),
        "datasets": [row["name"] for row in data],
        "model-index": model_index(name, own, confidence),
    }  # fmt: skip
    git = prov.get("git") or {}
    provenance = [
        ("run", prov.get("run")), ("run fingerprint", prov.get("run_fingerprint")),
        ("data fingerprint", prov.get("data_fingerprint")), ("config", prov["config"]["file"]),
        ("config fingerprint", prov["config"]["fingerprint"]), ("code commit", git.get("commit")),
        ("uncommitted changes", git.get("dirty")),
        *sorted((f"version: {k}", v) for k, v in prov.get("versions", {}).items()),
    ]  # fmt: skip
    methods = summary["ci_method"].dropna().unique()
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    template = environment.from_string(TEMPLATE.read_text(encoding="utf-8"))
    return template.render(
        front_matter=yaml.safe_dump(front, sort_keys=False, allow_unicode=True),
        name=name, study=prov["study"], experiment=experiment, seed=prov["seed"],
        method=prov["method"], quantization=quant, dtype=_dtype(variant_dir),
        base_uri=base_uri, variant_dir=variant_dir,
        settings=[(k, _cell(settings[k])) for k in SETTINGS if settings.get(k) is not None]
        if trained else [("method", "none")],
        merge=_merge_text(prov), data=data, confidence=f"{confidence:.0%}",
        ci_method=", ".join(methods) if len(methods) else "BCa", contrasts=compared,
        n_suites=len({r["suite"] for c in compared for r in c["rows"]}),
        max_items=max((r["n_items"] for c in compared for r in c["rows"]), default=0),
        provenance=[(k, _cell(v)) for k, v in provenance if v is not None],
    )  # fmt: skip


def _cell(value: Any) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return text.replace("|", "\\|")


def _dtype(variant_dir: Path) -> str:
    export = variant_dir.parent / "export.json"
    if export.is_file():
        variants = json.loads(export.read_text()).get("variants", {})
        return variants.get(variant_dir.name, {}).get("dtype", "the training dtype")
    return "the training dtype"


def _merge_text(prov: dict[str, Any]) -> str:
    run = prov.get("run")
    if not run or not (Path(run) / "run.json").is_file():
        return ""
    lineage = json.loads((Path(run) / "run.json").read_text()).get("merge")
    if not lineage:
        return ""
    return " + ".join(
        f"{w:g} x `{p}`" for w, p in zip(lineage["weights"], lineage["parents"], strict=True)
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        text = render(Path(args.variant_dir), Path(args.results))
    except (CardError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    write_text(args.out, text)
    print(f"card: {args.out}")
    return 0
