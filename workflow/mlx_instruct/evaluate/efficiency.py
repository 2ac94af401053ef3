"""The `efficiency` suite: generation throughput, latency and memory across batch sizes.

Why (seed 12.3 "Efficiency: tokens/sec, profile across batch sizes", 18.2 "batching trades
latency for throughput"): the same fixed prompts are generated (greedy, `max_tokens` each)
at every batch size, `repeats` times after one warm-up call. Rows (benchmark f"batch{b}"):

- tokens_per_s     per repeat (item "r<k>"): generated tokens / wall seconds of the call
                   (prefill included: what a user of a batch sees)
- peak_memory_gb   per repeat: mx.get_peak_memory() after mx.reset_peak_memory() (works on
                   every MLX backend: Metal, CUDA, CPU)
- latency_s        per request (item "r<k>-q<j>"): Generation.latency_s, so percentiles
                   can be bootstrapped over requests
- latency_p50_s / latency_p95_s / latency_p99_s  over all requests of the batch size
                   (item "all"; linear-interpolation percentiles, `percentile`)

and benchmark "model": parameters, adapter_parameters (LoRA/DoRA weights on top of the
base), size_on_disk_gb (what serving this run needs: base + adapter, or the full model),
adapter_size_gb. Quantized weights are counted as the parameters they encode.
Timings are not paired across models (the analysis treats this suite as unpaired).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from mlx_instruct.evaluate.adherence import row

SUITE = "efficiency"
DEFAULTS = {"batch_sizes": [1, 4, 16, 32], "max_tokens": 32, "repeats": 3}
PROMPTS = (
    "List three use-cases for edge computing.",
    "Explain overfitting to a 10-year-old.",
    "Write a haiku about autumn leaves.",
    "What is the capital of Australia?",
    "Give two tips for writing clear emails.",
    "Describe how a bicycle gear works.",
    "Summarize the water cycle in one sentence.",
    "Name four planets of the solar system.",
)
GB = 1024**3


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between order statistics
    (numpy's default "linear" method); NaN for no values."""
    data = sorted(float(v) for v in values)
    if not data:
        return float("nan")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(all parameters, adapter parameters); quantized weights count as 32/bits each."""
    total = adapter = 0
    quantized: dict[str, int] = {}
    wrappers: set[str] = set()  # LoRA/DoRA modules: their own arrays are the adapter
    for name, module in model.named_modules():
        bits = getattr(module, "bits", None)
        if isinstance(module, nn.QuantizedLinear | nn.QuantizedEmbedding) and bits:
            quantized[name] = int(bits)
        if type(module).__name__.startswith(("LoRA", "DoRA")):
            wrappers.add(name)
    for path, array in tree_flatten(model.parameters()):
        owner, _, leaf = path.rpartition(".")
        if owner in quantized:
            if leaf != "weight":
                continue  # scales / biases of the quantization
            size = array.size * 32 // quantized[owner]
        else:
            size = array.size
        total += size
        if owner in wrappers:
            adapter += size
    return total, adapter


def _dir_gb(path: Path | None, pattern: str = "*.safetensors") -> float:
    if path is None or not Path(path).is_dir():
        return 0.0
    return sum(p.stat().st_size for p in Path(path).glob(pattern)) / GB


def disk_sizes(ctx: Any) -> tuple[float, float]:
    """(size to serve this run, adapter size) in GB."""
    base = _dir_gb(getattr(ctx, "model_dir", None))
    run = getattr(ctx, "adapter_dir", None)
    if run is None:
        return base, 0.0
    run = Path(run)
    if (run / "config.json").is_file():  # a full fine-tune saved as its own model
        return _dir_gb(run), 0.0
    adapter = _dir_gb(run, "adapters.safetensors")
    if getattr(ctx, "method", None) == "full":  # full weights over the base
        return adapter, 0.0
    return base + adapter, adapter


def _prompts(ctx: Any, n: int) -> list[str]:
    formatted = [ctx.format(p) for p in PROMPTS]
    return [formatted[i % len(formatted)] for i in range(n)]


def efficiency_suite(ctx: Any, settings: dict) -> list[dict]:
    """Time greedy generation per batch size; rows as in the module docstring."""
    batch_sizes = [int(b) for b in settings.get("batch_sizes") or DEFAULTS["batch_sizes"]]
    max_tokens = int(settings.get("max_tokens") or DEFAULTS["max_tokens"])
    repeats = max(1, int(settings.get("repeats") or DEFAULTS["repeats"]))
    rows: list[dict] = []
    ctx.generate(_prompts(ctx, 1), max_tokens=min(4, max_tokens), batch_size=1)  # warm-up
    for b in batch_sizes:
        bench = f"batch{b}"
        prompts = _prompts(ctx, b)
        latencies: list[float] = []
        for k in range(repeats):
            mx.clear_cache()
            mx.reset_peak_memory()
            start = time.perf_counter()
            gens = ctx.generate(prompts, max_tokens=max_tokens, batch_size=b)
            wall = time.perf_counter() - start
            tokens = sum(g.generated_tokens for g in gens)
            rows.append(
                row(
                    SUITE,
                    bench,
                    f"r{k}",
                    "tokens_per_s",
                    tokens / wall if wall > 0 else float("nan"),
                )
            )
            rows.append(row(SUITE, bench, f"r{k}", "peak_memory_gb", mx.get_peak_memory() / GB))
            for j, g in enumerate(gens):
                latencies.append(g.latency_s)
                rows.append(row(SUITE, bench, f"r{k}-q{j}", "latency_s", g.latency_s))
            if k == 0:
                ctx.record_generation(
                    f"{bench}-r0-q0",
                    prompts[0],
                    gens[0].text,
                    generated_tokens=gens[0].generated_tokens,
                )
        for q in (50, 95, 99):
            rows.append(row(SUITE, bench, "all", f"latency_p{q}_s", percentile(latencies, q)))
    total, adapter = count_parameters(ctx.model)
    serve_gb, adapter_gb = disk_sizes(ctx)
    for metric, value in (
        ("parameters", total),
        ("adapter_parameters", adapter),
        ("size_on_disk_gb", serve_gb),
        ("adapter_size_gb", adapter_gb),
    ):
        rows.append(row(SUITE, "model", "model", metric, value))
    return rows
