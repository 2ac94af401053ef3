# Stage 5, deployment (issue 14, docs/deployment.md): what a tuned model costs to run.
# Each exported run becomes deploy/<experiment>/s<seed>/{fused,q8,q4}/ (mlx_lm model dirs);
# the quantized variants run the deployment suites, every variant is profiled, a merge of two
# adapters is evaluated like a run, and one model is decoded with a draft and served under load.
# Which models, variants and files: mlx_instruct.deploy.settings (one place). Rules that load a
# model ask the cluster for an evaluation's envelope (each loads one model and generates);
# the merge, aggregate and cards, for the analysis rules' (tables and small tensors).
from mlx_instruct.deploy import settings as deploy_lib

DEPLOY = deploy_lib.settings(
    study
)  # the Snakefile includes this file only when it is set
DEPLOY_DIR = f"{RESULTS}/deploy"


wildcard_constraints:
    variant="fused|q[0-9]+",
    merge="[A-Za-z0-9][A-Za-z0-9_.-]*",


rule export:
    input:
        model=f"{RESULTS}/models/base",
        run=run_input,
    output:
        f"{DEPLOY_DIR}/{{experiment}}/s{{seed}}/export.json",
    log:
        f"{RESULTS}/logs/deploy/export-{{experiment}}-s{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/deploy/export-{{experiment}}-s{{seed}}.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "evaluate", RESULTS),
        runtime=cluster.runtime(study, "evaluate", RESULTS),
        gpu=cluster.gpus("evaluate"),
    params:
        config=CONFIG,
        run=run_flag,
        bits=" ".join(str(bits) for bits in DEPLOY["quantize"]),
        group=DEPLOY["group_size"],
        out=lambda w: f"{DEPLOY_DIR}/{w.experiment}/s{w.seed}",
    shell:
        "python -m mlx_instruct.deploy export --config {params.config} "
        "--experiment {wildcards.experiment} --seed {wildcards.seed} --model {input.model} "
        "{params.run} --bits {params.bits} --group-size {params.group} --out {params.out} "
        "> {log} 2>&1"


rule evaluate_variant:
    input:
        model=f"{DEPLOY_DIR}/{{experiment}}/s{{seed}}/export.json",
        test=f"{RESULTS}/data/test.jsonl",
    output:
        [
            f"{DEPLOY_DIR}/{{experiment}}/s{{seed}}/{{variant}}/evals/{suite}.jsonl"
            for suite in DEPLOY["suites"]
        ],
    log:
        f"{RESULTS}/logs/deploy/evaluate-{{experiment}}-s{{seed}}-{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/deploy/evaluate-{{experiment}}-s{{seed}}-{{variant}}.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "evaluate", RESULTS),
        runtime=cluster.runtime(study, "evaluate", RESULTS),
        gpu=cluster.gpus("evaluate"),
    params:
        config=CONFIG,
        fingerprint=study_lib.eval_params(study),
        suites=" ".join(f"--suite {suite}" for suite in DEPLOY["suites"]),
        data=f"{RESULTS}/data",
        model=lambda w: f"{DEPLOY_DIR}/{w.experiment}/s{w.seed}/{w.variant}",
        flags=lambda w: deploy_lib.eval_flags(study, w.variant != deploy_lib.FUSED),
    shell:
        "python -m mlx_instruct.evaluate --config {params.config} "
        "--experiment {wildcards.experiment} --seed {wildcards.seed} --model {params.model} "
        "--data {params.data} --out {params.model}/evals {params.suites} {params.flags} "
        "> {log} 2>&1"


