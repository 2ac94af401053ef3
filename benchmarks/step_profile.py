"""What keeps a LoRA step's MFU where it is (issue 13): variants of one step on one batch.

    python benchmarks/step_profile.py --model DIR --data DIR [--micro-batch 4]
        [--max-seq-len 1024] [--steps 5] [--warmup 2] [--peak-tflops 989] [--json OUT]

The longest micro-batch of the data's plan, LoRA r32 on all seven projections as in
train_benchmark.py; each variant runs --warmup then --steps synchronous steps (mx.eval after
each), variant after variant in one process:
  forward      the compiled forward and a float32 sum of the logits (no gradient): the floor;
  mlx_lm-step  mlx_lm's trainer step (default_loss: dense bfloat16 cross-entropy;
               value_and_grad and the AdamW update in one mx.compile) on the same model;
  ours         our StepFunctions.train_step, every metric on (what the trainer runs);
  ours-bare    the same, per-layer metrics off;
  one-graph    ours-bare with grad and update compiled as one function instead of two;
  f32-head     one-graph with the loss the trainer ran before the fused kernel: the gathered
               logits cast to float32 and `cross_entropy` (the CPU's path); on the GPU the
               trainer now calls `mx.fast.cross_entropy` on the head's own dtype.
MFU = 4 x N x tokens/s / peak (N: the frozen model's parameters; LoRA's forward and input
gradient, no weight gradient of the frozen base), as in docs/training.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

from train_benchmark import load_at_weight_dtype, load_examples, our_trainer, settings

VARIANTS = ("forward", "mlx_lm-step", "ours", "ours-bare", "one-graph", "f32-head")


def variant_steps(trainer, batch, s) -> dict:
    """name -> a function running one step of that variant and returning what to evaluate."""
    import mlx.core as mx
    import mlx.nn as nn
    from mlx_lm.tuner.trainer import default_loss

    from mlx_instruct.train.schedule import make_optimizer
    from mlx_instruct.train.step import StepFunctions

    model, info = trainer.model, trainer.info

    def fns(**kwargs) -> StepFunctions:
        return StepFunctions(model, make_optimizer(s), grad_clip=s.grad_clip,
                             lora_scale=info.scale, base_values=info.base_values, **kwargs)  # fmt: skip

    forward = mx.compile(lambda x: model(x).astype(mx.float32).sum(), inputs=[model.state])
    inputs = mx.array(batch.inputs)
    tokens = mx.array(batch.tokens)
    lengths = mx.array(
        [[int(p), int(n)] for p, n in zip(batch.prompt_lens, batch.lengths, strict=True)]
    )
    peer_opt = make_optimizer(s)
    peer_opt.init(model.trainable_parameters())
    state = [model.state, peer_opt.state, mx.random.state]
    peer_grad = nn.value_and_grad(model, default_loss)

    def peer(batch_tokens, batch_lengths):
        (loss, n), grads = peer_grad(model, batch_tokens, batch_lengths)
        peer_opt.update(model, grads)
        return loss, n

    peer = mx.compile(peer, inputs=state, outputs=state)
    ours, bare = trainer.fns, fns(instrument=False)
    n_loss = mx.array(float(batch.n_loss_tokens))

    def single(loss_fn=None):
        """ours-bare's grad and update as one compiled function (optionally another loss)."""
        loose = fns(instrument=False, compile=False)
        grad = nn.value_and_grad(model, loss_fn) if loss_fn else None
        arrays = loose.arrays(batch)

        def one(*a):
            loss, grads = grad(model, *a) if grad else loose._grad_first(*a)
            return loose._update(grads, loss, n_loss, loose.base_values)

        state = [model.state, loose.optimizer.state, mx.random.state]
        compiled = mx.compile(one, inputs=state, outputs=state)
        return (lambda: compiled(*arrays)), loose.optimizer

    def trained(f, opt):
        return lambda: (f(), model.trainable_parameters(), opt.state)

    return {
        "forward": lambda: forward(inputs),
        "mlx_lm-step": trained(lambda: peer(tokens, lengths), peer_opt),
        "ours": trained(lambda: ours.train_step([batch]), ours.optimizer),
        "ours-bare": trained(lambda: bare.train_step([batch]), bare.optimizer),
        "one-graph": trained(*single()),
        "f32-head": trained(*single(float32_loss(model))),
    }


