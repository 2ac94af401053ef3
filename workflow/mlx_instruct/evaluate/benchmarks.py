"""The `benchmarks` suite: lm-evaluation-harness tasks on the loaded MLX model.

Settings (config["evaluation"]["suites"]["benchmarks"]): one entry per benchmark,
`{n, tasks, num_fewshot, source, max_tokens}`:
- n: items per task (lm-eval `limit`: the first n documents); all when absent.
- tasks: BBH subtasks (default: DEFAULT_BBH_TASKS); for another hub benchmark, the lm-eval
  task names to run instead of the benchmark's own name.
- num_fewshot: few-shot exemplars (default: the task's own).
- source: "local" (task YAMLs in ./tasks over the vendored copies in resources/data, each
  checked against its sha256) or "hub" (lm-eval's registered tasks, datasets from the
  Hugging Face Hub). Default: local where a vendored copy exists (truthfulqa_mc1, bbh,
  gsm8k, ifeval), else hub: any other name (arc_easy, arc_challenge, hellaswag, mmlu, ...)
  is an lm-eval task.
- max_tokens (ifeval only): the generation cap (lm-eval's max_gen_toks; official 1280).
  IFEval is lm-eval's own task and checkers over the vendored prompts, each prompt in the
  study's template (see ifeval.py).

Rows: one per item and metric: suite "benchmarks", benchmark "truthfulqa_mc1" | "bbh:<task>"
| "gsm8k" | <task> (group members: the group name, item_id "<subtask>/<doc_id>"), item_id
the document index, metric as lm-eval names it ("acc", "acc_norm", "exact_match", ...),
value 0/1. IFEval: item_id the prompt's key for prompt_level_{strict,loose}_acc and
"<key>/<index>:<instruction_id>" for inst_level_{strict,loose}_acc (one row per instruction).
Generative tasks also get metric "answered" (1 when the answer could be parsed:
an unparsable or empty answer scores 0 and is counted there) and their generations.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlx_instruct.evaluate import ifeval
from mlx_instruct.evaluate.benchmark_files import (
    _read_gsm8k,
    _read_truthfulqa,
    bbh_file,
    read_bbh,
)
from mlx_instruct.evaluate.context import EvalDataError
from mlx_instruct.evaluate.runner import write_omitted
from mlx_instruct.io import write_json
from mlx_instruct.resources import BENCHMARK_DATASETS, data_file

TASKS_DIR = Path(__file__).resolve().parent / "tasks"
DEFAULT_BBH_TASKS = [
    "boolean_expressions",
    "date_understanding",
    "logical_deduction_three_objects",
    "navigate",
    "sports_understanding",
]
LOCAL_DATASETS = BENCHMARK_DATASETS  # benchmarks with a vendored copy (resources/data)
OPTION_TARGET = re.compile(r"\([A-Z]\)")
MAX_CLOSED_SET = 5  # a BBH task whose targets take at most this many values is multiple choice
INVALID = {"", "[invalid]"}


@dataclass
class BenchmarkPlan:
    name: str
    source: str  # local | hub
    tasks: list[Any]  # task names (hub) or full config dicts (local)
    labels: dict[str, str] = field(default_factory=dict)  # lm-eval task name -> benchmark
    limit: int | None = None
    num_fewshot: int | None = None
    max_gen_toks: int | None = None  # a generation cap above the adapter's default (ifeval)
    optional: bool = False  # a Hub benchmark that may be left out when it cannot be loaded


# -- local task configs ---------------------------------------------------------------------


def _load_yaml(name: str) -> dict:
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(TASKS_DIR / name, resolve_func=True)


def _task_utils():
    spec = importlib.util.spec_from_file_location(
        "mlx_instruct_lmeval_task_utils", TASKS_DIR / "utils.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _with_data(cfg: dict, path: Path) -> dict:
    cfg = dict(cfg)
    kwargs = dict(cfg.get("dataset_kwargs") or {})
    kwargs["data_files"] = {"test": str(path)}
    cfg["dataset_kwargs"] = kwargs
    return cfg


def _lm_eval_bbh_fewshot(task: str) -> dict | None:
    """lm-eval's own BBH few-shot config for a task (3 answer-only exemplars), if shipped."""
    import lm_eval.tasks

    path = Path(lm_eval.tasks.__file__).parent / "bbh" / "fewshot" / f"{task}.yaml"
    if not path.is_file():
        return None
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(path, resolve_func=False, recursive=False)


