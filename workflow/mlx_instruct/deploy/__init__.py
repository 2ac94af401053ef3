"""Stage 5, deployment (the plan's section 18): what a tuned model costs to run.

export       fused model (adapter merged into the base) + quantized variants, with provenance
merge        a weighted merge of two LoRA adapters of the study, evaluated like any run
speculative  decode speed-up and acceptance rate with a draft model, greedy output checked
loadtest     mlx_lm.server on 127.0.0.1 under a bounded concurrent load
card         a Hugging Face model card for an exported variant, results from summary.csv
aggregate    deployment.parquet + deployment_summary.csv (drift with intervals)
profile      size on disk, peak memory, time to first token and tokens/s at batch 1 and B
"""
