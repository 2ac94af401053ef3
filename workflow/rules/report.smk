# Stage 5: the Quarto paper. `report` always succeeds (it renders when Quarto is installed
# and otherwise writes STATUS.md with a warning saying how to get it); `paper` demands a
# render and fails with that message when Quarto is missing. Its inputs include every file
# of the paper (report.qmd, sections, _quarto.yml, bibliography, theme) and the analysis
# code the cells import (mlx_instruct.analysis.knit.sources), so editing any of them re-renders.
# The figures are the `figures` rule's files (figures/index.json), shown, not drawn again.
from mlx_instruct import cluster
from mlx_instruct.analysis import knit as knit_lib


rule report:
    input:
        figures=f"{RESULTS}/figures/index.json",  # the report shows these files
        tables=f"{RESULTS}/tables/index.json",
        plan=plan_report_input,  # the setup section's plan table (report.plan, default on)
        paper=knit_lib.sources(Path(workflow.basedir) / "paper" / "report.qmd"),
    output:
        f"{RESULTS}/report/STATUS.md",
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "report", RESULTS),
        runtime=cluster.runtime(study, "report", RESULTS),
        gpu=cluster.gpus("report"),
    params:
        config=CONFIG,
        results=RESULTS,
    shell:
        "python -m mlx_instruct.analysis paper --config {params.config} --results {params.results} "
        "--out {params.results}/report 2>&1 | tee {log}"


rule paper:
    input:
        f"{RESULTS}/report/STATUS.md",
    log:
        f"{RESULTS}/logs/paper.log",
    resources:
        mem_mb=cluster.mem_mb(study, "paper", RESULTS),
        runtime=cluster.runtime(study, "paper", RESULTS),
        gpu=cluster.gpus("paper"),
    params:
        config=CONFIG,
        results=RESULTS,
    shell:
        "python -m mlx_instruct.analysis paper --config {params.config} --results {params.results} "
        "--out {params.results}/report --require 2>&1 | tee {log}"