def _options_of(text: str) -> list[str]:
    return [f"({x})" for x in re.findall(r"^\(([A-Z])\)", text, flags=re.MULTILINE)]


def bbh_config(task: str, path: Path, num_fewshot: int | None) -> tuple[dict, str]:
    """The lm-eval config of local BBH task `task`; returns (config, mode mc|generate)."""
    examples = read_bbh(path)
    utils = _task_utils()
    cfg = _with_data(_load_yaml("bbh_local.yaml"), path)
    cfg["task"] = f"bbh_local_{task}"
    targets = [ex["target"].strip() for ex in examples]
    distinct = sorted(set(targets))
    option_style = all(OPTION_TARGET.fullmatch(t) for t in targets) and all(
        t in _options_of(ex["input"]) for t, ex in zip(targets, examples, strict=True)
    )
    mode = "mc" if option_style or len(distinct) <= MAX_CLOSED_SET else "generate"
    shots = _lm_eval_bbh_fewshot(task)
    samples = list((shots or {}).get("fewshot_config", {}).get("samples") or [])
    if shots and shots.get("description"):
        cfg["description"] = shots["description"]
    wanted = len(samples) if num_fewshot is None else min(num_fewshot, len(samples))
    if mode == "mc":
        cfg["output_type"] = "multiple_choice"
        cfg.pop("generation_kwargs", None)
        cfg["metric_list"] = [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}]
        cfg["doc_to_choice"] = utils.bbh_options
        cfg["doc_to_target"] = utils.bbh_target_index
        choices = [] if option_style else distinct
        cfg["process_docs"] = lambda ds, choices=choices: ds.map(lambda d: {"choices": choices})
        samples = [dict(s, choices=choices) for s in samples]
    if wanted and samples:
        cfg["fewshot_config"] = {"sampler": "first_n", "samples": samples}
        cfg["num_fewshot"] = wanted
    else:
        cfg["num_fewshot"] = 0
    return cfg, mode


SETTINGS = {"n", "tasks", "num_fewshot", "source", "max_tokens", "optional"}
# local benchmark -> (resources dataset, its reader: names a malformed file early, its task)
LOCAL_TASKS = {
    "truthfulqa_mc1": ("truthfulqa", _read_truthfulqa, "truthfulqa_mc1_local.yaml"),
    "gsm8k": ("gsm8k", _read_gsm8k, "gsm8k_local.yaml"),
}


def _source(name: str, spec: dict) -> str:
    """The benchmark's source (local | hub) after checking its settings."""
    unknown = set(spec) - SETTINGS
    if unknown:
        raise EvalDataError(f"benchmarks.{name}: unknown setting(s) {sorted(unknown)}")
    if "max_tokens" in spec and name != "ifeval":
        raise EvalDataError(f"benchmarks.{name}.max_tokens: only ifeval takes max_tokens")
    source = spec.get("source") or ("local" if name in LOCAL_DATASETS else "hub")
    if source not in ("local", "hub"):
        raise EvalDataError(f"benchmarks.{name}.source: expected local or hub, got {source!r}")
    if spec.get("optional") and source != "hub":
        raise EvalDataError(
            f"benchmarks.{name}.optional: only a Hub benchmark can be optional "
            "(a vendored copy is always there)"
        )
    if source == "local" and name != "ifeval" and name not in LOCAL_DATASETS:
        raise EvalDataError(
            f"benchmarks.{name}: no local copy (local: {sorted(LOCAL_DATASETS)}); use source: hub"
        )
    return source


def _add_local_tasks(plan: BenchmarkPlan, spec: dict) -> None:
    """Full task configs over the vendored files (each read and checked now)."""
    plan.num_fewshot = None  # set in each local config (lm-eval would override all)
    shots = spec.get("num_fewshot")
    if plan.name in LOCAL_TASKS:
        dataset, read, task_yaml = LOCAL_TASKS[plan.name]
        local_file = data_file(dataset)
        read(local_file)
        cfg = _with_data(_load_yaml(task_yaml), local_file)
        if shots is not None:
            cfg["num_fewshot"] = shots
        plan.tasks.append(cfg)
        plan.labels[cfg["task"]] = plan.name
        return
    for task in spec.get("tasks") or DEFAULT_BBH_TASKS:  # bbh
        cfg, _ = bbh_config(task, bbh_file(task), shots)
        plan.tasks.append(cfg)
        plan.labels[cfg["task"]] = f"bbh:{task}"


