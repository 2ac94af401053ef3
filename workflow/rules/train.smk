# Stage 2: one training run per (experiment, seed). run.json is written last, atomically.
from mlx_instruct import cluster


rule train:
    input:
        model=f"{RESULTS}/models/base",
        train=f"{RESULTS}/data/train.jsonl",
        valid=f"{RESULTS}/data/valid.jsonl",
        retention=retention_input,
    output:
        f"{RESULTS}/runs/{{experiment}}/s{{seed}}/run.json",
    log:
        f"{RESULTS}/logs/train/{{experiment}}-s{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{experiment}}-s{{seed}}.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "train", RESULTS),
        runtime=cluster.runtime(study, "train", RESULTS),
        gpu=cluster.gpus("train"),
    params:
        config=CONFIG,
        fingerprint=lambda w: study_lib.training_params(study, w.experiment, w.seed),
        data=f"{RESULTS}/data",
        out=lambda w: f"{RESULTS}/runs/{w.experiment}/s{w.seed}",
    shell:
        "python -m mlx_instruct.train --config {params.config} "
        "--experiment {wildcards.experiment} --seed {wildcards.seed} "
        "--model {input.model} --data {params.data} --out {params.out} --resume "
        "> {log} 2>&1"
