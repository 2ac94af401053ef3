"""Types and lenient parsing helpers shared by every task family.

Checkers are lenient about *presentation* (whitespace, code fences, an "Answer:" label, a
trailing period) and strict about the *constraint* itself, so the adherence score measures
whether the model did what was asked, not whether it echoed our exact formatting.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PHRASINGS = ("imperative", "interrogative", "declarative")
DIFFICULTIES = ("simple", "multi_step")
# Responses longer than this are treated as degenerate (a looping model), never parsed.
MAX_RESPONSE_CHARS = 100_000
# Share of tasks whose instruction opens with a persona line ("I'm a nurse in Lyon."), as
# real requests often do; it adds diversity and teaches the model to ignore framing.
PREFACE_RATE = 0.3


def wordlist(text: str, sep: str | None = None) -> list[str]:
    """Split a word-list literal: on whitespace, or on `sep` with line breaks removed."""
    parts = text.split() if sep is None else text.replace("\n", "").split(sep)
    return [p.strip() for p in parts if p.strip()]


NUMBER_WORDS = wordlist(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
)


@dataclass(frozen=True)
class Task:
    """One verifiable instruction task; `constraints` holds everything its checker needs."""

    id: str
    family: str
    instruction: str
    input: str
    output: str
    constraints: dict
    difficulty: str
    phrasing: str

    def __hash__(self) -> int:  # `constraints` is a dict; the content-derived id identifies
        return hash(self.id)


@dataclass(frozen=True)
class CheckResult:
    """Outcome of checking one response: format sanity plus per-constraint satisfaction."""

    follows_format: bool
    constraints_total: int
    constraints_met: int
    correct: bool
    detail: str = ""

    @property
    def score(self) -> float:
        """Fraction of constraints met (1.0/0.0 by `correct` when a task has none)."""
        if self.constraints_total <= 0:
            return float(self.correct)
        return self.constraints_met / self.constraints_total


def failed(detail: str, total: int = 1) -> CheckResult:
    """A response not in the expected form at all: nothing could be verified."""
    return CheckResult(False, max(total, 1), 0, False, detail)


def tally(follows_format: bool, checks: Sequence[tuple[bool, str]]) -> CheckResult:
    """Fold (passed, reason-if-failed) pairs into a CheckResult."""
    met = sum(1 for ok, _ in checks if ok)
    reasons = [why for ok, why in checks if not ok]
    if not follows_format:
        reasons.insert(0, "not in the expected format")
    correct = follows_format and met == len(checks)
    return CheckResult(follows_format, len(checks), met, correct, "; ".join(reasons)[:300])


class Family:
    """A task family: a seeded generator and the checker that verifies its answers."""

    name: str = ""

    def generate(self, rng: random.Random, index: int) -> Task:
        """Build task `index`; phrasing and difficulty cycle with the index for balance."""
        phrasing = PHRASINGS[index % len(PHRASINGS)]
        difficulty = DIFFICULTIES[(index // len(PHRASINGS)) % len(DIFFICULTIES)]
        instruction, context, output, constraints = self.build(rng, phrasing, difficulty)
        if rng.random() < PREFACE_RATE:
            from mlx_instruct.data.tasks.lexicon import preface

            instruction = f"{preface(rng)} {instruction}"
        return Task(  # what the task asks, then its identity and labels
            instruction=instruction,
            input=context,
            output=output,
            constraints=constraints,
            id=task_id(self.name, instruction, context),
            family=self.name,
            difficulty=difficulty,
            phrasing=phrasing,
        )

    def build(
        self, rng: random.Random, phrasing: str, difficulty: str
    ) -> tuple[str, str, str, dict]:
        """Return (instruction, input, reference output, constraints)."""
        raise NotImplementedError

    def check(self, task_or_constraints: Task | Mapping[str, Any], response: Any) -> CheckResult:
        """Check a response; never raises on any response (a failure is a CheckResult)."""
        constraints = constraints_of(task_or_constraints)
        if not isinstance(response, str):
            return failed(f"response is {type(response).__name__}, not text")
        if len(response) > MAX_RESPONSE_CHARS:
            return failed(f"response longer than {MAX_RESPONSE_CHARS} characters")
        try:
            return self._check(constraints, response)
        except Exception as err:  # a checker bug must not crash an evaluation run
            return failed(f"checker error: {type(err).__name__}")

    def _check(self, constraints: Mapping[str, Any], response: str) -> CheckResult:
        raise NotImplementedError


def constraints_of(task_or_constraints: Task | Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept a Task, its asdict() form, or a bare constraints mapping."""
    if isinstance(task_or_constraints, Task):
        return task_or_constraints.constraints
    if "constraints" in task_or_constraints and "family" in task_or_constraints:
        return task_or_constraints["constraints"] or {}
    return task_or_constraints


