# Stage 3: every suite on each run (and on the untuned base), one tidy row per item.
# One job per run keeps process start-up (MLX, lm-eval imports, model load) to once per
# model; the CLI writes each suite's file as it completes and skips finished ones, so
# `snakemake --keep-incomplete` resumes an interrupted evaluation suite by suite.
from mlx_instruct import cluster


rule evaluate:
    input:
        model=f"{RESULTS}/models/base",
        test=f"{RESULTS}/data/test.jsonl",
        run=run_input,
    output:
        [
            f"{RESULTS}/evals/{{experiment}}/s{{seed}}/{suite}.jsonl"
            for suite in study_lib.suites(study)
        ],
    log:
        f"{RESULTS}/logs/evaluate/{{experiment}}-s{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{experiment}}-s{{seed}}.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "evaluate", RESULTS),
        runtime=cluster.runtime(study, "evaluate", RESULTS),
        gpu=cluster.gpus("evaluate"),
    params:
        config=CONFIG,
        fingerprint=study_lib.eval_params(study),
        run=run_flag,
        suites=" ".join(f"--suite {suite}" for suite in study_lib.suites(study)),
        data=f"{RESULTS}/data",
        out=lambda w: f"{RESULTS}/evals/{w.experiment}/s{w.seed}",
    shell:
        "python -m mlx_instruct.evaluate --config {params.config} "
        "--experiment {wildcards.experiment} --seed {wildcards.seed} "
        "--model {input.model} {params.run} --data {params.data} --out {params.out} "
        "{params.suites} > {log} 2>&1"
