"""Sample generations of the seed's five evaluation prompts (section 17) during training.

Prompts are formatted exactly like the training data (the study's `data.template`, via the
data stage's `format_prompt`) and decoded greedily in one batch with mlx_lm's
`batch_generate`, so samples at fixed steps are comparable across runs.
"""

from __future__ import annotations

from typing import Any

import mlx.nn as nn

from mlx_instruct.data.tasks import SEED_PROMPTS
from mlx_instruct.data.templates import format_prompt
from mlx_instruct.data.tokenize import encode_prompt


def seed_prompts() -> list[dict[str, Any]]:
    """The seed prompts' id, instruction and input (their checkers are the evaluator's)."""
    return [
        {
            "id": str(spec["id"]),
            "instruction": spec["instruction"],
            "input": spec.get("input") or "",
        }
        for spec in SEED_PROMPTS
    ]


class Sampler:
    def __init__(self, tokenizer: Any, template: str, max_tokens: int):
        self.tokenizer = tokenizer
        self.prompts = seed_prompts()
        self.texts = [format_prompt(spec, template, tokenizer) for spec in self.prompts]
        self.ids = [encode_prompt(tokenizer, text) for text in self.texts]
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
