"""Tokenize (prompt, completion) pairs with an exact loss-mask boundary.

Contract (docs/contracts.md): BOS exactly once at the start when the tokenizer adds one,
EOS exactly once at the end, loss on positions >= prompt_len only.

Why the prompt is encoded on its own: `prompt_len` must be the exact number of prompt
tokens, or the loss leaks onto the prompt (or skips the first answer token). The completion
ids are taken from the joint encoding when the prompt's ids are a prefix of it (the usual
case: the answer is tokenized exactly as the model would see the whole text), else the
completion is encoded separately and concatenated. Either way the boundary is exact.

Truncation (`on_too_long: truncate`) cuts the completion and leaves EOS off: the answer did
not end there, so the model must not learn to stop there. An example whose prompt alone
does not fit is dropped in every mode but `error` (it would carry no loss tokens).
Works with mlx_lm's `TokenizerWrapper` and with plain Hugging Face tokenizers.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mlx_instruct.data.common import DataError

ON_TOO_LONG = ("drop", "truncate", "error")


@dataclass(frozen=True)
class TokenizedExample:
    """Token ids of one example; positions >= prompt_len carry the loss."""

    id: str
    input_ids: list[int]
    prompt_len: int
    truncated: bool

    @property
    def loss_mask(self) -> list[int]:
        return [0] * self.prompt_len + [1] * (len(self.input_ids) - self.prompt_len)


@dataclass(frozen=True)
class TokenizerInfo:
    """What the data stage needs to know about a tokenizer's special tokens."""

    bos_id: int | None
    eos_id: int
    bos_text: str | None
    adds_bos: bool
    unk_id: int | None
    special_texts: tuple[str, ...]


_INFO: weakref.WeakKeyDictionary[Any, TokenizerInfo] = weakref.WeakKeyDictionary()


def hf_tokenizer(tokenizer: Any) -> Any:
    """The Hugging Face tokenizer inside an mlx_lm `TokenizerWrapper` (or itself).

    Duck-typed on the wrapper's `_detokenizer`: a plain HF fast tokenizer also has a
    `_tokenizer` attribute (the Rust one), which must not be unwrapped.
    """
    if "_detokenizer" in getattr(tokenizer, "__dict__", {}):
        return tokenizer._tokenizer
    return tokenizer


def encode(
    tokenizer: Any, text: str, add_special_tokens: bool = False, literal: bool = False
) -> list[int]:
    """Token ids of `text`; `literal` treats special-token text as plain characters."""
    hf = hf_tokenizer(tokenizer)
    if literal:
        try:
            return list(
                hf.encode(text, add_special_tokens=add_special_tokens, split_special_tokens=True)
            )
        except TypeError:
            pass
    return list(hf.encode(text, add_special_tokens=add_special_tokens))


def eos_ids(tokenizer: Any) -> list[int]:
    """Every EOS id, sorted (mlx_lm's wrapper may know several; a plain tokenizer has one)."""
    ids = getattr(tokenizer, "eos_token_ids", None)
    if ids is None:
        eos = getattr(hf_tokenizer(tokenizer), "eos_token_id", None)
        ids = [] if eos is None else [eos]
    return sorted(ids)


