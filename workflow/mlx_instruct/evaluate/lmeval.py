"""lm-evaluation-harness on MLX: an `LM` over our batched scoring and generation.

Adapted from mlx_lm/evaluate.py (MLXLM), but
- it wraps a model that is already loaded (base + adapter), so every experiment of a study
  is scored on one loaded base;
- log-likelihoods are batched (several choices of one question share one pass over the
  context, other requests go in right-padded batches) instead of one request at a time;
- generate_until uses our batched generation with lm-eval's `until` strings as text stops
  and its `max_gen_toks` as the cap (clipped to `max_gen_cap`).

No torch: lm_eval's core (evaluator, tasks, api) imports without it; only its HF model
classes need torch and they are never imported here.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lm_eval.api.model import LM

from mlx_instruct.evaluate import generation as _gen
from mlx_instruct.evaluate import scoring

DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's default when a task sets none


class MLXEvalLM(LM):
    """An lm-eval model over an MLX model + mlx_lm tokenizer already in memory."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        batch_size: int = 16,
        max_gen_cap: int = 512,
        max_context: int = scoring.MAX_CONTEXT,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_gen_cap = max_gen_cap
        self.max_context = max_context
        self.seed = seed
        self.calls = {"loglikelihood": 0, "loglikelihood_rolling": 0, "generate_until": 0}

    @property
    def tokenizer_name(self) -> str:
        return str(getattr(self.tokenizer, "name_or_path", "mlx")).replace("/", "__")

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        pairs = [tuple(req.args[:2]) for req in requests]
        self.calls["loglikelihood"] += len(pairs)
        return scoring.loglikelihood(
            self.model, self.tokenizer, pairs, max_context=self.max_context
        )

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        texts = [req.args[0] for req in requests]
        self.calls["loglikelihood_rolling"] += len(texts)
        return scoring.rolling_loglikelihood(
            self.model, self.tokenizer, texts, max_context=self.max_context
        )

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        self.calls["generate_until"] += len(requests)
        out: list[str | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for i, req in enumerate(requests):
            _context, kwargs = req.args[0], dict(req.args[1] or {})
            until = kwargs.get("until") or []
            if isinstance(until, str):
                until = [until]
            max_gen = int(kwargs.get("max_gen_toks") or DEFAULT_MAX_GEN_TOKS)
            temperature = float(kwargs.get("temperature") or 0.0)
            if not kwargs.get("do_sample", False):
                temperature = 0.0
            key = (tuple(until), min(max_gen, self.max_gen_cap), temperature)
            groups.setdefault(key, []).append(i)
        for (until, max_gen, temperature), members in groups.items():
            prompts = [requests[i].args[0] for i in members]
            gens = _gen.generate(
                self.model,
                self.tokenizer,
                prompts,
                max_tokens=max_gen,
                temperature=temperature,
                stop=list(until),
                batch_size=self.batch_size,
                seed=self.seed,
            )
            for i, g in zip(members, gens, strict=True):
                out[i] = g.text
        return [o or "" for o in out]


def _no_bar(iterable=None, *args: Any, **kwargs: Any):
    return iterable


@contextlib.contextmanager
def quiet_lm_eval() -> Iterator[None]:
    """Silence lm-eval's and datasets' logging and progress bars while inside."""
    names = ("lm-eval", "lm_eval", "datasets", "fsspec", "filelock", "urllib3", "httpx")
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    restore_bars = False
    try:
        import datasets

        restore_bars = datasets.utils.logging.is_progress_bar_enabled()
        datasets.disable_progress_bar()
        datasets.utils.logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        datasets = None
    import lm_eval.api.task as task_module

    saved_tqdm = getattr(task_module, "tqdm", None)
    if saved_tqdm is not None:  # lm-eval's per-document progress bar (request building)
        task_module.tqdm = _no_bar
    try:
        from transformers.utils import logging as hf_logging

        hf_level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        hf_logging = None
    try:
        yield
    finally:
        if saved_tqdm is not None:
            task_module.tqdm = saved_tqdm
        if hf_logging is not None:
            hf_logging.set_verbosity(hf_level)
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)
        if datasets is not None and restore_bars:
            datasets.enable_progress_bar()


def run_tasks(
    lm: LM,
    tasks: list[str | dict],
    *,
    limit: int | None = None,
    num_fewshot: int | None = None,
    include_path: str | Path | None = None,
    include_defaults: bool = True,
    seed: int = 0,
    task_manager: Any = None,
) -> dict[str, list[dict]]:
    """Evaluate tasks (registered names or full config dicts) with per-sample logging.

    Returns {task_name: [sample, ...]}, each sample as lm-eval logs it (doc_id, doc,
    target, resps, filtered_resps, filter, metrics, and each metric's value).
    """
    from lm_eval.evaluator import simple_evaluate
    from lm_eval.tasks import TaskManager

    with quiet_lm_eval():
        manager = task_manager or TaskManager(
            include_path=include_path, include_defaults=include_defaults
        )
        results = simple_evaluate(
            model=lm,
            tasks=tasks,
            num_fewshot=num_fewshot,
            limit=limit,
            log_samples=True,
            bootstrap_iters=0,
            task_manager=manager,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=None,
            fewshot_random_seed=seed,
        )
    if results is None:  # pragma: no cover  (non-zero rank)
        return {}
    return dict(results.get("samples", {}))
