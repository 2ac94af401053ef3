"""The token-length budget (`data.max_seq_len`) applied where data is made, not after.

Why: dropping too-long examples after generation lost 16% of the default study's
generated tasks at max_seq_len 160 (136 too long, 126 with the prompt alone over budget)
and thinned the long families (extraction, csv_format) most. The verifiable generator
and the retention prompt choice instead ask `fits` before keeping a candidate, under the
study's own template and tokenizer, so every kept example fits and none is dropped later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlx_instruct.data.templates import format_prompt
from mlx_instruct.data.tokenize import encode, tokenize_example, tokenizer_info


def example_fits(tokenizer: Any, template: str, max_seq_len: int) -> Callable[[Any], bool]:
    """A predicate: does a task (instruction, input, output) fit `max_seq_len` tokens?

    It tokenizes exactly as the data stage does (template, BOS, completion, EOS), so a
    task it accepts is never dropped or truncated by `tokenize_dataset` later.
    """

    def fits(task: Any) -> bool:
        record = {"instruction": task.instruction, "input": task.input}
        prompt = format_prompt(record, template, tokenizer)
        return tokenize_example(tokenizer, prompt, task.output, max_seq_len, "drop") is not None

    return fits


def prompt_tokens(tokenizer: Any, prompt: str) -> int:
    """Tokens of a formatted prompt as generation sees it (BOS included when added)."""
    info = tokenizer_info(tokenizer)
    return len(encode(tokenizer, prompt)) + int(info.adds_bos)


def answer_room(tokenizer: Any, prompt: str, max_seq_len: int) -> int:
    """Tokens left for an answer and its EOS after `prompt` within `max_seq_len`."""
    return max_seq_len - prompt_tokens(tokenizer, prompt) - 1
