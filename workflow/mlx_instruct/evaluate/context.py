"""The evaluation context: one loaded model (base + optional adapter) and what suites need.

Suites receive an `EvalContext` and call `ctx.generate(...)`, `ctx.format(...)`,
`ctx.loglikelihood(...)` and `ctx.record_generation(...)`; they never load models.
`swap_adapter` evaluates several adapters of one study on a single loaded base: LoRA layers
are applied once, and a new adapter with the same LoRA layout only loads its weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from mlx_instruct.evaluate import generation as _gen
from mlx_instruct.evaluate.generation import Generation

__all__ = ["EvalContext", "EvalDataError", "Generation", "load_context", "swap_adapter"]


class EvalDataError(ValueError):
    """A benchmark/data file that is missing or malformed; the message names the file."""


ALPACA_WITH_INPUT = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Output:\n"
ALPACA_NO_INPUT = "### Instruction:\n{instruction}\n\n### Output:\n"


def _local_format(instruction: str, input: str, template: str, tokenizer: Any) -> str:
    """The study's prompt format when mlx_instruct.data.templates is not available."""
    if template == "alpaca" or getattr(tokenizer, "chat_template", None) is None:
        pattern = ALPACA_WITH_INPUT if input else ALPACA_NO_INPUT
        return pattern.format(instruction=instruction.strip(), input=input.strip())
    content = instruction.strip() + (f"\n\n{input.strip()}" if input and input.strip() else "")
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )
    bos = getattr(tokenizer, "bos_token", None)
    if bos and text.startswith(bos):  # contract: prompts carry no BOS text
        text = text[len(bos) :]
    return text


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
    _adapter_layout: dict | None = field(default=None, repr=False)  # LoRA layout applied
    # when `model` is a full fine-tune: the shared base (model, tokenizer, LoRA layout on it)
    _base: tuple | None = field(default=None, repr=False)
    # base values of non-LoRA weights the current adapter replaced (hybrid: norms)
    _overridden: dict | None = field(default=None, repr=False)

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
        try:
            from mlx_instruct.data.templates import format_prompt
        except ImportError:
            return _local_format(instruction, input, self.template, self.tokenizer)
        return format_prompt(
            {"instruction": instruction, "input": input}, self.template, self.tokenizer
        )

    def loglikelihood(self, pairs: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        """Sum log p(continuation | context) per pair, and whether it is the greedy path."""
        return _gen.loglikelihood(self.model, self.tokenizer, pairs)

    def loglikelihood_rolling(self, texts: list[str]) -> list[float]:
        return _gen.rolling_loglikelihood(self.model, self.tokenizer, texts)

    def record_generation(self, item_id: str, prompt: str, response: str, **extra: Any) -> None:
        """Collect one generation; run_suite writes them to <suite>.generations.jsonl."""
        self.generations.append(
            {"item_id": str(item_id), "prompt": prompt, "response": response, **extra}
        )


# -- loading ----------------------------------------------------------------------------------


def _load_base(model_dir: Path):
    from mlx_lm.utils import load

    if not (model_dir / "config.json").is_file():
        raise EvalDataError(f"{model_dir}: not an MLX model dir (no config.json)")
    model, tokenizer = load(str(model_dir))
    model.eval()
    return model, tokenizer


def _run_kind(run_dir: Path) -> str:
    """'lora' (adapters) | 'full' (a model dir or full-weight adapters) for a training run dir."""
    config_path = run_dir / "adapter_config.json"
    if config_path.is_file():
        cfg = _read_adapter_config(run_dir)
        if cfg.get("fine_tune_type") == "full":
            return "full"
        quant = cfg.get("base_quantization")
        if quant and not quant.get("preexisting"):
            return "qlora"  # trained on a quantised base: evaluate on one, not the shared base
        return "lora"
    if (run_dir / "config.json").is_file():
        return "full"
    raise EvalDataError(
        f"{run_dir}: neither adapter_config.json (adapters) nor config.json (full model) found"
    )


def _read_adapter_config(run_dir: Path) -> dict:
    path = run_dir / "adapter_config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise EvalDataError(f"{path}: unreadable adapter config ({error})") from None


def _layout(cfg: dict) -> dict:
    """What decides the LoRA layers' shapes: equal layouts swap by loading weights only."""
    return {
        "fine_tune_type": cfg.get("fine_tune_type", "lora"),
        "num_layers": cfg.get("num_layers"),
        "lora_parameters": cfg.get("lora_parameters"),
    }


def _unwrap_lora(model: nn.Module) -> None:
    """Replace every LoRA/DoRA wrapper by the linear it wraps (restores the base model)."""
    from mlx.utils import tree_unflatten
    from mlx_lm.tuner.dora import DoRAEmbedding, DoRALinear
    from mlx_lm.tuner.lora import LoRAEmbedding, LoRALinear, LoRASwitchLinear

    wrappers = (LoRALinear, DoRALinear, LoRASwitchLinear, LoRAEmbedding, DoRAEmbedding)
    reset = []
    for name, module in model.named_modules():
        if isinstance(module, wrappers):
            inner = getattr(module, "linear", None) or getattr(module, "embedding", None)
            if inner is not None:
                reset.append((name, inner))
    if reset:
        model.update_modules(tree_unflatten(reset))


def _apply_adapter(model: nn.Module, run_dir: Path, current: dict | None) -> tuple[dict, dict]:
    """Put run_dir's adapter on model (in place); return the layout now applied and the base
    values of the non-LoRA weights it replaced (hybrid runs' norms.safetensors)."""
    from mlx_lm.tuner.utils import linear_to_lora_layers

    cfg = _read_adapter_config(run_dir)
    weights_path = run_dir / "adapters.safetensors"
    if not weights_path.is_file():
        raise EvalDataError(f"{weights_path}: adapter weights not found")
    layout = _layout(cfg)
    if layout != current:
        if current is not None:
            _unwrap_lora(model)
        linear_to_lora_layers(
            model,
            cfg["num_layers"],
            cfg["lora_parameters"],
            use_dora=cfg.get("fine_tune_type") == "dora",
        )
    weights = mx.load(str(weights_path))
    from mlx.utils import tree_flatten

    params = dict(tree_flatten(model.parameters()))
    bad = [k for k, w in weights.items() if k not in params or params[k].shape != w.shape]
    if bad:
        raise EvalDataError(
            f"{weights_path}: {len(bad)} tensors do not fit the model (e.g. {bad[0]})"
        )
    model.load_weights(list(weights.items()), strict=False)
    overridden = {}
    extra_name = cfg.get("extra_weights") or (
        "norms.safetensors" if (run_dir / "norms.safetensors").is_file() else None
    )
    if extra_name:
        extra_path = run_dir / extra_name
        if not extra_path.is_file():
            raise EvalDataError(
                f"{extra_path}: extra weights named in adapter_config.json not found"
            )
        extra = mx.load(str(extra_path))
        bad = [k for k, w in extra.items() if k not in params or params[k].shape != w.shape]
        if bad:
            raise EvalDataError(
                f"{extra_path}: {len(bad)} tensors do not fit the model (e.g. {bad[0]})"
            )
        overridden = {k: params[k] for k in extra}
        model.load_weights(list(extra.items()), strict=False)
    model.eval()
    mx.eval(model.parameters())
    return layout, overridden


def _experiment_info(config: dict, experiment: str) -> tuple[str, int | None]:
    try:
        from mlx_instruct.config import experiment_settings

        settings = experiment_settings(config, experiment)
    except (KeyError, ImportError):
        return "none", None
    method = settings.get("method", "lora")
    rank = settings.get("rank") if method in ("lora", "dora", "hybrid", "qlora") else None
    return method, rank


def load_context(
    config: dict,
    experiment: str,
    seed: int,
    model_dir: str | Path,
    run_dir: str | Path | None,
    data_dir: str | Path,
    out_dir: str | Path,
) -> EvalContext:
    """Load the base model (and the run's adapter or full weights) for evaluation."""
    model_dir = Path(model_dir)
    model, tokenizer = _load_base(model_dir)
    method, rank = _experiment_info(config, experiment)
    ctx = EvalContext(
        config=config,
        experiment=experiment,
        seed=int(seed),
        method=method,
        rank=rank,
        model=model,
        tokenizer=tokenizer,
        model_dir=model_dir,
        adapter_dir=None,
        data_dir=Path(data_dir),
        out_dir=Path(out_dir),
        template=(config.get("data", {}) or {}).get("template", "chat"),
    )
    if run_dir is not None:
        ctx = swap_adapter(ctx, run_dir)
    return ctx


def swap_adapter(
    ctx: EvalContext,
    run_dir: str | Path | None,
    *,
    experiment: str | None = None,
    seed: int | None = None,
    out_dir: str | Path | None = None,
) -> EvalContext:
    """A context for another run of the same study, sharing the loaded base where possible.

    LoRA/DoRA adapters: the base's linears are wrapped once; an adapter with the same layout
    only loads its weights (no reload, no re-wrap). Hybrid runs' extra weights
    (norms.safetensors) are put on the base and undone at the next swap. run_dir None: back
    to the plain base. A full fine-tune run, and a QLoRA run (trained on a quantised base),
    are loaded as their own model (the shared base is kept for the next swap).
    The returned context shares `model` with `ctx` for adapters: use one at a time.
    """
    updates: dict[str, Any] = {"generations": []}
    if experiment is not None:
        updates["experiment"] = experiment
        updates["method"], updates["rank"] = _experiment_info(ctx.config, experiment)
    if seed is not None:
        updates["seed"] = int(seed)
    if out_dir is not None:
        updates["out_dir"] = Path(out_dir)
    if ctx._base is not None:  # ctx holds a full fine-tune: go back to the kept base
        base_model, base_tokenizer, current = ctx._base
    else:
        base_model, base_tokenizer, current = ctx.model, ctx.tokenizer, ctx._adapter_layout
    updates.update(tokenizer=base_tokenizer, _base=None, _overridden=None)
    if ctx._overridden:  # undo the previous adapter's non-LoRA weights (hybrid norms)
        base_model.load_weights(list(ctx._overridden.items()), strict=False)
    if run_dir is None:
        if current is not None:
            _unwrap_lora(base_model)
        return replace(ctx, model=base_model, adapter_dir=None, _adapter_layout=None, **updates)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise EvalDataError(f"{run_dir}: run dir not found")
    kind = _run_kind(run_dir)
    if kind == "qlora":
        from mlx_instruct.train.outputs import load_trained

        model, tokenizer = load_trained(ctx.model_dir, run_dir)
        updates.update(tokenizer=tokenizer, _base=(base_model, base_tokenizer, current))
        return replace(ctx, model=model, adapter_dir=run_dir, _adapter_layout=None, **updates)
    if kind == "full":
        if (run_dir / "config.json").is_file():
            model, tokenizer = _load_base(run_dir)
        else:  # mlx_lm full fine-tune: all weights in adapters.safetensors over the base
            model, tokenizer = _load_base(ctx.model_dir)
            model.load_weights(str(run_dir / "adapters.safetensors"), strict=False)
            model.eval()
        updates.update(tokenizer=tokenizer, _base=(base_model, base_tokenizer, current))
        return replace(ctx, model=model, adapter_dir=run_dir, _adapter_layout=None, **updates)
    layout, overridden = _apply_adapter(base_model, run_dir, current)
    updates["_overridden"] = overridden or None
    return replace(ctx, model=base_model, adapter_dir=run_dir, _adapter_layout=layout, **updates)