def _add_hub_tasks(plan: BenchmarkPlan, spec: dict) -> None:
    """lm-eval task names (a Hub benchmark is lm-eval's own task or group)."""
    if plan.name == "bbh":
        for task in spec.get("tasks") or DEFAULT_BBH_TASKS:
            plan.tasks.append(f"bbh_fewshot_{task}")
            plan.labels[f"bbh_fewshot_{task}"] = f"bbh:{task}"
        return
    tasks = spec.get("tasks") or [plan.name]
    for task in tasks:
        plan.tasks.append(task)
        plan.labels[task] = plan.name if len(tasks) == 1 else task


def plan_benchmarks(settings: dict) -> list[BenchmarkPlan]:
    """Resolve settings into lm-eval runs, validating every local file before any work."""
    plans = []
    for name, spec in (settings or {}).items():
        spec = dict(spec or {})
        source = _source(name, spec)
        plan = BenchmarkPlan(
            name, source, [], limit=spec.get("n"), num_fewshot=spec.get("num_fewshot")
        )
        plan.optional = bool(spec.get("optional"))
        if name == "ifeval":
            path = data_file("ifeval") if source == "local" else None
            cfg = ifeval.task_config(path, spec.get("max_tokens"))
            plan.tasks.append(cfg)
            plan.labels[cfg["task"]] = "ifeval"
            plan.max_gen_toks = cfg["generation_kwargs"]["max_gen_toks"]
        elif source == "local":
            _add_local_tasks(plan, spec)
        else:
            _add_hub_tasks(plan, spec)
        plans.append(plan)
    return plans


# -- results -> rows --------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list | tuple) and value and all(isinstance(v, int | float) for v in value):
        return float(sum(value)) / len(value)
    return None


def samples_to_rows(plan: BenchmarkPlan, samples: dict[str, list[dict]], ctx=None) -> list[dict]:
    rows = []
    for task_name, task_samples in samples.items():
        filters = {s.get("filter") for s in task_samples}
        keep = "strict-match" if "strict-match" in filters else sorted(f or "" for f in filters)[0]
        if task_name in plan.labels:
            benchmark, prefix = plan.labels[task_name], ""
        else:  # a member of a group (e.g. mmlu_anatomy in mmlu)
            benchmark, prefix = plan.name, f"{task_name}/"
        for sample in task_samples:
            if (sample.get("filter") or "") != keep:
                continue
            if plan.name == "ifeval":  # per prompt and per instruction
                item_id, scores = ifeval.sample_rows(sample)
            else:
                item_id = f"{prefix}{sample['doc_id']}"
                values = [(m, _number(sample.get(m))) for m in sample.get("metrics", [])]
                scores = [(item_id, m, v) for m, v in values if v is not None]
            rows.extend(_row(benchmark, item, metric, value) for item, metric, value in scores)
            args = sample.get("arguments") or []
            generative = bool(args) and len(args[0]) >= 2 and isinstance(args[0][1], dict)
            if generative:
                answer = sample.get("filtered_resps") or [""]
                answer = answer[0] if isinstance(answer, list) else answer
                answered = str(answer).strip() not in INVALID
                rows.append(_row(benchmark, item_id, "answered", float(answered)))
                if ctx is not None:
                    raw = (sample.get("resps") or [[""]])[0]
                    ctx.record_generation(
                        f"{benchmark}/{item_id}",
                        args[0][0],
                        raw[0] if isinstance(raw, list) else str(raw),
                        benchmark=benchmark,
                        target=str(sample.get("target")),
                        parsed=str(answer),
                    )
    return rows


def _row(benchmark: str, item_id: str, metric: str, value: float) -> dict:
    return {
        "suite": "benchmarks",
        "benchmark": benchmark,
        "item_id": item_id,
        "metric": metric,
        "value": value,
    }


EXTRA_MODULES = {"ifeval": ("langdetect", "immutabledict", "nltk")}  # lm-eval[ifeval]


