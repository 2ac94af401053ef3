# Stage 4: the tidy results table, bootstrap summary, figures and tables.
from mlx_instruct import cluster
from mlx_instruct.analysis import knit as knit_lib


rule aggregate:
    input:
        evals=[f"{RESULTS}/{path}" for path in study_lib.eval_targets(study)],
        runs=[f"{RESULTS}/{path}/run.json" for path in study_lib.run_dirs(study)],
        stats=f"{RESULTS}/data/stats.json",
    output:
        table=f"{RESULTS}/results.parquet",
        summary=f"{RESULTS}/summary.csv",
    log:
        f"{RESULTS}/logs/aggregate.log",
    benchmark:
        f"{RESULTS}/benchmarks/aggregate.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "aggregate", RESULTS),
        runtime=cluster.runtime(study, "aggregate", RESULTS),
        gpu=cluster.gpus("aggregate"),
    params:
        config=CONFIG,
        results=RESULTS,
        fingerprint=study_lib.report_params(study),
    shell:
        "python -m mlx_instruct.analysis aggregate --config {params.config} --results {params.results} "
        "--out {params.results} > {log} 2>&1"


rule figures:
    input:
        table=f"{RESULTS}/results.parquet",
        summary=f"{RESULTS}/summary.csv",
        quality=f"{RESULTS}/data/quality.json",  # data_quality rule (map, scores, targets)
        deployment=[f"{RESULTS}/{path}" for path in deploy_lib.tables(study)],
        # the code that draws them: editing a figure function redraws it (and the report)
        code=knit_lib.figure_sources(),
    output:
        f"{RESULTS}/figures/index.json",
    log:
        f"{RESULTS}/logs/figures.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "figures", RESULTS),
        runtime=cluster.runtime(study, "figures", RESULTS),
        gpu=cluster.gpus("figures"),
    params:
        config=CONFIG,
        results=RESULTS,
    shell:
        "python -m mlx_instruct.analysis figures --config {params.config} --results {params.results} "
        "--out {params.results}/figures > {log} 2>&1"


rule tables:
    input:
        table=f"{RESULTS}/results.parquet",
        summary=f"{RESULTS}/summary.csv",
        quality=f"{RESULTS}/data/quality.json",  # data_quality rule (map, scores, targets)
        deployment=[f"{RESULTS}/{path}" for path in deploy_lib.tables(study)],
    output:
        f"{RESULTS}/tables/index.json",
    log:
        f"{RESULTS}/logs/tables.log",
    benchmark:
        f"{RESULTS}/benchmarks/tables.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "tables", RESULTS),
        runtime=cluster.runtime(study, "tables", RESULTS),
        gpu=cluster.gpus("tables"),
    params:
        config=CONFIG,
        results=RESULTS,
    shell:
        "python -m mlx_instruct.analysis tables --config {params.config} --results {params.results} "
        "--out {params.results}/tables > {log} 2>&1"
