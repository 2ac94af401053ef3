"""The training loop: steps, validation, samples, checkpoints, guards, outputs.

`Trainer` owns one run. It is independent of files on disk except its output directory,
so tests drive it with in-memory models and examples; the CLI (`__main__`) wires it to a
study config, a prepared model directory and the data stage's jsonl files.
"""

from __future__ import annotations

import contextlib
import math
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from mlx_instruct.config import TrainingSettings
from mlx_instruct.io import write_json
from mlx_instruct.train import checkpoint, distributed, outputs
from mlx_instruct.train.batching import BatchPlan, Example, eval_batches
from mlx_instruct.train.curriculum import base_losses
from mlx_instruct.train.instrument import (
    NullLogs,
    Progress,
    RunLogs,
    layer_rows,
    peak_memory_gb,
)
from mlx_instruct.train.methods import MethodInfo, apply_method, grad_checkpointing
from mlx_instruct.train.samples import Sampler
from mlx_instruct.train.schedule import make_optimizer
from mlx_instruct.train.step import StepFunctions

EMA_DECAY = 0.9
MIN_STEPS_FOR_DIVERGENCE = 5


def _ppl(loss: float) -> float:
    return math.exp(min(loss, 700.0)) if math.isfinite(loss) else float("nan")


@dataclass
class LoopState:
    """What a checkpoint stores of the loop (besides weights, optimizer and data position)."""

    step: int = 0
    tokens: int = 0
    train_time_s: float = 0.0
    best_val: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    ema: float | None = None
    min_ema: float | None = None
    recent: list[dict[str, Any]] = field(default_factory=list)
    resumed_at: list[int] = field(default_factory=list)


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        settings: TrainingSettings | Mapping[str, Any],
        train: list[Example],
        valid: list[Example],
        out: str | Path,
        *,
        seed: int = 0,
        max_seq_len: int = 2048,
        packing: bool = False,
        template: str = "chat",
        label: str = "run",
        model_path: str | Path | None = None,
        fingerprint: str = "",
        progress: bool = True,
        instrument: bool = True,
        samples: bool = True,
        hooks: list[Callable[[Trainer, int], None]] | None = None,
    ):
        self.settings = s = TrainingSettings.of(settings)
        self.out = Path(out)
        self.seed = seed
        self.label = label
        self.model = model
        self.tokenizer = tokenizer
        self.model_path = Path(model_path) if model_path else None
        self.fingerprint = fingerprint
        self.hooks = list(hooks or [])
        self.group = distributed.current_group()  # data-parallel ranks, None when alone
        self.rank = distributed.rank_of(self.group)
        self.show_progress = progress and self.rank == 0
        self.accum = s.accumulation
        self.max_seq_len = max_seq_len
        self.info: MethodInfo = apply_method(model, s, seed)
        self.optimizer = make_optimizer(s)
        self.fns = StepFunctions(
            model,
            self.optimizer,
            grad_clip=s.grad_clip,
            lora_scale=self.info.scale,
            base_values=self.info.base_values,
            instrument=instrument,
            packing=packing,
        )
        self.plan, self.val_batches = self._batches(train, valid, packing)
        self.sampler = (
            Sampler(tokenizer, template, s.sample_max_tokens)
            if samples and tokenizer is not None
            else None
        )
        self.logs = RunLogs(self.out) if self.rank == 0 else NullLogs()
        self.state = LoopState()
        self.status = "running"
        self.diagnosis: dict[str, Any] | None = None
        # opened by begin(): the wall clock, the progress bar and the grad-checkpointing scope
        self._started = time.perf_counter()
        self.progress = Progress(s.steps, 0, label, enabled=False, silent=True)
        self._stack = contextlib.ExitStack()

    def _batches(
        self, train: list[Example], valid: list[Example], packing: bool
    ) -> tuple[BatchPlan, list]:
        """The training plan and the validation batches, their shapes registered for compiling.

        Validation stays unpacked (the same examples and loss whether the run packs or not).
        """
        s, seq = self.settings, self.max_seq_len
        seed, budget = zlib.crc32(f"data:{self.seed}".encode()), s.steps * self.accum
        plan = BatchPlan(train, s.micro_batch_size, seq, seed, s.data_order, budget, packing)
        val_batches = eval_batches(valid, s.micro_batch_size, s.val_batches, seq)
        self.fns.register(plan.shapes())
        self.fns.register(
            [(b.tokens.shape[1], b.n_loss_tokens) for b in val_batches], evaluation=True
        )
        return plan, val_batches

    # ---- pieces -------------------------------------------------------------------------
    def micro_seeds(self, step: int) -> list[int] | None:
        if not self.settings.dropout:
            return None
        salt = f":{self.rank}" if self.rank else ""  # each rank's rows get their own dropout
        return [zlib.crc32(f"{self.seed}:{step}:{i}{salt}".encode()) for i in range(self.accum)]

    def validate(self) -> float | None:
        if not self.val_batches:
            return None
        self.model.eval()
        total = mx.array(0.0)
        for batch in self.val_batches:
            part = distributed.shard(batch, self.group)
            if part.tokens.shape[0]:
                total = total + self.fns.eval_loss(part)
        total = distributed.all_sum(total, self.group)
        mx.eval(total)
        self.model.train()
        return total.item() / sum(b.n_loss_tokens for b in self.val_batches)

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            **asdict(self.state),
            "position": self.plan.position,
            "fingerprint": self.fingerprint,
        }

    def try_resume(self) -> bool:
        saved = checkpoint.read_state(self.out)
        if saved is None or saved.get("fingerprint") != self.fingerprint:
            return False
        checkpoint.restore(self.out, self.model, self.optimizer)
        self.plan.seek(**saved["position"])
        for f in fields(LoopState):
            setattr(self.state, f.name, saved[f.name])
        self.state.resumed_at = [*saved["resumed_at"], saved["step"]]
        self.logs.truncate(saved["step"])
        return True

    def guard(self, row: dict[str, Any]) -> str | None:
        """A reason to stop (non-finite or diverging loss), or None."""
        loss, norm = row["loss"], row["grad_norm"]
        if not math.isfinite(loss):
            return f"non-finite training loss ({loss})"
        if not math.isfinite(norm):
            return f"non-finite gradient norm ({norm})"
        s = self.state
        s.ema = loss if s.ema is None else EMA_DECAY * s.ema + (1 - EMA_DECAY) * loss
        if row["step"] >= MIN_STEPS_FOR_DIVERGENCE:
            s.min_ema = s.ema if s.min_ema is None else min(s.min_ema, s.ema)
            factor = self.settings.divergence_factor
            if s.ema > factor * s.min_ema:
                return f"loss diverging: smoothed loss {s.ema:.4f} > {factor} x its minimum {s.min_ema:.4f}"
        return None

    def diagnose(self, step: int, reason: str) -> None:
        self.status = "diverged"
        self.diagnosis = {
            "status": "diverged",
            "step": step,
            "reason": reason,
            "last_steps": self.state.recent,
            "learning_rate": self.settings.learning_rate,
            "grad_clip": self.settings.grad_clip,
            "hint": "lower learning_rate, raise warmup_fraction or batch_size, check the data",
        }
        if self.rank == 0:
            write_json(self.out / "diagnosis.json", self.diagnosis)

    # ---- the loop -----------------------------------------------------------------------
    def run(self, resume: bool = False) -> dict[str, Any]:
        """Train to the end (or an early stop / guard stop); write outputs; return a summary."""
        self.begin(resume)
        while self.status == "running" and self.state.step < self.settings.steps:
            self.train_step()
        return self.finish()

    def begin(self, resume: bool = False) -> None:
        """Resume from the checkpoint (or start clean) and log the step-0 validation."""
        self.out.mkdir(parents=True, exist_ok=True)
        self._started = time.perf_counter()
        if self.rank == 0:
            (self.out / "diagnosis.json").unlink(missing_ok=True)
        if not (resume and self.try_resume()) and self.rank == 0:
            self.logs.reset()
            checkpoint.remove(self.out)
        self.progress = Progress(
            self.settings.steps,
            self.state.step,
            self.label,
            self.show_progress,
            silent=self.rank != 0,
        )
        self.model.train()
        if self.state.step == 0 and self.plan.order == "base_loss":
            self.plan.set_difficulty(base_losses(self.fns, self.plan, self.model, self.group))
        if self.state.step == 0:
            val = self.validate()
            if val is not None:
                self.logs.write("val_log", {"step": 0, "val_loss": val, "val_ppl": _ppl(val)})
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(grad_checkpointing(self.model, self.settings.grad_checkpoint))

    def train_step(self) -> dict[str, Any]:
        """One optimizer step with its logs, validation, samples and checkpoint as due."""
        step = self.state.step + 1
        for hook in self.hooks:
            hook(self, step)
        row, split = self._optimizer_step(step)
        self.state.recent = [
            *self.state.recent[-9:],
            {k: row[k] for k in ("step", "loss", "grad_norm", "lr")},
        ]
        reason = self.guard(row)
        self.logs.write("train_log", row)
        if reason:
            self.progress.write(f"{self.label}: stopped at step {step}: {reason}")
            self.diagnose(step, reason)
            return row
        if self.fns.instrument:
            self.logs.write("layer_log", layer_rows(step, self.fns.layout, split))
        self.state.step = step
        self.progress.update(row["loss"], row["lr"], row["tokens_per_s"])
        if self._periodic(step, row["loss"]):
            self.status = "early_stopped"
        return row

    def _optimizer_step(self, step: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run update `step` on the next micro-batches: (its train_log row, its metrics)."""
        tic = time.perf_counter()
        batches = [self.plan.next() for _ in range(self.accum)]
        stats = self.fns.train_step(
            [distributed.shard(b, self.group) for b in batches],
            self.micro_seeds(step),
            group=self.group,
            n_loss_tokens=sum(b.n_loss_tokens for b in batches),
        )
        mx.eval(stats, self.model.trainable_parameters(), self.optimizer.state)
        split = self.fns.layout.split(stats.tolist())
        elapsed = time.perf_counter() - tic
        n_tokens = sum(b.n_tokens for b in batches)
        self.state.tokens += n_tokens
        self.state.train_time_s += elapsed
        row = {
            "step": step,
            "tokens": self.state.tokens,
            "loss": split["loss"],
            "ppl": _ppl(split["loss"]),
            "lr": split["lr"],
            "grad_norm": split["grad_norm"],
            "loss_tokens": sum(b.n_loss_tokens for b in batches),
            "tokens_per_s": n_tokens / elapsed,
            "step_time_s": elapsed,
            "peak_memory_gb": peak_memory_gb(),
        }
        return row, split

    def _periodic(self, step: int, train_loss: float) -> bool:
        """Validation, samples and checkpoint as due after `step`; True to stop early."""
        s = self.settings
        last = step == s.steps
        stop_early = False
        if step % s.eval_every == 0 or last:
            stop_early = self.evaluate_and_check(step, train_loss)
        due = step % s.sample_every == 0 or last or stop_early
        if self.sampler is not None and self.rank == 0 and due:
            self.logs.write("samples", self.sampler.generate(self.model, step))
        due = step % s.checkpoint_every == 0 and step < s.steps and not stop_early
        if due and self.rank == 0:
            checkpoint.save(self.out, self.model, self.optimizer, self.checkpoint_state())
        return stop_early

    def evaluate_and_check(self, step: int, train_loss: float) -> bool:
        """Validate, log, track the best; True when the plateau patience is used up."""
        val = self.validate()
        if val is None:
            return False
        self.logs.write("val_log", {"step": step, "val_loss": val, "val_ppl": _ppl(val)})
        self.progress.write(
            f"{self.label}: step {step} val_loss {val:.4f} train_loss {train_loss:.4f}"
        )
        s = self.state
        if s.best_val is None or val < s.best_val:
            s.best_val, s.best_step, s.bad_evals = val, step, 0
            return False
        s.bad_evals += 1
        patience = self.settings.early_stop_patience
        if patience > 0 and s.bad_evals >= patience:
            self.progress.write(
                f"{self.label}: early stop at step {step} (no val improvement in {patience} evals)"
            )
            return True
        return False

    def finish(self) -> dict[str, Any]:
        self._stack.close()
        self.progress.close()
        self.logs.close()
        if self.status == "running":
            self.status = "completed"
        written = self.save_outputs() if self.status != "diverged" and self.rank == 0 else []
        return {
            "status": self.status,
            "steps_done": self.state.step,
            "tokens": self.state.tokens,
            "train_time_s": self.state.train_time_s,
            "wall_time_s": time.perf_counter() - self._started,
            "tokens_per_s": self.state.tokens / max(self.state.train_time_s, 1e-9),
            "peak_memory_gb": peak_memory_gb(),
            "best_val_loss": self.state.best_val,
            "best_step": self.state.best_step,
            "final_train_loss": self.state.recent[-1]["loss"] if self.state.recent else None,
            "resumed_at": self.state.resumed_at,
            "data_order": self.plan.describe(),
            "diagnosis": self.diagnosis,
            "outputs": written,
            "trainable_params": self.info.trainable_params,
            "total_params": self.info.total_params,
        }

    def save_outputs(self) -> list[str]:
        if self.info.is_adapter:
            return outputs.save_adapters(
                self.out, self.model, self.info.adapter_config(self.settings)
            )
        if self.model_path is None:
            raise ValueError("a full fine-tune needs model_path to copy config and tokenizer from")
        written = outputs.save_full(self.out, self.model, self.model_path)
        checkpoint.remove(self.out)  # a full checkpoint is the size of the model twice over
        return written

    def dry_run(self) -> dict[str, Any]:
        """Measure one optimizer step on the longest micro-batches (seed section 7)."""
        worst = self.plan.longest()
        batches = [worst] * self.accum
        timings = []
        with grad_checkpointing(self.model, self.settings.grad_checkpoint):
            self.model.train()
            for _ in range(2):
                tic = time.perf_counter()
                stats = self.fns.train_step(batches, self.micro_seeds(1))
                mx.eval(stats, self.model.trainable_parameters(), self.optimizer.state)
                timings.append(time.perf_counter() - tic)
        mean_len = self.plan.mean_row_length()
        worst_len = float(worst.lengths.mean())
        steps = self.settings.steps
        return {
            "peak_memory_gb": peak_memory_gb(),
            "first_step_s": timings[0],
            "step_s": timings[1],
            "tokens_per_step": worst.n_tokens * self.accum,
            "tokens_per_s": worst.n_tokens * self.accum / timings[1],
            "estimated_train_s": steps * timings[1] * mean_len / worst_len,
            "worst_case_train_s": steps * timings[1],
            "loss": stats.tolist()[0],
            "trainable_params": self.info.trainable_params,
            "total_params": self.info.total_params,
        }
