"""Where a LoRA step's backward goes (issue 13): one decoder layer's parts, forward vs backward.

    python benchmarks/layer_profile.py --model DIR [--batch 4] [--seq-len 1024] [--rank 32]
        [--steps 10] [--warmup 3] [--peak-tflops 989] [--json OUT]

`step_profile.py` found every trainer's step at 3.4-3.7x its forward on the GPU, where a LoRA
backward (input gradients only) should cost about one forward. This takes one layer of the
model's shape (mlx_lm's own block, LoRA r`--rank` on its seven projections as the trainer
puts it, random weights in the checkpoint's dtype) and times each part compiled, forward
alone and forward plus backward (gradients of a fixed random projection of the output with
respect to the input and the LoRA matrices), so the excess can be pinned to a part:
  block        the whole decoder layer (causal attention as mlx_lm's models run it);
  attention    its self-attention module (projections, rope, sdpa);
  sdpa         mx.fast.scaled_dot_product_attention alone, causal, on (q, k, v);
  sdpa-manual  the same attention written out (scores, additive causal mask, softmax, @ v);
  mlp          its gated MLP;
  linear       one frozen projection (hidden -> intermediate), input gradient only;
  lora-linear  the same projection with mlx_lm's LoRA on it;
  block-packed, sdpa-packed  the block and the fused attention under `data.packing`'s
               (B, 1, T, T) boolean block mask (train/packing.py's attention_mask) for
               examples of --segment tokens each (96: Alpaca's mean, 10.7 per 1,024-row);
  sdpa-packed-additive  the same mask given as a 0 / -inf array of the inputs' dtype.
The peer of each backward is its own forward in the same process: ratio = (fwd+bwd) / fwd;
2.0 means the backward costs one forward (matmul FLOPs: a frozen matmul's input gradient
equals its forward). TFLOP/s count the attention's score and value products unmasked (a
causal kernel does half of that work).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

PARTS = ("block", "attention", "sdpa", "sdpa-manual", "mlp", "linear", "lora-linear",
         "block-packed", "sdpa-packed", "sdpa-packed-additive")  # fmt: skip


def manual_attention(q, k, v, scale: float):
    """Causal attention spelled out, grouped-query heads repeated (MLX's own fallback's math)."""
    import mlx.core as mx

    repeats = q.shape[1] // k.shape[1]
    if repeats > 1:
        k, v = mx.repeat(k, repeats, axis=1), mx.repeat(v, repeats, axis=1)
    scores = (q * scale) @ k.swapaxes(-1, -2)
    n = q.shape[2]
    causal = mx.arange(n)[:, None] >= mx.arange(n)[None, :]
    scores = mx.where(causal, scores, mx.array(-mx.inf, scores.dtype))
    return mx.softmax(scores, axis=-1, precise=True) @ v


def parts(config: dict, batch: int, seq_len: int, rank: int, dtype, segment: int) -> dict:
    """name -> (function of its inputs, inputs, matmul FLOPs of its forward)."""
    import mlx.core as mx
    import mlx.nn as nn
    from mlx_lm.models import llama
    from mlx_lm.tuner.lora import LoRALinear

    from mlx_instruct.train.packing import attention_mask

    args = llama.ModelArgs.from_dict({**config, "num_hidden_layers": 1})
    block = llama.TransformerBlock(args)
    block.set_dtype(dtype)
    block.freeze()
    for owner, names in ((block.self_attn, ("q_proj", "k_proj", "v_proj", "o_proj")),
                         (block.mlp, ("gate_proj", "up_proj", "down_proj"))):  # fmt: skip
        for name in names:
            setattr(owner, name, LoRALinear.from_base(getattr(owner, name), r=rank, scale=0.5))
    mx.eval(block.parameters())
    hidden, inter = args.hidden_size, args.intermediate_size
    heads, kv_heads = args.num_attention_heads, args.num_key_value_heads
    head_dim = getattr(args, "head_dim", None) or hidden // heads
    tokens = batch * seq_len
    x = mx.random.normal((batch, seq_len, hidden)).astype(dtype)
    q = mx.random.normal((batch, heads, seq_len, head_dim)).astype(dtype)
    kv = [mx.random.normal((batch, kv_heads, seq_len, head_dim)).astype(dtype) for _ in "kv"]
    scale = head_dim**-0.5
    proj = 2 * tokens * hidden * (2 * heads + 2 * kv_heads) * head_dim  # q, o and k, v
    attn = 2 * 2 * batch * heads * seq_len * seq_len * head_dim  # QK^T and PV, unmasked
    mlp = 3 * 2 * tokens * hidden * inter
    linear = nn.Linear(hidden, inter, bias=False)
    linear.set_dtype(dtype)
    linear.freeze()
    lora_linear = LoRALinear.from_base(nn.Linear(hidden, inter, bias=False), r=rank, scale=0.5)
    lora_linear.set_dtype(dtype)
    lora_linear.freeze()
    lora_linear.unfreeze(keys=["lora_a", "lora_b"])
    mx.eval(linear.parameters(), lora_linear.parameters())
    sdpa = mx.fast.scaled_dot_product_attention
    segments = mx.broadcast_to(mx.arange(seq_len)[None] // segment, (batch, seq_len))
    packed = attention_mask(segments)
    additive = mx.where(packed, 0.0, -mx.inf).astype(dtype)
    mx.eval(packed, additive)
    return {
        "block": (block, lambda m, x: m(x, mask="causal"), (x,), proj + attn + mlp),
        "attention": (block.self_attn, lambda m, x: m(x, mask="causal"), (x,), proj + attn),
        "sdpa": (None, lambda q, k, v: sdpa(q, k, v, scale=scale, mask="causal"), (q, *kv), attn),
        "sdpa-manual": (None, lambda q, k, v: manual_attention(q, k, v, scale), (q, *kv), attn),
        "mlp": (block.mlp, lambda m, x: m(x), (x,), mlp),
        "linear": (linear, lambda m, x: m(x), (x,), 2 * tokens * hidden * inter),
        "lora-linear": (lora_linear, lambda m, x: m(x), (x,), 2 * tokens * hidden * inter),
        "block-packed": (block, lambda m, x: m(x, mask=packed), (x,), proj + attn + mlp),
        "sdpa-packed": (
            None,
            lambda q, k, v: sdpa(q, k, v, scale=scale, mask=packed),
            (q, *kv),
            attn,
        ),
        "sdpa-packed-additive": (
            None,
            lambda q, k, v: sdpa(q, k, v, scale=scale, mask=additive),
            (q, *kv),
            attn,
        ),
    }


def timed(fn, args, steps: int, warmup: int) -> tuple[float, float]:
    """(median seconds per synchronous call, peak GB over the calls)."""
    import mlx.core as mx

    mx.synchronize()
    mx.reset_peak_memory()
    times = []
    for _ in range(warmup + steps):
        tic = time.perf_counter()
        mx.eval(fn(*args))
        times.append(time.perf_counter() - tic)
    return statistics.median(times[warmup:]), mx.get_peak_memory() / 1e9


def forward_and_backward(module, apply, inputs):
    """(compiled forward, compiled forward+backward) of one part."""
    import mlx.core as mx

    out = apply(module, *inputs) if module is not None else apply(*inputs)
    cot = mx.random.normal(out.shape).astype(out.dtype)
    mx.eval(cot)
    if module is None:
        forward = mx.compile(lambda *a: apply(*a))
        loss = lambda *a: (apply(*a) * cot).astype(mx.float32).sum()  # noqa: E731
        backward = mx.compile(mx.value_and_grad(loss, argnums=list(range(len(inputs)))))
        return forward, backward
    forward = mx.compile(lambda *a: apply(module, *a), inputs=[module.state])

    def loss(params, *a):  # as nn.value_and_grad, plus the input's gradient
        module.update(params)
        return (apply(module, *a) * cot).astype(mx.float32).sum()

    both = mx.value_and_grad(loss, argnums=[0, 1])
    backward = mx.compile(lambda *a: both(module.trainable_parameters(), *a),
                          inputs=[module.state], outputs=[module.state])  # fmt: skip
    return forward, backward


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a model directory (its config.json)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--segment", type=int, default=96, help="packed example length")
    parser.add_argument("--dtype", default=None, help="default: the config's torch_dtype")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    unknown = sorted(set(args.parts.split(",")) - set(PARTS))
    if unknown:
        parser.error(f"--parts: unknown {', '.join(unknown)}; expected some of {','.join(PARTS)}")
    if args.segment < 1 or args.segment > args.seq_len:
        parser.error(
            f"--segment: expected 1 to --seq-len ({args.seq_len}) tokens, got {args.segment}"
        )

    import mlx.core as mx
    from machine import describe, line

    found_machine = describe()
    print(line(found_machine), flush=True)
    config_path = Path(args.model) / "config.json"
    if not config_path.is_file():
        parser.error(f"--model: no config.json in {args.model}")
    config = json.loads(config_path.read_text())
    dtype = getattr(mx, args.dtype or config.get("torch_dtype") or "bfloat16")
    table = parts(config, args.batch, args.seq_len, args.rank, dtype, args.segment)
    print(f"one layer at {args.batch} x {args.seq_len}, {dtype}, LoRA r{args.rank}", flush=True)
    found = {}
    for name in args.parts.split(","):
        module, apply, inputs, flops = table[name]
        forward, backward = forward_and_backward(module, apply, inputs)
        fwd_s, fwd_gb = timed(forward, inputs, args.steps, args.warmup)
        both_s, both_gb = timed(backward, inputs, args.steps, args.warmup)
        found[name] = {"forward_s": fwd_s, "fwd_bwd_s": both_s, "ratio": both_s / fwd_s,
                       "forward_tflops": flops / fwd_s / 1e12,
                       "backward_s": both_s - fwd_s, "forward_peak_gb": fwd_gb,
                       "fwd_bwd_peak_gb": both_gb}  # fmt: skip
        print(f"{name:>12}: forward {fwd_s * 1e3:8.2f} ms ({flops / fwd_s / 1e12:6.1f} TFLOP/s, "
              f"{flops / fwd_s / 1e12 / args.peak_tflops:.2f} of peak), fwd+bwd "
              f"{both_s * 1e3:8.2f} ms, ratio {both_s / fwd_s:.2f}, peak {both_gb:.2f} GB",
              flush=True)  # fmt: skip
    if args.json:
        from mlx_instruct.io import write_json

        write_json(args.json, {"args": vars(args), "parts": found, **found_machine})
    return 0


if __name__ == "__main__":
    sys.exit(main())
