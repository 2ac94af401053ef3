"""GGUF tokenizer metadata -> Hugging Face tokenizer.json (+ tokenizer_config.json values).

Two GGUF tokenizer models are supported:
  gpt2  (byte-level BPE: tokens + merges) with the pre-tokenizers below, and
  llama (SentencePiece BPE: tokens + scores + token types), via the same builder as Mistral's.
The `smollm` pre-tokenizer of llama.cpp is the regexes ["\\p{N}", GPT-2's]: individual digits,
then byte-level GPT-2 splitting; that is `Digits(individual_digits=True)` + `ByteLevel`.
SmolLM2's tokenizer built this way gives llama.cpp's token ids on the strings of
tests/fixtures/smollm2_reference_tokens.json.
"""

from __future__ import annotations

from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

# llama.cpp token types (llama_token_type) number like SentencePiece's piece types.
from mlx_instruct.sources.mistral_tokenizer import (
    CONTROL,
    NORMAL,
    add_piece_tokens,
    spm_bpe_tokenizer,
)

# llama.cpp pre-tokenizer names we reproduce with `tokenizers` pre-tokenizers.
GPT2_PRE_TOKENIZERS = ("smollm", "gpt-2", "default", "starcoder", "refact")


def _byte_level_pre(pre: str, source: str) -> pre_tokenizers.PreTokenizer:
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    if pre in ("smollm", "starcoder", "refact"):  # "\p{N}" first: every digit is its own word
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    if pre in ("gpt-2", "default"):
        return byte_level
    raise ValueError(
        f"{source}: unsupported GGUF pre-tokenizer tokenizer.ggml.pre={pre!r}; supported: "
        f"{list(GPT2_PRE_TOKENIZERS)}"
    )


def _gpt2_tokenizer(meta: dict[str, Any], source: str) -> Tokenizer:
    tokens: list[str] = meta["tokenizer.ggml.tokens"]
    merges_text = meta.get("tokenizer.ggml.merges")
    if not merges_text:
        raise ValueError(f"{source}: a gpt2 GGUF tokenizer needs tokenizer.ggml.merges")
    merges = []
    for line in merges_text:
        left, sep, right = line.partition(" ")
        if not sep:
            raise ValueError(f"{source}: malformed merge {line!r} in tokenizer.ggml.merges")
        merges.append((left, right))
    tokenizer = Tokenizer(
        models.BPE(
            vocab={token: index for index, token in enumerate(tokens)},
            merges=merges,
            fuse_unk=False,
            byte_fallback=False,
            dropout=None,
        )
    )
    tokenizer.pre_tokenizer = _byte_level_pre(meta.get("tokenizer.ggml.pre", "default"), source)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    types = meta.get("tokenizer.ggml.token_type") or [NORMAL] * len(tokens)
    add_piece_tokens(tokenizer, tokens, types, special_kinds=(CONTROL,))
    return tokenizer


def tokenizer_from_gguf(meta: dict[str, Any], source: str) -> tuple[Tokenizer, dict[str, Any]]:
    """Build the tokenizer and the tokenizer_config.json values from GGUF metadata."""
    kind = meta.get("tokenizer.ggml.model")
    tokens = meta.get("tokenizer.ggml.tokens")
    if not tokens:
        raise ValueError(f"{source}: GGUF has no tokenizer.ggml.tokens; cannot build a tokenizer")
    bos = meta.get("tokenizer.ggml.bos_token_id")
    eos = meta.get("tokenizer.ggml.eos_token_id")
    unk = meta.get("tokenizer.ggml.unknown_token_id")
    pad = meta.get("tokenizer.ggml.padding_token_id")
    if kind == "gpt2":
        tokenizer = _gpt2_tokenizer(meta, source)
        add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", False))
        if add_bos and bos is not None:
            tokenizer.post_processor = processors.TemplateProcessing(
                single=f"{tokens[bos]} $A",
                pair=f"{tokens[bos]} $A {tokens[bos]} $B",
                special_tokens=[(tokens[bos], bos)],
            )
    elif kind == "llama":
        scores = meta.get("tokenizer.ggml.scores")
        types = meta.get("tokenizer.ggml.token_type")
        if not scores or not types:
            raise ValueError(
                f"{source}: a llama (SentencePiece) GGUF tokenizer needs scores and token types"
            )
        add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", True))
        tokenizer = spm_bpe_tokenizer(
            tokens,
            scores,
            types,
            unk_id=0 if unk is None else unk,
            bos_id=bos,
            add_bos=add_bos,
            add_dummy_prefix=bool(meta.get("tokenizer.ggml.add_space_prefix", True)),
        )
    else:
        raise ValueError(
            f"{source}: unsupported GGUF tokenizer model tokenizer.ggml.model={kind!r}; "
            "supported: gpt2 (byte-level BPE), llama (SentencePiece BPE)"
        )
    config: dict[str, Any] = {
        "add_bos_token": add_bos,
        "add_eos_token": bool(meta.get("tokenizer.ggml.add_eos_token", False)),
    }
    for key, index in (
        ("bos_token", bos),
        ("eos_token", eos),
        ("unk_token", unk),
        ("pad_token", pad),
    ):
        if index is not None and 0 <= index < len(tokens):
            config[key] = tokens[index]
    if template := meta.get("tokenizer.chat_template"):
        config["chat_template"] = template
    return tokenizer, config