rule profile_variant:
    input:
        model=f"{DEPLOY_DIR}/{{experiment}}/s{{seed}}/export.json",
        test=f"{RESULTS}/data/test.jsonl",
    output:
        f"{DEPLOY_DIR}/{{experiment}}/s{{seed}}/{{variant}}/profile.jsonl",
    log:
        f"{RESULTS}/logs/deploy/profile-{{experiment}}-s{{seed}}-{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/deploy/profile-{{experiment}}-s{{seed}}-{{variant}}.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "evaluate", RESULTS),
        runtime=cluster.runtime(study, "evaluate", RESULTS),
        gpu=cluster.gpus("evaluate"),
    params:
        model=lambda w: f"{DEPLOY_DIR}/{w.experiment}/s{w.seed}/{w.variant}",
        counts=deploy_lib.profile_flags(study),
    shell:
        "python -m mlx_instruct.deploy profile --model {params.model} --prompts {input.test} "
        "{params.counts} --out {output} > {log} 2>&1"


rule merge_adapters:
    input:
        runs=lambda w: [
            f"{RESULTS}/runs/{parent}/s{deploy_lib.first_seed(study, parent)}/run.json"
            for parent in DEPLOY["merge"]["parents"]
        ],
    output:
        f"{DEPLOY_DIR}/merge/{{merge}}/run.json",
    log:
        f"{RESULTS}/logs/deploy/merge-{{merge}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/deploy/merge-{{merge}}.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "aggregate", RESULTS),
        runtime=cluster.runtime(study, "aggregate", RESULTS),
        gpu=cluster.gpus("aggregate"),
    params:
        config=CONFIG,
        parents=lambda w, input: " ".join(str(Path(run).parent) for run in input.runs),
        weights=lambda w: " ".join(str(x) for x in DEPLOY["merge"]["weights"]),
        out=lambda w: f"{DEPLOY_DIR}/merge/{w.merge}",
    shell:
        "python -m mlx_instruct.deploy merge --config {params.config} --parents {params.parents} "
        "--weights {params.weights} --out {params.out} > {log} 2>&1"


rule evaluate_merge:
    input:
        model=f"{RESULTS}/models/base",
        run=f"{DEPLOY_DIR}/merge/{{merge}}/run.json",
        test=f"{RESULTS}/data/test.jsonl",
    output:
        [
            f"{DEPLOY_DIR}/merge/{{merge}}/evals/{suite}.jsonl"
            for suite in DEPLOY["suites"]
        ],
    log:
        f"{RESULTS}/logs/deploy/evaluate-merge-{{merge}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/deploy/evaluate-merge-{{merge}}.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "evaluate", RESULTS),
        runtime=cluster.runtime(study, "evaluate", RESULTS),
        gpu=cluster.gpus("evaluate"),
    params:
        config=CONFIG,
        fingerprint=study_lib.eval_params(study),
        parent=lambda w: DEPLOY["merge"]["parents"][0],  # rows are relabelled by the aggregate
        suites=" ".join(f"--suite {suite}" for suite in DEPLOY["suites"]),
        data=f"{RESULTS}/data",
        run=lambda w: f"{DEPLOY_DIR}/merge/{w.merge}",
        flags=deploy_lib.eval_flags(study, False),
    shell:
        "python -m mlx_instruct.evaluate --config {params.config} --experiment {params.parent} "
        "--seed 0 --model {input.model} --run {params.run} --data {params.data} "
        "--out {params.run}/evals {params.suites} {params.flags} > {log} 2>&1"


rule speculative:
    input:
        export=f"{DEPLOY_DIR}/{deploy_lib.served(study, 'speculative')}/export.json",
        test=f"{RESULTS}/data/test.jsonl",
    output:
        f"{DEPLOY_DIR}/speculative.jsonl",
    log:
        f"{RESULTS}/logs/deploy/speculative.log",
    benchmark:
        f"{RESULTS}/benchmarks/deploy/speculative.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "evaluate", RESULTS),
        runtime=cluster.runtime(study, "evaluate", RESULTS),
        gpu=cluster.gpus("evaluate"),
    params:
        model=f"{DEPLOY_DIR}/{deploy_lib.served(study, 'speculative')}/fused",
        draft=f"{DEPLOY_DIR}/{deploy_lib.served(study, 'speculative')}/q{DEPLOY['speculative']['draft_bits']}",
        n=DEPLOY["speculative"]["n"],
        max_tokens=DEPLOY["speculative"]["max_tokens"],
        k=" ".join(str(k) for k in DEPLOY["speculative"]["num_draft"]),
    shell:
        "python -m mlx_instruct.deploy speculative --model {params.model} --draft {params.draft} "
        "--prompts {input.test} --n {params.n} --max-tokens {params.max_tokens} "
        "--num-draft {params.k} --out {output} > {log} 2>&1"


