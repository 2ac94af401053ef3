"""SentencePiece BPE -> Hugging Face tokenizer.json, without transformers' converters.

The Mistral 7B v0.1 tokenizer ships offline in `mistral-common`
(`mistral_common/data/tokenizer.model.v1`: SentencePiece BPE, 32000 pieces, byte fallback,
BOS 1, EOS 2). We build the `tokenizers` equivalent ourselves because transformers' converter
API changes between major versions. The one subtle part is the merge order: SentencePiece merges
by piece *score*, and whitespace-only pieces ("▁▁", ...) score -1e9, so ordering merges by id
(as some converters do) splits ".  He" as "▁▁|He" instead of SentencePiece's "▁|▁He".
Verified identical to SentencePiece on ~3,400 lines of mixed text (tests/test_sources.py).
The pipeline is the "legacy" Llama one (normalizer Prepend+Replace), which, like mistral-common,
restarts the dummy prefix after each special token: "<s>[INST]" -> <s>, "▁[", "INST", "]".
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

# SentencePiece piece types (sentencepiece_model.proto); llama.cpp numbers its token types alike.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# The Mistral v1 instruct format, as mistral-common encodes it: BOS once, "[INST] user [/INST]",
# " assistant</s>", a system prompt prepended to the first user turn with a blank line.
MISTRAL_CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if messages and messages[0]['role'] == 'system' %}"
    "{%- set system = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}"
    "{%- else %}{%- set system = '' %}{%- set loop_messages = messages %}{%- endif %}"
    "{%- for message in loop_messages %}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if loop.first and system %}{{- '[INST] ' + system + '\\n\\n' + message['content'] + ' [/INST]' }}"
    "{%- else %}{{- '[INST] ' + message['content'] + ' [/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}{{- ' ' + message['content'] + eos_token }}"
    "{%- else %}{{- raise_exception('Only system, user and assistant roles are supported') }}"
    "{%- endif %}"
    "{%- endfor %}"
)


def mistral_v1_model_path() -> Path:
    """The SentencePiece model of Mistral 7B v0.1, from the installed mistral-common package."""
    try:
        import mistral_common
    except ImportError as error:  # pragma: no cover - it is a dependency
        raise ImportError(
            "mistral-common is needed for the Mistral tokenizer: `uv add mistral-common`"
        ) from error
    path = Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: mistral-common no longer ships tokenizer.model.v1")
    return path


def add_piece_tokens(
    tokenizer: Tokenizer, pieces: Sequence[str], types: Sequence[int], special_kinds: Sequence[int]
) -> None:
    """Add the pieces of `special_kinds` as special tokens and the user-defined pieces as
    plain added tokens (matched whole, never split), as SentencePiece and llama.cpp do."""
    tokenizer.add_special_tokens(
        [
            AddedToken(piece, special=True, normalized=False)
            for piece, kind in zip(pieces, types, strict=True)
            if kind in special_kinds
        ]
    )
    users = [
        AddedToken(piece, special=False, normalized=False)
        for piece, kind in zip(pieces, types, strict=True)
        if kind == USER_DEFINED
    ]
    if users:
        tokenizer.add_tokens(users)


def spm_bpe_tokenizer(
    pieces: Sequence[str],
    scores: Sequence[float],
    types: Sequence[int],
    *,
    unk_id: int = 0,
    bos_id: int | None = 1,
    add_bos: bool = True,
    add_dummy_prefix: bool = True,
    byte_fallback: bool = True,
) -> Tokenizer:
    """Build a `tokenizers` BPE that reproduces a SentencePiece BPE model."""
    vocab = {piece: index for index, piece in enumerate(pieces)}
    if len(vocab) != len(pieces):
        raise ValueError("SentencePiece vocabulary has duplicate pieces")
    ranked = []
    for piece, index in vocab.items():
        if types[index] not in (NORMAL, USER_DEFINED) or len(piece) < 2:
            continue
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                ranked.append((-scores[index], index, vocab[left], vocab[right], left, right))
    ranked.sort()
    merges = [(left, right) for *_, left, right in ranked]
    tokenizer = Tokenizer(
        models.BPE(
            vocab=vocab,
            merges=merges,
            unk_token=pieces[unk_id],
            fuse_unk=True,
            byte_fallback=byte_fallback,
            dropout=None,
        )
    )
    steps = [normalizers.Replace(" ", "▁")]
    if add_dummy_prefix:
        steps.insert(0, normalizers.Prepend("▁"))
    tokenizer.normalizer = normalizers.Sequence(steps)
    decode = [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    if add_dummy_prefix:
        decode.append(decoders.Strip(" ", 1, 0))
    tokenizer.decoder = decoders.Sequence(decode)
    add_piece_tokens(tokenizer, pieces, types, special_kinds=(CONTROL, UNKNOWN))
    if add_bos and bos_id is not None:
        bos = pieces[bos_id]
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
        )
    return tokenizer


def tokenizer_from_spm_file(path: str | os.PathLike[str]) -> tuple[Tokenizer, dict[str, int | str]]:
    """Read a SentencePiece .model file; return the tokenizer and its special ids/pieces."""
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(Path(path).read_bytes())
    if proto.trainer_spec.model_type != 2:  # 1 = unigram, 2 = BPE
        raise ValueError(f"{path}: only SentencePiece BPE models are supported")
    pieces = [piece.piece for piece in proto.pieces]
    spec = proto.trainer_spec
    tokenizer = spm_bpe_tokenizer(
        pieces,
        [piece.score for piece in proto.pieces],
        [piece.type for piece in proto.pieces],
        unk_id=spec.unk_id,
        bos_id=spec.bos_id if spec.bos_id >= 0 else None,
        add_dummy_prefix=proto.normalizer_spec.add_dummy_prefix,
        byte_fallback=spec.byte_fallback,
    )
    specials: dict[str, int | str] = {
        "unk_token": pieces[spec.unk_id],
        "bos_token": pieces[spec.bos_id],
        "eos_token": pieces[spec.eos_id],
        "bos_token_id": spec.bos_id,
        "eos_token_id": spec.eos_id,
        "vocab_size": len(pieces),
    }
    return tokenizer, specials


def write_mistral_tokenizer(
    out_dir: Path, *, chat_template: str | None = MISTRAL_CHAT_TEMPLATE
) -> dict:
    """Write the Mistral v0.1 tokenizer into out_dir; return provenance for source.json."""
    from mlx_instruct.sources.common import sha256_file, write_tokenizer_files

    path = mistral_v1_model_path()
    tokenizer, specials = tokenizer_from_spm_file(path)
    config = {
        "bos_token": specials["bos_token"],
        "eos_token": specials["eos_token"],
        "unk_token": specials["unk_token"],
        "add_bos_token": True,
        "add_eos_token": False,
        "model_max_length": 32768,
    }
    if chat_template:
        config["chat_template"] = chat_template
    write_tokenizer_files(out_dir, tokenizer.to_str(), config)
    return {"tokenizer_source": str(path), "tokenizer_sha256": sha256_file(path)}
