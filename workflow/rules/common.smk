# Shared wildcard constraints and helpers. Logic lives in mlx_instruct.study.


wildcard_constraints:
    experiment="[A-Za-z0-9][A-Za-z0-9_.-]*",
    seed="[0-9]+",
    suite="[a-z_]+",


def run_input(wildcards):
    """The trained run an evaluation needs (none for the untuned baseline)."""
    if study_lib.is_baseline(study, wildcards.experiment):
        return []
    return f"{RESULTS}/runs/{wildcards.experiment}/s{wildcards.seed}/run.json"


def run_flag(wildcards):
    if study_lib.is_baseline(study, wildcards.experiment):
        return ""
    return f"--run {RESULTS}/runs/{wildcards.experiment}/s{wildcards.seed}"


def retention_input(wildcards):
    settings = study_lib.cfg.experiment_settings(study, wildcards.experiment)
    return (
        [f"{RESULTS}/data/retention.jsonl"]
        if settings.get("retention_fraction")
        else []
    )