def float32_loss(model):
    """The gathered loss with the logits cast to float32 (the CPU's path, the GPU's before
    the fused kernel)."""
    import mlx.core as mx

    from mlx_instruct.train.step import cross_entropy, split_head

    body, head = split_head(model)

    def loss(model, inputs, sel, tsel, w):
        hidden = body(inputs)
        hidden = mx.take(hidden.reshape(-1, hidden.shape[-1]), sel, axis=0)
        return (cross_entropy(head(hidden).astype(mx.float32), tsel) * w).sum()

    return loss


def loss_agreement(trainer, batch) -> dict:
    """The trainer's loss and LoRA gradients against the float32 path's on one batch, from
    the same weights: the fused kernel's answer checked where it runs (the GPU)."""
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    model, fns = trainer.model, trainer.fns
    arrays = fns.arrays(batch)
    found = [
        nn.value_and_grad(model, f)(model, *arrays) for f in (fns.loss_fn, float32_loss(model))
    ]
    mx.eval(found)
    (loss, grads), (ref, ref_grads) = found
    pairs = zip(tree_flatten(grads), tree_flatten(ref_grads), strict=True)
    diff = sum(mx.sum(mx.square((g - r).astype(mx.float32))) for (_, g), (_, r) in pairs)
    size = sum(mx.sum(mx.square(r.astype(mx.float32))) for _, r in tree_flatten(ref_grads))
    return {"loss": loss.item(), "float32_loss": ref.item(),
            "loss_rel_diff": abs(loss.item() - ref.item()) / abs(ref.item()),
            "grad_rel_diff": mx.sqrt(diff / size).item()}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--max-seq-len", type=int, default=1024)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--alpha", type=float, default=16.0)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import mlx.core as mx
    from machine import describe, line

    from mlx_instruct.config import TrainingSettings

    found_machine = describe()
    print(line(found_machine), flush=True)
    model, tokenizer = load_at_weight_dtype(args)
    args.steps_run = args.steps
    args.steps = args.warmup + args.steps  # the settings' schedule length
    examples = load_examples(args, tokenizer)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = our_trainer(args, model, tokenizer, examples, tmp, instrument=True)
        batch = trainer.plan.longest()
        steps = variant_steps(trainer, batch, TrainingSettings.of(settings(args)))
        n_params = trainer.info.total_params  # mlx_lm's count: adapters left out
        print(f"batch {batch.tokens.shape[0]} x {batch.tokens.shape[1]}, {batch.n_tokens} real "
              f"tokens, {batch.n_loss_tokens} response tokens; N {n_params:,}", flush=True)  # fmt: skip
        agreement = loss_agreement(trainer, batch)
        print(f"loss vs the float32 path: {agreement}", flush=True)
        found = {}
        for name in args.variants.split(","):
            mx.synchronize()
            mx.reset_peak_memory()
            times = []
            for _ in range(args.warmup + args.steps_run):
                tic = time.perf_counter()
                mx.eval(steps[name]())
                times.append(time.perf_counter() - tic)
            median = statistics.median(times[args.warmup :])
            tps = batch.n_tokens / median
            found[name] = {"step_s": median, "times": times, "tokens_per_s": tps,
                           "mfu": 4 * n_params * tps / (args.peak_tflops * 1e12),
                           "peak_memory_gb": mx.get_peak_memory() / 1e9}  # fmt: skip
            print(f"{name:>12}: {median:.4f} s/step (range {min(times[args.warmup:]):.4f}-"
                  f"{max(times[args.warmup:]):.4f}), {tps:,.0f} tokens/s, MFU "
                  f"{found[name]['mfu']:.3f}, peak {found[name]['peak_memory_gb']:.2f} GB", flush=True)  # fmt: skip
    if args.json:
        from mlx_instruct.io import write_json

        write_json(args.json, {"args": vars(args), "variants": found, "loss_agreement": agreement,
                                **found_machine})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
