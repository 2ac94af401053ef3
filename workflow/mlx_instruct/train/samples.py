"""Sample generations of the seed's five evaluation prompts (section 17) during training.

Prompts are formatted exactly like the training data (the study's `data.template`, via the
data stage's `format_prompt`) and decoded greedily in one batch with mlx_lm's
`batch_generate`, so samples at fixed steps are comparable across runs.
"""

from __future__ import annotations

from typing import Any

import mlx.nn as nn

# Seed section 17, used only when the data stage's task package is unavailable.
FALLBACK_PROMPTS = [
    {
        "id": "seed-1-edge-computing",
        "instruction": "List three use-cases for edge computing.",
        "input": "",
    },
    {
        "id": "seed-2-json",
        "instruction": "Convert this sentence to JSON with fields 'subject', 'verb', 'object': "
        "'The cat chased the mouse.'",
        "input": "",
    },
    {
        "id": "seed-3-overfitting",
        "instruction": "Explain overfitting to a 10-year-old.",
        "input": "",
    },
    {
        "id": "seed-4-safe-alternative",
        "instruction": "Provide a safe alternative response to a harmful request.",
        "input": "",
    },
    {"id": "seed-5-summary", "instruction": "Summarize this: '(short paragraph…)'", "input": ""},
]


def seed_prompts() -> list[dict[str, Any]]:
    try:
        from mlx_instruct.data.tasks import SEED_PROMPTS
    except ImportError:
        return FALLBACK_PROMPTS
    prompts = []
    for index, spec in enumerate(SEED_PROMPTS, start=1):
        if isinstance(spec, str):
            spec = {"id": f"seed-{index}", "instruction": spec, "input": ""}
        prompts.append(
            {
                "id": str(spec["id"]),
                "instruction": spec["instruction"],
                "input": spec.get("input") or "",
            }
        )
    return prompts


def format_prompts(prompts: list[dict[str, Any]], template: str, tokenizer: Any) -> list[str]:
    try:
        from mlx_instruct.data.templates import format_prompt
    except ImportError:
        format_prompt = None
    texts = []
    for spec in prompts:
        if format_prompt is not None:
            texts.append(format_prompt(spec, template, tokenizer))
        elif template == "chat":
            content = spec["instruction"] + (f"\n\n{spec['input']}" if spec["input"] else "")
            texts.append(
                tokenizer.apply_chat_template(
                    [{"role": "user", "content": content}],
                    add_generation_prompt=True,
                    tokenize=False,
                )
            )
        else:
            body = f"### Instruction:\n{spec['instruction']}\n\n"
            if spec["input"]:
                body += f"### Input:\n{spec['input']}\n\n"
            texts.append(body + "### Output:\n")
    return texts


def encode(tokenizer: Any, text: str) -> list[int]:
    """Ids with BOS exactly once (where the tokenizer has one), as in training."""
    ids = list(tokenizer.encode(text))
    bos = getattr(tokenizer, "bos_token_id", None)
    while bos is not None and len(ids) >= 2 and ids[0] == bos and ids[1] == bos:
        ids = ids[1:]
    return ids or [bos if bos is not None else 0]


class Sampler:
    def __init__(self, tokenizer: Any, template: str, max_tokens: int):
        self.tokenizer = tokenizer
        self.prompts = seed_prompts()
        self.texts = format_prompts(self.prompts, template, tokenizer)
        self.ids = [encode(tokenizer, text) for text in self.texts]
        self.max_tokens = int(max_tokens)

    def generate(self, model: nn.Module, step: int) -> list[dict[str, Any]]:
        from mlx_lm.generate import batch_generate

        was_training = model.training
        model.eval()
        try:
            result = batch_generate(model, self.tokenizer, self.ids, max_tokens=self.max_tokens)
        finally:
            if was_training:
                model.train()
        return [
            {"step": step, "prompt_id": spec["id"], "prompt": spec["instruction"], "response": text}
            for spec, text in zip(self.prompts, result.texts, strict=True)
        ]
