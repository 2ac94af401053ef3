"""Prompt templates: the seed's section 9.3 "alpaca" layout and the model's chat template.

The prompt text never carries BOS text when the tokenizer adds BOS itself: mlx_lm's
generate and our `tokenize_example` both prepend it, so BOS text in the prompt would put it
in the ids twice (a train/inference mismatch that silently hurts quality).
"""

from __future__ import annotations

import re
from typing import Any

from mlx_instruct.data.common import DataError
from mlx_instruct.data.tokenize import hf_tokenizer, tokenizer_info

TEMPLATES = ("chat", "alpaca")
ALPACA_WITH_INPUT = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Output:\n"
ALPACA_NO_INPUT = "### Instruction:\n{instruction}\n\n### Output:\n"
# Section 9.4's format check for alpaca-template prompts.
ALPACA_PATTERN = re.compile(r"###\s*Instruction:.*###\s*Output:", re.DOTALL)


def alpaca_prompt(instruction: str, context: str = "") -> str:
    """The seed's template; the Input block is omitted when there is no input."""
    if context:
        return ALPACA_WITH_INPUT.format(instruction=instruction, input=context)
    return ALPACA_NO_INPUT.format(instruction=instruction)


def user_message(record: dict[str, Any]) -> str:
    """The chat user turn: the instruction, then the input after a blank line."""
    context = record.get("input") or ""
    return record["instruction"] + (f"\n\n{context}" if context else "")


def strip_bos_text(prompt: str, tokenizer: Any) -> str:
    """Drop a leading BOS text when the tokenizer adds BOS on its own."""
    info = tokenizer_info(tokenizer)
    if info.adds_bos and info.bos_text:
        while prompt.startswith(info.bos_text):
            prompt = prompt[len(info.bos_text) :]
    return prompt


def has_chat_template(tokenizer: Any) -> bool:
    inner = hf_tokenizer(tokenizer)
    if inner is not tokenizer and getattr(tokenizer, "has_chat_template", False):
        return True  # mlx_lm's wrapper (may carry its own template)
    return bool(getattr(inner, "chat_template", None))


def chat_prompt(record: dict[str, Any], tokenizer: Any) -> str:
    """The model's own chat template with the generation prompt, as text."""
    if not has_chat_template(tokenizer):
        raise DataError(
            f"template 'chat': the tokenizer ({type(tokenizer).__name__}) has no chat template; "
            "set data.template: alpaca for a base model without one"
        )
    messages = [{"role": "user", "content": user_message(record)}]
    try:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except Exception as error:  # a template that raises (e.g. role checks) is a data/config issue
        raise DataError(f"template 'chat': the tokenizer's chat template failed: {error}") from None
    if not isinstance(text, str):
        raise DataError(
            f"template 'chat': apply_chat_template returned {type(text).__name__}, not text"
        )
    return strip_bos_text(text, tokenizer)


def format_prompt(record: dict[str, Any], template: str, tokenizer: Any = None) -> str:
    """The full prompt text for a record (no BOS text when the tokenizer adds it)."""
    if template == "alpaca":
        prompt = alpaca_prompt(record["instruction"], record.get("input") or "")
        return strip_bos_text(prompt, tokenizer) if tokenizer is not None else prompt
    if template == "chat":
        if tokenizer is None:
            raise DataError("template 'chat' needs the model's tokenizer")
        return chat_prompt(record, tokenizer)
    raise DataError(f"unknown template {template!r}; expected one of {TEMPLATES}")


def prompt_is_valid(prompt: str, record: dict[str, Any], template: str) -> bool:
    """Structural check of a formatted prompt (section 9.2 "format validation")."""
    if record["instruction"] not in prompt:
        return False
    if template == "alpaca":
        return bool(ALPACA_PATTERN.search(prompt)) and prompt.endswith("### Output:\n")
    return bool(prompt.strip())
