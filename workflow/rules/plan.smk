# The plan before compute (issue 12): every trained arm's dry run on this machine (one per
# distinct training shape) and the evaluation estimate, as results/<study>/plan/plan.csv
# (+ plan.md, plan.json). Thin: it calls `mlx-instruct plan`, which finds its inputs made
# (so it runs no Snakemake of its own). An arm that does not fit exits 3: the table (fits =
# NO) and the WARNING in the log are kept for the report, and that arm's training fails loudly
# on its own; any other failure fails the rule.
from mlx_instruct import cluster


def plan_retention_input(wildcards):
    """retention.jsonl, when some arm replays retention data (its dry run reads it)."""
    if study_lib.replays_retention(study):
        return [f"{RESULTS}/data/retention.jsonl"]
    return []


def plan_report_input(wildcards):
    """The plan for the report's setup section when `report.plan` is on (the default)."""
    return (
        [f"{RESULTS}/plan/plan.json"]
        if study.get("report", {}).get("plan", True)
        else []
    )


rule plan:
    input:
        model=f"{RESULTS}/models/base",
        train=f"{RESULTS}/data/train.jsonl",
        valid=f"{RESULTS}/data/valid.jsonl",
        test=f"{RESULTS}/data/test.jsonl",
        retention=plan_retention_input,
    output:
        csv=f"{RESULTS}/plan/plan.csv",
        md=f"{RESULTS}/plan/plan.md",
        json=f"{RESULTS}/plan/plan.json",
    log:
        f"{RESULTS}/logs/plan.log",
    benchmark:
        f"{RESULTS}/benchmarks/plan.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "plan", RESULTS),
        runtime=cluster.runtime(study, "plan", RESULTS),
        gpu=cluster.gpus("plan"),
    params:
        config=CONFIG,
        results=RESULTS,
    shell:
        "python -m mlx_instruct.plan {params.config} --results {params.results} "
        "--out {output.csv} > {log} 2>&1 || [ $? -eq 3 ]"
