"""Write every figure and table of a study, each with a sidecar saying what drew it.

figures/<name>.png (+ .svg) and figures/<name>.json: the function, its input files with
their sha256, the caption, the git commit (showyourwork-style traceability); figures/index.json
lists them all. tables/<name>.csv + .md likewise, with tables/index.json.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt

from mlx_instruct import provenance
from mlx_instruct.analysis import deployment as D
from mlx_instruct.analysis import extensions as E
from mlx_instruct.analysis import figures as F
from mlx_instruct.analysis import figures_data as FD
from mlx_instruct.analysis import figures_deployment as FDep
from mlx_instruct.analysis import figures_extensions as FE
from mlx_instruct.analysis import figures_weights as W
from mlx_instruct.analysis import tables as T
from mlx_instruct.analysis import tables_data as TD
from mlx_instruct.analysis.aggregate import rank_sweep, write_csv
from mlx_instruct.analysis.report import Study, md_table
from mlx_instruct.io import write_json, write_text


@dataclass(frozen=True)
class Artifact:
    name: str
    function: Callable
    inputs: tuple[str, ...]  # files under the results folder
    caption: str
    draw: Callable[[Study], object]


FIGURES = [
    Artifact("training_curves", F.training_curves, ("training_curves.parquet",), "Training curves per experiment.", lambda s: F.training_curves(s.curves, s.order, s.baseline)),
    Artifact("rank_sweep", F.rank_sweep, ("summary.csv",), "Change vs the base against LoRA rank.", lambda s: F.rank_sweep(s.summary, rank_sweep(s.config), s.full, s.baseline)),
    Artifact("learning_vs_forgetting", F.learning_vs_forgetting, ("summary.csv",), "Adherence gain against retention change.", lambda s: F.learning_vs_forgetting(s.summary, s.order, s.baseline)),
    Artifact("adherence_by_family", F.adherence_by_family, ("summary.csv",), "Adherence per task family.", lambda s: F.adherence_by_family(s.summary, s.order, s.baseline)),
    Artifact("outcome_counts", F.outcome_counts, ("summary.csv",), "Items improved / unchanged / regressed vs the base.", lambda s: F.outcome_counts(s.summary, s.order, s.baseline)),
    Artifact("safety_drift", F.safety_drift, ("summary.csv",), "Refusal rates and safety drift.", lambda s: F.safety_drift(s.summary, s.order, s.baseline)),
    Artifact("efficiency", F.efficiency, ("results.parquet",), "Generation throughput, latency and memory.", lambda s: F.efficiency(s.results, s.order, s.baseline)),
    Artifact("delta_norms", W.layer_heatmaps, ("layer_norms.parquet",), "Per-layer, per-module update norms.", lambda s: W.layer_heatmaps(s.layer_norms, "delta_norm", s.order)),
    Artifact("grad_norms", W.layer_heatmaps, ("layer_norms.parquet",), "Per-layer, per-module gradient norms.", lambda s: W.layer_heatmaps(s.layer_norms, "grad_norm", s.order)),
    Artifact("delta_histogram", W.delta_histogram, ("delta_hist.parquet",), "Histogram of delta W entries.", lambda s: W.delta_histogram(s.table("delta_hist"), "delta", s.order)),
    Artifact("subspace_similarity", W.subspace_similarity, ("lora_subspace.parquet",), "LoRA subspace similarity between ranks.", lambda s: W.subspace_similarity(s.table("lora_subspace"))),
    Artifact("effective_rank", W.effective_rank, ("delta_ranks.parquet",), "Effective rank of delta W.", lambda s: W.effective_rank(s.table("delta_ranks"), s.order)),
    Artifact("extensions", FE.curves, ("training_curves.parquet",), "Extension arms and their controls: loss curves and throughput.", lambda s: FE.curves(s.curves, E.arms(s.config))),
    Artifact("data_map", FD.data_map, ("data/embedding_map.parquet",), "MiniLM embedding map of the training instructions.", lambda s: FD.data_map(s.table("data/embedding_map"))),
    Artifact("deployment_pareto", FDep.pareto, ("deployment.parquet", "deployment_summary.csv"), "Quality against memory per deployed model and precision.", lambda s: FDep.pareto(s.deployment, s.deployment_summary)),
    Artifact("quality_scores", FD.quality_scores, ("data/quality_scores.parquet",), "Composite data-quality score per training example.", lambda s: FD.quality_scores(s.table("data/quality_scores"))),
]  # fmt: skip

TABLES = [
    Artifact("config", T.config_table, ("config.resolved.yaml", "runs.parquet"), "Experiment configuration.", lambda s: T.config_table(s.meta, s.runs)),
    Artifact("data", T.data_table, ("data/stats.json",), "Data statistics.", lambda s: T.data_table(s.data_stats)),
    Artifact("data_quality", TD.targets_table, ("data/quality.json",), "Data quality against the plan's targets, per source and mix.", lambda s: TD.targets_table(TD.load_quality(s.dir))),
    Artifact("data_toxicity", TD.toxicity_table, ("data/quality.json",), "Toxicity screen per source.", lambda s: TD.toxicity_table(TD.load_quality(s.dir))),
    Artifact("data_composite", TD.composite_table, ("data/quality.json",), "Composite data-quality score per source and mix.", lambda s: TD.composite_table(TD.load_quality(s.dir))),
    Artifact("adherence", T.adherence_table, ("summary.csv",), "Instruction adherence.", lambda s: T.adherence_table(s.summary, s.order)),
    Artifact("adherence_by_family", T.family_table, ("summary.csv",), "Adherence per task family.", lambda s: T.family_table(s.summary, "adherence", s.order)),
    Artifact("semantic", T.estimates_table, ("summary.csv",), "Response quality.", lambda s: T.estimates_table(s.summary, "semantic", order=s.order)),
    Artifact("retention", T.retention_table, ("summary.csv",), "Capability retention.", lambda s: T.retention_table(s.summary, s.order)),
    Artifact("safety", T.safety_table, ("summary.csv",), "Safety drift.", lambda s: T.safety_table(s.summary, s.order)),
    Artifact("efficiency", T.efficiency_table, ("results.parquet", "summary.csv"), "Memory, speed and quality (the plan's section 18.2).", lambda s: T.efficiency_table(s.results, s.curves, s.runs, s.order, s.summary)),
    Artifact("cost", T.cost_table, ("results.parquet", "training_curves.parquet", "runs.parquet"), "Training and serving cost.", lambda s: T.cost_table(s.results, s.curves, s.runs, s.order)),
    Artifact("ifeval", T.ifeval_table, ("summary.csv",), "IFEval: the four official metrics.", lambda s: T.ifeval_table(s.summary, s.order)),
    Artifact("ifeval_types", T.ifeval_types_table, ("summary.csv",), "IFEval: instruction-level strict accuracy per instruction type.", lambda s: T.ifeval_types_table(s.summary, s.order, s.baseline)),
    Artifact("pairs", T.pairs_table, ("summary.csv",), "Chosen contrasts.", lambda s: T.pairs_table(s.summary, s.pairs)),
    Artifact("outcome_counts", T.counts_table, ("summary.csv",), "Items improved / unchanged / regressed.", lambda s: T.counts_table(s.summary, s.order, s.baseline)),
    Artifact("seed_variance", T.seed_variance_table, ("summary.csv",), "Training-seed variance.", lambda s: T.seed_variance_table(s.summary)),
    Artifact("subspace", T.subspace_table, ("lora_subspace.parquet",), "Subspace similarity summary.", lambda s: T.subspace_table(s.table("lora_subspace"))),
    Artifact("effective_rank", T.effective_rank_table, ("delta_ranks.parquet",), "Effective rank of delta W.", lambda s: T.effective_rank_table(s.table("delta_ranks"), s.order)),
    Artifact("extensions", E.table, ("runs.parquet", "results.parquet"), "Extension arms vs their controls (the plan's section 15).", lambda s: E.table([f for key in E.EXTENSION_KEYS for f in E.facts(s, key)])),
    Artifact("deployment", D.deployment_table, ("deployment.parquet", "deployment_summary.csv"), "Memory, speed and quality per deployed model and precision.", lambda s: D.deployment_table(s.deployment, s.deployment_summary)),
    Artifact("deployment_drift", D.drift_table, ("deployment_summary.csv",), "Quantization and merge drift, paired per item.", lambda s: D.drift_table(s.deployment_summary)),
    Artifact("serving", D.serving_table, ("deployment.parquet",), "mlx_lm.server under load and failure probes.", lambda s: D.serving_table(s.deployment)),
    Artifact("speculative", D.speculative_table, ("deployment.parquet",), "Speculative decoding with a quantized draft.", lambda s: D.speculative_table(s.deployment)),
    Artifact("qualitative", T.qualitative_grid, ("generations.parquet",), "Before/after responses to the research plan's prompts.", lambda s: T.qualitative_grid(s.table("generations"), "seed_prompts", s.order)),
]  # fmt: skip


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sidecar(study: Study, artifact: Artifact, files: list[str]) -> dict:
    return {
        "name": artifact.name,
        "function": f"{artifact.function.__module__}.{artifact.function.__qualname__}",
        "call": f"analysis.artifacts: {artifact.name}",
        "inputs": [{"path": name, "sha256": _sha256(study.dir / name)} for name in artifact.inputs],
        "caption": artifact.caption,
        "files": files,
        "study": study.name,
        "git": provenance.git_state(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def write_figures(study: Study, out: Path, formats=("png", "svg"), dpi: int = 150) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for artifact in FIGURES:
        fig = artifact.draw(study)
        files = []
        for fmt in formats:
            path = out / f"{artifact.name}.{fmt}"
            fig.savefig(path, dpi=dpi, bbox_inches="tight")
            files.append(path.name)
        plt.close(fig)
        sidecar = _sidecar(study, artifact, files)
        write_json(out / f"{artifact.name}.json", sidecar)
        entries.append(
            {
                "name": artifact.name,
                "files": files,
                "function": sidecar["function"],
                "caption": artifact.caption,
            }
        )
    index = {"study": study.name, "figures": entries}
    write_json(out / "index.json", index)
    return index


def write_tables(study: Study, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for artifact in TABLES:
        frame = artifact.draw(study)
        write_csv(frame, out / f"{artifact.name}.csv")
        write_text(out / f"{artifact.name}.md", f"{md_table(frame)}\n\n: {artifact.caption}\n")
        files = [f"{artifact.name}.csv", f"{artifact.name}.md"]
        write_json(out / f"{artifact.name}.json", _sidecar(study, artifact, files))
        entries.append(
            {"name": artifact.name, "files": files, "rows": len(frame), "caption": artifact.caption}
        )
    index = {"study": study.name, "tables": entries}
    write_json(out / "index.json", index)
    return index