rule loadtest:
    input:
        export=f"{DEPLOY_DIR}/{deploy_lib.served(study, 'loadtest')}/export.json",
    output:
        f"{DEPLOY_DIR}/loadtest.jsonl",
    log:
        f"{RESULTS}/logs/deploy/loadtest.log",
    benchmark:
        f"{RESULTS}/benchmarks/deploy/loadtest.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "evaluate", RESULTS),
        runtime=cluster.runtime(study, "evaluate", RESULTS),
        gpu=cluster.gpus("evaluate"),
    params:
        model=f"{DEPLOY_DIR}/{deploy_lib.served(study, 'loadtest')}/fused",
        levels=" ".join(str(c) for c in DEPLOY["loadtest"]["concurrency"]),
        requests=DEPLOY["loadtest"]["requests"],
        max_tokens=DEPLOY["loadtest"]["max_tokens"],
        timeout=DEPLOY["loadtest"]["timeout_s"],
        # the over-context probe exceeds the length the study tuned for: a prompt over the
        # model's own window (32k for Mistral) held the CPU server past every timeout (smoke)
        context=study["data"].get("max_seq_len", 1024),
    shell:
        "python -m mlx_instruct.deploy loadtest --model {params.model} "
        "--concurrency {params.levels} --requests {params.requests} "
        "--max-tokens {params.max_tokens} --timeout {params.timeout} "
        "--max-context {params.context} --out {output} > {log} 2>&1"


rule deploy_aggregate:
    input:
        stage=[
            f"{RESULTS}/{path}"
            for path in deploy_lib.targets(study)
            if not path.endswith("README.md")
        ],
        table=f"{RESULTS}/results.parquet",
    output:
        table=f"{RESULTS}/{deploy_lib.DEPLOY_TABLE}",
        summary=f"{RESULTS}/{deploy_lib.DEPLOY_SUMMARY}",
    log:
        f"{RESULTS}/logs/deploy/aggregate.log",
    benchmark:
        f"{RESULTS}/benchmarks/deploy/aggregate.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "aggregate", RESULTS),
        runtime=cluster.runtime(study, "aggregate", RESULTS),
        gpu=cluster.gpus("aggregate"),
    params:
        config=CONFIG,
        results=RESULTS,
        fingerprint=study_lib.report_params(study),
    shell:
        "python -m mlx_instruct.deploy aggregate --config {params.config} "
        "--results {params.results} > {log} 2>&1"


rule model_card:
    input:
        export=f"{DEPLOY_DIR}/{{experiment}}/s{{seed}}/export.json",
        summary=f"{RESULTS}/summary.csv",
        deployment=f"{RESULTS}/{deploy_lib.DEPLOY_SUMMARY}",
    output:
        f"{DEPLOY_DIR}/{{experiment}}/s{{seed}}/{{variant}}/README.md",
    log:
        f"{RESULTS}/logs/deploy/card-{{experiment}}-s{{seed}}-{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/deploy/card-{{experiment}}-s{{seed}}-{{variant}}.tsv"
    resources:
        mem_mb=cluster.mem_mb(study, "report", RESULTS),
        runtime=cluster.runtime(study, "report", RESULTS),
        gpu=cluster.gpus("report"),
    params:
        results=RESULTS,
        variant=lambda w: f"{DEPLOY_DIR}/{w.experiment}/s{w.seed}/{w.variant}",
    shell:
        "python -m mlx_instruct.deploy card --variant-dir {params.variant} "
        "--results {params.results} --out {output} > {log} 2>&1"
