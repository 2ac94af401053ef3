# The MLX instruction-tuning study. `snakemake --cores 1` runs config.yaml;
# `snakemake --cores 1 --configfile configs/smoke.yaml` runs another (self-contained) study.
# Rules are thin: each calls one stage CLI of the mlx_instruct package (workflow/mlx_instruct).
from pathlib import Path

import mlx_instruct.study as study_lib
from mlx_instruct.deploy import settings as deploy_lib

study = study_lib.resolve_study(config, Path(workflow.basedir))
STUDY = study["study"]
RESULTS = f"{study.get('results_dir', 'results')}/{STUDY}"
CONFIG = str(study_lib.write_resolved(study))


include: "workflow/rules/common.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/analyse.smk"
include: "workflow/rules/plan.smk"
include: "workflow/rules/report.smk"


if deploy_lib.settings(study):

    include: "workflow/rules/deploy.smk"


rule all:
    default_target: True
    input:
        f"{RESULTS}/results.parquet",
        f"{RESULTS}/summary.csv",
        f"{RESULTS}/figures/index.json",
        f"{RESULTS}/tables/index.json",
        f"{RESULTS}/report/STATUS.md",
        [f"{RESULTS}/{path}" for path in deploy_lib.outputs(study)],


onsuccess:
    shell(f"python -m mlx_instruct.analysis timing --results {RESULTS} || true")
