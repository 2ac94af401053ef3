"""The evaluation context: one loaded model (base + optional trained run) and what suites need.

Suites receive an `EvalContext` and call `ctx.generate(...)`, `ctx.format(...)`,
`ctx.loglikelihood(...)` and `ctx.record_generation(...)`; they never load models.
A trained run is loaded by `train.outputs.load_trained`, the one loader for every method,
so evaluation sees exactly what `mlx_lm generate --adapter-path` and the trainer see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlx.nn as nn
from mlx_lm.utils import dequantize_model

from mlx_instruct.config import ADAPTER_METHODS, data_settings, experiment_settings
from mlx_instruct.data.templates import format_prompt
from mlx_instruct.evaluate import generation as _gen
from mlx_instruct.evaluate import scoring
from mlx_instruct.evaluate.generation import Generation
from mlx_instruct.train.outputs import ADAPTER_CONFIG, load_trained

__all__ = ["EvalContext", "EvalDataError", "Generation", "load_context"]


class EvalDataError(ValueError):
    """A benchmark/data file that is missing or malformed; the message names the file."""


@dataclass
class EvalContext:
    config: dict
    experiment: str
    seed: int
    method: str
    rank: int | None
    model: nn.Module
    tokenizer: Any  # mlx_lm TokenizerWrapper
    model_dir: Path
    adapter_dir: Path | None
    data_dir: Path
    out_dir: Path
    template: str = "chat"  # "chat" | "alpaca"
    generations: list[dict] = field(default_factory=list, repr=False)

    # -- settings ---------------------------------------------------------------------------
    @property
    def generation_defaults(self) -> dict:
        """config["evaluation"]["generation"] (max_tokens, batch_size, temperature)."""
        return dict(self.config.get("evaluation", {}).get("generation", {}) or {})

    def suite_settings(self, suite: str) -> dict:
        return dict(self.config.get("evaluation", {}).get("suites", {}).get(suite, {}) or {})

    # -- model calls ------------------------------------------------------------------------
    def generate(
        self,
        prompts: list[str],
        max_tokens: int | None = None,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        batch_size: int | None = None,
        seed: int | None = None,
    ) -> list[Generation]:
        """Batched completions of already formatted prompts (greedy at temperature 0)."""
        defaults = self.generation_defaults
        return _gen.generate(
            self.model,
            self.tokenizer,
            prompts,
            max_tokens=max_tokens or defaults.get("max_tokens", _gen.DEFAULT_MAX_TOKENS),
            temperature=temperature,
            stop=stop,
            batch_size=batch_size or defaults.get("batch_size", _gen.DEFAULT_BATCH_SIZE),
            seed=self.seed if seed is None else seed,
        )

    def format(self, instruction: str, input: str = "") -> str:
        """The study's prompt for an instruction (+ optional input), ready for generate()."""
        return format_prompt(
            {"instruction": instruction, "input": input}, self.template, self.tokenizer
        )

    def loglikelihood(self, pairs: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        """Sum log p(continuation | context) per pair, and whether it is the greedy path."""
        return scoring.loglikelihood(self.model, self.tokenizer, pairs)

    def loglikelihood_rolling(self, texts: list[str]) -> list[float]:
        return scoring.rolling_loglikelihood(self.model, self.tokenizer, texts)

    def record_generation(self, item_id: str, prompt: str, response: str, **extra: Any) -> None:
        """Collect one generation; run_suite writes them to <suite>.generations.jsonl."""
        self.generations.append(
            {"item_id": str(item_id), "prompt": prompt, "response": response, **extra}
        )


# -- loading ----------------------------------------------------------------------------------


def _check_dirs(model_dir: Path, run_dir: Path | None) -> None:
    """Name a missing or wrong directory before mlx_lm fails on it with a bare traceback."""
    if not (model_dir / "config.json").is_file():
        raise EvalDataError(f"{model_dir}: not an MLX model dir (no config.json)")
    if run_dir is None:
        return
    if not run_dir.is_dir():
        raise EvalDataError(f"{run_dir}: run dir not found")
    if not (run_dir / ADAPTER_CONFIG).is_file() and not (run_dir / "config.json").is_file():
        raise EvalDataError(
            f"{run_dir}: neither {ADAPTER_CONFIG} (adapters) nor config.json (full model) found"
        )


def _load(model_dir: Path, run_dir: Path | None) -> tuple[nn.Module, Any]:
    """(model, tokenizer) in eval mode; a run's unreadable or ill-fitting files name the run."""
    _check_dirs(model_dir, run_dir)
    try:
        model, tokenizer = load_trained(model_dir, run_dir)
    except (OSError, ValueError, KeyError) as error:
        if run_dir is None:
            raise
        message = " ".join(str(error).split())
        raise EvalDataError(f"{run_dir}: cannot load the trained run ({message})") from None
    model.eval()
    return model, tokenizer


def _experiment_info(config: dict, experiment: str) -> tuple[str, int | None]:
    """(method, rank) of an experiment; the base ("none") has no rank."""
    try:
        settings = experiment_settings(config, experiment)
    except KeyError:
        return "none", None
    method = settings.get("method", "lora")
    rank = settings.get("rank") if method in ADAPTER_METHODS else None
    return method, rank


def load_context(
    config: dict,
    experiment: str,
    seed: int,
    model_dir: str | Path,
    run_dir: str | Path | None,
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    dequantize: bool = False,
) -> EvalContext:
    """Load the base model, with the run's training applied when run_dir is given.

    dequantize: compute with a quantized model's weights dequantized (mlx_lm's own
    dequantize_model): the same weights, at float speed where quantized kernels are slow
    (MLX's CPU ones: 4-8x slower than float32 for SmolLM2, docs/deployment.md).
    """
    model_dir = Path(model_dir)
    run_dir = Path(run_dir) if run_dir is not None else None
    model, tokenizer = _load(model_dir, run_dir)
    if dequantize:
        model = dequantize_model(model)
    method, rank = _experiment_info(config, experiment)
    return EvalContext(
        config=config,
        experiment=experiment,
        seed=int(seed),
        method=method,
        rank=rank,
        template=data_settings(config)["template"],
        model=model,
        tokenizer=tokenizer,
        model_dir=model_dir,
        adapter_dir=run_dir,
        data_dir=Path(data_dir),
        out_dir=Path(out_dir),
    )
