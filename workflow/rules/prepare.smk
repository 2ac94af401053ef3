# Stage 1: the base model and the instruction data.
from mlx_instruct import cluster


rule prepare_model:
    output:
        directory(f"{RESULTS}/models/base"),
    log:
        f"{RESULTS}/logs/prepare_model.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_model.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "prepare_model", RESULTS),
        runtime=cluster.runtime(study, "prepare_model", RESULTS),
        gpu=cluster.gpus("prepare_model"),
    params:
        source=study["model"]["source"],
        dtype=study["model"].get("dtype", "float32"),
    shell:
        "python -m mlx_instruct.sources prepare '{params.source}' {output} "
        "--dtype {params.dtype} > {log} 2>&1"


rule prepare_data:
    input:
        model=f"{RESULTS}/models/base",
    output:
        train=f"{RESULTS}/data/train.jsonl",
        valid=f"{RESULTS}/data/valid.jsonl",
        test=f"{RESULTS}/data/test.jsonl",
        stats=f"{RESULTS}/data/stats.json",
    log:
        f"{RESULTS}/logs/prepare_data.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_data.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "prepare_data", RESULTS),
        runtime=cluster.runtime(study, "prepare_data", RESULTS),
        gpu=cluster.gpus("prepare_data"),
    params:
        config=CONFIG,
        fingerprint=study_lib.data_params(study),
        out=f"{RESULTS}/data",
    shell:
        "python -m mlx_instruct.data prepare --config {params.config} "
        "--model {input.model} --out {params.out} > {log} 2>&1"


rule prepare_retention:
    input:
        model=f"{RESULTS}/models/base",
        train=f"{RESULTS}/data/train.jsonl",
    output:
        f"{RESULTS}/data/retention.jsonl",
    log:
        f"{RESULTS}/logs/prepare_retention.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_retention.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "prepare_retention", RESULTS),
        runtime=cluster.runtime(study, "prepare_retention", RESULTS),
        gpu=cluster.gpus("prepare_retention"),
    params:
        config=CONFIG,
        fingerprint=study_lib.retention_params(study),
    shell:
        "python -m mlx_instruct.data retention --config {params.config} "
        "--model {input.model} --out {output} > {log} 2>&1"


rule data_quality:
    # Section 9.2's framework over the training split: metrics per source and for the mix,
    # toxicity, composite scores and the MiniLM embedding map (docs/data-quality.md).
    input:
        model=f"{RESULTS}/models/base",
        train=f"{RESULTS}/data/train.jsonl",
        stats=f"{RESULTS}/data/stats.json",
    output:
        quality=f"{RESULTS}/data/quality.json",
        scores=f"{RESULTS}/data/quality_scores.parquet",
        map=f"{RESULTS}/data/embedding_map.parquet",
    log:
        f"{RESULTS}/logs/data_quality.log",
    benchmark:
        f"{RESULTS}/benchmarks/data_quality.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "data_quality", RESULTS),
        runtime=cluster.runtime(study, "data_quality", RESULTS),
        gpu=cluster.gpus("data_quality"),
    params:
        config=CONFIG,
        fingerprint=study_lib.quality_params(study),
        data=f"{RESULTS}/data",
    shell:
        "python -m mlx_instruct.data quality --config {params.config} "
        "--model {input.model} --data {params.data} > {log} 2>&1"