def task_id(family: str, instruction: str, context: str) -> str:
    """Content-derived id: the same task gets the same id in every split (leakage checks)."""
    digest = hashlib.sha256(f"{family}\x1f{instruction}\x1f{context}".encode()).hexdigest()
    return f"{family}-{digest[:12]}"


# ---------------------------------------------------------------- generation helpers


def pick(rng: random.Random, options: Sequence[Any]) -> Any:
    return options[rng.randrange(len(options))]


_ALT = re.compile(r"\[([^\[\]]*)\]")


def expand(rng: random.Random, template: str, cap: bool = True, **fields: Any) -> str:
    """Fill a template: '[a|b|]' picks one alternative, then '{name}' slots are formatted.

    Alternations at many points make the surface form combinatorial, which is what keeps
    2,000 templated tasks above the seed's unique-trigram bar; content is inserted after
    expansion, so brackets inside it are never touched.
    """
    text = _ALT.sub(lambda m: pick(rng, m.group(1).split("|")), template)
    text = re.sub(r" {2,}", " ", text).replace(" ,", ",").replace(" .", ".").replace(" ?", "?")
    text = text.strip().format(**fields)
    return text[:1].upper() + text[1:] if cap else text


def append(text: str, extra: str) -> str:
    """Add a sentence to an instruction; an instruction ending in ':' gets a period first."""
    extra = extra.strip()
    if not extra:
        return text
    return f"{text[:-1]}. {extra}" if text.endswith(":") else f"{text} {extra}"


def number_word(n: int) -> str:
    """'three' for 3 (instructions read naturally); digits beyond twenty."""
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def attach(rng: random.Random, instruction: str, context: str) -> tuple[str, str]:
    """Put a short context inline ("...: 'text'") half the time, else in the input field."""
    short = instruction.endswith(":") and len(context) <= 110 and "'" not in context
    if short and rng.random() < 0.5:
        return f"{instruction} '{context}'", ""
    return instruction, context


def join_words(items: Sequence[str], conj: str = "and") -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conj} {items[-1]}"


# ---------------------------------------------------------------- parsing helpers