def check_hub_tasks(plans: list[BenchmarkPlan]):
    """Before any work: every Hub task name is one lm-eval knows and its extra packages are
    installed. Returns the TaskManager (its index takes a while to build: reuse it)."""
    hub = [p for p in plans if p.source == "hub"]
    if not hub:
        return None
    from importlib.util import find_spec

    from lm_eval.tasks import TaskManager

    from mlx_instruct.evaluate.lmeval import quiet_lm_eval

    with quiet_lm_eval():
        manager = TaskManager()
    known = set(manager.all_tasks)
    for plan in hub:
        names = [t for t in plan.tasks if isinstance(t, str)]  # dicts: full configs (ifeval)
        unknown = [t for t in names if t not in known]
        if unknown:
            raise EvalDataError(f"benchmarks.{plan.name}: lm-eval has no task(s) {unknown}")
        for task in names:
            missing = [m for m in EXTRA_MODULES.get(task, ()) if find_spec(m) is None]
            if missing:
                raise EvalDataError(
                    f"benchmarks.{plan.name}: task {task} needs {missing} "
                    f"(pip install 'lm-eval[{task}]')"
                )
    return manager


def run_benchmarks(ctx, settings: dict) -> list[dict]:
    from mlx_instruct.evaluate.lmeval import MLXEvalLM, run_tasks

    plans = plan_benchmarks(settings)  # all files checked before work
    manager = check_hub_tasks(plans)
    defaults = ctx.generation_defaults
    caps = [p.max_gen_toks for p in plans if p.max_gen_toks]
    lm = MLXEvalLM(
        ctx.model, ctx.tokenizer, batch_size=defaults.get("batch_size", 16), seed=ctx.seed
    )
    lm.max_gen_cap = max([lm.max_gen_cap, *caps])
    for plan in plans:
        if plan.name == "ifeval":  # each prompt in the study's template, as tuned
            plan.tasks = [ifeval.with_template(cfg, ctx.format) for cfg in plan.tasks]
    rows: list[dict] = []
    parts = []
    omitted = []
    for plan in plans:
        # each benchmark's rows are kept until the suite completes: a rerun after an
        # interruption redoes only the benchmarks that had not finished
        part = _part_path(ctx, plan, settings)
        parts.append(part)
        if part.is_file():
            saved = json.loads(part.read_text(encoding="utf-8"))
            rows.extend(saved["rows"])
            ctx.generations.extend(saved["generations"])
            continue
        before = len(ctx.generations)
        try:
            samples = run_tasks(
                lm,
                copy.copy(plan.tasks),
                limit=plan.limit,
                num_fewshot=plan.num_fewshot,
                include_defaults=plan.source == "hub",
                seed=ctx.seed,
                task_manager=manager if plan.source == "hub" else None,
            )
        except Exception as error:  # noqa: BLE001  (datasets/hub errors vary by version)
            if plan.source != "hub" or isinstance(error, EvalDataError):
                raise
            reason = f"loading {plan.tasks} from the Hugging Face Hub failed ({type(error).__name__}: {str(error)[:200]})"
            if plan.optional:  # explicit in the study file; the report lists it
                print(
                    f"warning: benchmarks.{plan.name} (optional) left out: {reason}",
                    file=sys.stderr,
                )
                omitted.append({"suite": "benchmarks", "benchmark": plan.name, "reason": reason})
                continue
            raise EvalDataError(
                f"benchmarks.{plan.name}: {reason}; use source: local where a local copy "
                "exists, or optional: true to leave it out"
            ) from error
        new = samples_to_rows(plan, samples, ctx)
        write_json(part, {"rows": new, "generations": ctx.generations[before:]})
        rows.extend(new)
    write_omitted(ctx.out_dir, "benchmarks", omitted)
    for part in parts:
        part.unlink(missing_ok=True)
    return rows


def _part_path(ctx, plan: BenchmarkPlan, settings: dict) -> Path:
    from mlx_instruct.config import fingerprint

    key = fingerprint(
        [plan.name, settings.get(plan.name), str(ctx.model_dir), str(ctx.adapter_dir), ctx.seed]
    )
    return Path(ctx.out_dir) / f".benchmarks.{plan.name}.{key}.part.json"