def start_id(tokenizer: Any) -> int:
    """The token a sequence with no text of its own starts from: BOS, else the lowest EOS id
    (lm-eval's prefix token), so an empty prompt or context still gives the model an input."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None:
        return bos
    return next(iter(eos_ids(tokenizer)), 0)


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """Ids of a formatted prompt with BOS exactly once where the tokenizer adds one: the ids
    training puts before the answer (`tokenize_example`) and generation feeds the model.

    A chat template may already have written the BOS text; encoding with special tokens
    would then double it. Never empty: an empty prompt is [start_id].
    """
    ids = list(hf_tokenizer(tokenizer).encode(text, add_special_tokens=True))
    bos = getattr(tokenizer, "bos_token_id", None)
    while bos is not None and ids[:2] == [bos, bos]:
        ids = ids[1:]
    return ids or [start_id(tokenizer)]


def encode_batch(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """Ids of many texts without special tokens (the fast tokenizers' batch path)."""
    if not texts:
        return []
    hf = hf_tokenizer(tokenizer)
    try:
        return [list(ids) for ids in hf(list(texts), add_special_tokens=False)["input_ids"]]
    except (TypeError, KeyError, AttributeError):
        return [encode(tokenizer, text) for text in texts]


def tokenizer_info(tokenizer: Any) -> TokenizerInfo:
    """Special-token facts, measured (does `encode` really prepend BOS?) not assumed."""
    hf = hf_tokenizer(tokenizer)
    try:
        return _INFO[hf]
    except (KeyError, TypeError):
        pass
    eos_id = getattr(hf, "eos_token_id", None)
    if eos_id is None:
        raise DataError(f"tokenizer {type(hf).__name__} has no EOS token; cannot mark answer ends")
    bos_id = getattr(hf, "bos_token_id", None)
    probe = list(hf.encode("a", add_special_tokens=True))
    adds_bos = bos_id is not None and probe[:1] == [bos_id]
    specials = set(getattr(hf, "all_special_tokens", []) or [])
    for token in (getattr(hf, "added_tokens_decoder", None) or {}).values():
        if getattr(token, "special", False):
            specials.add(str(token))
    info = TokenizerInfo(
        bos_id=bos_id,
        eos_id=int(eos_id),
        bos_text=getattr(hf, "bos_token", None),
        adds_bos=adds_bos,
        unk_id=getattr(hf, "unk_token_id", None),
        special_texts=tuple(sorted(s for s in specials if s)),
    )
    with contextlib.suppress(TypeError):  # not every tokenizer object is weak-referenceable
        _INFO[hf] = info
    return info


def _continuation_ids(tokenizer: Any, completion: str) -> list[int]:
    """Ids of `completion` as a continuation (no SentencePiece dummy-prefix space)."""
    anchor = encode(tokenizer, "\n", literal=True)
    ids = encode(tokenizer, "\n" + completion, literal=True)
    if ids[: len(anchor)] == anchor:
        return ids[len(anchor) :]
    return encode(tokenizer, completion, literal=True)


def _has_special(info: TokenizerInfo, text: str) -> bool:
    return any(special in text for special in info.special_texts)


def _assemble(
    info: TokenizerInfo,
    tokenizer: Any,
    prompt_body: list[int],
    full_body: list[int] | None,
    completion: str,
) -> tuple[list[int], int]:
    """(input_ids, prompt_len) before any length policy."""
    if info.adds_bos and prompt_body[:1] == [info.bos_id]:
        prompt_body = prompt_body[1:]  # the prompt text carried BOS text: never double it
        full_body = full_body[1:] if full_body else full_body
    n = len(prompt_body)
    if (
        full_body is not None
        and not _has_special(info, completion)
        and full_body[:n] == prompt_body
    ):
        completion_ids = full_body[n:]
    else:
        completion_ids = _continuation_ids(tokenizer, completion)
    head = [info.bos_id] if info.adds_bos else []
    prompt_ids = head + prompt_body
    return prompt_ids + completion_ids + [info.eos_id], len(prompt_ids)


def _apply_policy(
    example_id: str, ids: list[int], prompt_len: int, max_seq_len: int, on_too_long: str
) -> tuple[TokenizedExample | None, str]:
    """Apply the length policy: (example or None, outcome)."""
    if on_too_long not in ON_TOO_LONG:
        raise DataError(f"on_too_long must be one of {ON_TOO_LONG}, got {on_too_long!r}")
    if len(ids) <= max_seq_len:
        return TokenizedExample(example_id, ids, prompt_len, False), "ok"
    if on_too_long == "error":
        raise DataError(
            f"example {example_id!r}: {len(ids)} tokens (prompt {prompt_len}, completion "
            f"{len(ids) - prompt_len} incl. EOS) exceed max_seq_len {max_seq_len}"
        )
    if prompt_len >= max_seq_len:
        return None, "dropped_prompt_too_long"
    if on_too_long == "drop":
        return None, "dropped_too_long"
    return TokenizedExample(example_id, ids[:max_seq_len], prompt_len, True), "truncated"


def tokenize_example(
    tokenizer: Any,
    prompt: str,
    completion: str,
    max_seq_len: int,
    on_too_long: str = "drop",
    example_id: str = "",
) -> TokenizedExample | None:
    """One example's ids; None when dropped (too long under `drop`, or prompt too long)."""
    info = tokenizer_info(tokenizer)
    prompt_body = encode(tokenizer, prompt)
    full_body = encode(tokenizer, prompt + completion)
    ids, prompt_len = _assemble(info, tokenizer, prompt_body, full_body, completion)
    return _apply_policy(example_id, ids, prompt_len, max_seq_len, on_too_long)[0]


def tokenize_dataset(
    tokenizer: Any,
    records: Iterable[dict[str, Any]],
    max_seq_len: int,
    on_too_long: str = "drop",
) -> tuple[list[TokenizedExample], dict[str, Any]]:
    """Tokenize records carrying `prompt` and `completion`; return examples and counts."""
    records = list(records)
    for index, record in enumerate(records):
        if not isinstance(record.get("prompt"), str) or not isinstance(
            record.get("completion"), str
        ):
            raise DataError(
                f"record {index} ({record.get('id')!r}): needs text fields 'prompt' and 'completion'"
            )
    info = tokenizer_info(tokenizer)
    prompts = encode_batch(tokenizer, [r["prompt"] for r in records])
    fulls = encode_batch(tokenizer, [r["prompt"] + r["completion"] for r in records])
    counts = {"ok": 0, "truncated": 0, "dropped_too_long": 0, "dropped_prompt_too_long": 0}
    examples: list[TokenizedExample] = []
    lengths: list[int] = []
    for record, prompt_body, full_body in zip(records, prompts, fulls, strict=True):
        ids, prompt_len = _assemble(info, tokenizer, prompt_body, full_body, record["completion"])
        lengths.append(len(ids))
        example, outcome = _apply_policy(
            str(record.get("id", "")), ids, prompt_len, max_seq_len, on_too_long
        )
        counts[outcome] += 1
        if example is not None:
            examples.append(example)
    n = len(records)
    report = {
        "n_in": n,
        "n_out": len(examples),
        "max_seq_len": max_seq_len,
        "on_too_long": on_too_long,
        "truncated": counts["truncated"],
        "dropped_too_long": counts["dropped_too_long"],
        "dropped_prompt_too_long": counts["dropped_prompt_too_long"],
        "over_max_seq_len": sum(1 for length in lengths if length > max_seq_len),
        "truncation_rate": counts["truncated"] / n if n else 0.0,
        "drop_rate": (counts["dropped_too_long"] + counts["dropped_prompt_too_long"]) / n
        if n
        else 0.0,
        "tokens": sum(len(e.input_ids) for e in examples),
        "loss_tokens": sum(len(e.input_ids) - e.prompt_len for e in examples),
        "full_lengths": lengths,
    }
    return examples, report