_FENCE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n?(.*?)\n?[ \t]*```", re.S)
_LABEL = re.compile(r"^\s*(?:(?:final\s+)?answer|output|response|result)\s*[:\-]\s*", re.I)
WORD = re.compile(r"[A-Za-z0-9]+(?:['’\-][A-Za-z0-9]+)*")
NUMBER = re.compile(r"(?<![\w.])[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])|[-−]?\.\d+")


def clean(text: str) -> str:
    """Strip whitespace, one code fence, an 'Answer:' label and wrapping quotes."""
    text = text.strip()
    if text.startswith("```") or text.count("```") == 2:
        fence = _FENCE.search(text)
        if fence:
            text = fence.group(1).strip()
    text = _LABEL.sub("", text, count=1).strip()
    for left, right in (('"', '"'), ("'", "'"), ("“", "”"), ("`", "`")):
        if len(text) >= 2 and text.startswith(left) and text.endswith(right):
            text = text[1:-1].strip()
    return text


def words(text: str) -> list[str]:
    """Words as a person counts them: hyphenated and apostrophe forms are one word."""
    return WORD.findall(text)


def norm(text: str) -> str:
    """Lowercase, drop punctuation and articles, collapse spaces (lenient value matching)."""
    toks = [w for w in words(str(text).lower().replace("’", "'")) if w not in ("a", "an", "the")]
    return " ".join(toks)


def sentences(text: str) -> list[str]:
    """Split prose into sentences at ., ! or ? followed by space or end."""
    parts = re.split(r"(?<=[.!?])[\"'”)]*\s+", text.strip())
    return [p for p in parts if re.search(r"[A-Za-z0-9]", p)]


def to_number(token: str) -> float | None:
    token = token.replace(",", "").replace("−", "-")
    try:
        return float(token)
    except ValueError:
        return None


def numbers_in(text: str) -> list[float]:
    return [v for v in (to_number(m.group(0)) for m in NUMBER.finditer(text)) if v is not None]


_NUM = r"((?:[-−]?\d{1,3}(?:,\d{3})+|[-−]?\d+)(?:\.\d+)?)"
# Possessive quantifiers (Python 3.11+) keep these linear on adversarial whitespace.
_MARKER = re.compile(
    r"(?:answer|result|total)(?:\s++(?:is|was|would be|equals))?[\s:=]*+"
    r"(?:(?:about|approximately|roughly|around)\s++)?\$?\s*+" + _NUM,
    re.I,
)
_HASHES = re.compile(r"####\s*+\$?" + _NUM)


def final_number(text: str) -> float | None:
    """The number a response commits to: after 'answer'/'total'/'####', else the last one."""
    text = clean(text)
    for pattern in (_MARKER, _HASHES):
        marked = list(pattern.finditer(text))
        if marked:
            value = to_number(marked[-1].group(1))
            if value is not None:
                return value
    found = numbers_in(text)
    if found:
        return found[-1]
    spelled = [w.lower() for w in words(text) if w.lower() in NUMBER_WORDS]
    return float(NUMBER_WORDS.index(spelled[-1])) if spelled else None


_DECODER = json.JSONDecoder()


def parse_json_object(text: str) -> dict | None:
    """The first JSON object in a response (bare, fenced, or inside prose), else None."""
    body = clean(text)
    start = body.find("{")
    for _ in range(20):  # bounded: a few candidate openings, never a scan of garbage
        if start < 0:
            return None
        try:
            value, _end = _DECODER.raw_decode(body, start)
        except (ValueError, RecursionError):
            start = body.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = body.find("{", start + 1)
    return None


def drop_preamble(text: str) -> str:
    """Remove a lead-in line such as 'Here is the text in uppercase:' before the answer."""
    lines = text.split("\n")
    if len(lines) > 1 and lines[0].rstrip().endswith(":"):
        return "\n".join(lines[1:]).strip()
    return text


_ITEM_PREFIX = re.compile(r"^\s*(?:[-*•+]|\d{1,3}[.)]|[a-zA-Z][.)])\s+")


def split_items(text: str) -> list[str]:
    """Items of a list answer: comma/semicolon separated or one per line (bullets ok).

    A preamble line ending in ':' ("Here is the list:") is ignored.
    """
    lines = [ln for ln in clean(text).splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.rstrip().endswith(":")]
    raw: list[str] = []
    for line in lines:
        raw.extend(re.split(r"\s*[,;]\s*|\s+and\s+", _ITEM_PREFIX.sub("", line)))
    if raw and ": " in raw[0]:  # "Sorted: apple, ..." -> "apple"
        raw[0] = raw[0].rsplit(": ", 1)[1]
    items = [item.strip().strip("\"'`“”*").strip().rstrip(".").strip() for item in raw]
    return [item for item in items if item]
