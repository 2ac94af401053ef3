"""JSON extraction and sorting: structured answers with one correct content.

Checkers parse leniently (code fences, prose around JSON, bullets or commas around a list)
and then compare values strictly.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

from mlx_instruct.data.tasks.core import (
    CheckResult,
    Family,
    append,
    attach,
    expand,
    failed,
    join_words,
    norm,
    parse_json_object,
    pick,
    split_items,
    tally,
    to_number,
    words,
)
from mlx_instruct.data.tasks.lexicon import (
    CITIES,
    FIRST_NAMES,
    SORT_WORDS,
    clause,
    phrase_variants,
)

FIELD_SETS = [
    ("subject", "verb", "object"),
    ("actor", "action", "target"),
    ("agent", "action", "object"),
    ("who", "did", "what"),
    ("doer", "action", "receiver"),
    ("subject", "predicate", "object"),
]


class JsonFields(Family):
    """Sentence -> JSON object with named fields (seed prompt 2's shape)."""

    name = "json_fields"
    TEMPLATES = {
        "imperative": [
            "[Convert|Turn|Transform|Rewrite] [this|the following|the given|the next] sentence into [JSON|a JSON object] with [fields|keys|the fields|the keys] {fields}:",
            "[Extract|Pull out|Identify|Pick out] the {fields} [from|in] the sentence [below|that follows|given below] and [return|output|give|write] them as [a JSON object|JSON|one JSON object].",
            "[Return|Produce|Write|Build|Create] a JSON object with the [keys|fields|properties] {fields} for [this|the following|the next] sentence:",
        ],
        "interrogative": [
            "What are the {fields} [of|in] the [following|given|next] sentence? [Answer|Reply|Respond] with a JSON object that [uses|has|contains] those [keys|fields|names].",
            "[Can|Could|Would] you [turn|convert|transform|rewrite] [this|the following|the next] sentence [into|as] JSON with the [fields|keys] {fields}?",
        ],
        "declarative": [
            "The sentence [below|that follows|given below] [should|needs to|must] be [converted|turned|rewritten] into a JSON object with the [fields|keys] {fields}.",
            "A JSON object with the [keys|fields] {fields}, [filled in|completed|populated] from the [following|given|next] sentence, is [required|needed|expected|wanted].",
        ],
    }
    MULTI = (
        " [Put|Store|Record] [where it happened|the location|the place it happened|the setting] [under|in|as] '{p}' and the "
        "[number of words|word count|count of words] [in|of] the sentence [under|in|as] '{w}'. [Output|Return|Reply with|Give] "
        "[only|just|nothing but] the JSON[ object|]."
    )

    def build(
        self, rng: random.Random, phrasing: str, difficulty: str
    ) -> tuple[str, str, str, dict]:
        multi = difficulty == "multi_step"
        cl = clause(rng, with_place=multi or rng.random() < 0.5)
        keys = list(pick(rng, FIELD_SETS))
        parts = [cl.subject, cl.verb, cl.obj]
        fields = {k: phrase_variants(v) for k, v in zip(keys, parts, strict=True)}
        fields[keys[1]] = [cl.verb]
        ref: dict[str, Any] = {k: strip_article(v) for k, v in zip(keys, parts, strict=True)}
        numbers: dict[str, int] = {}
        extra = ""
        if multi:
            pk, wk = (
                pick(rng, ["place", "location", "where"]),
                pick(rng, ["word_count", "num_words", "length"]),
            )
            fields[pk] = list(dict.fromkeys([norm(cl.place), *phrase_variants(cl.spot)]))
            numbers[wk] = len(words(cl.text))
            ref[pk], ref[wk] = strip_article(cl.spot), numbers[wk]
            keys += [pk, wk]
            extra = expand(rng, self.MULTI, p=pk, w=wk)
        text = expand(
            rng, pick(rng, self.TEMPLATES[phrasing]), fields=join_words([f"'{k}'" for k in keys])
        )
        text = append(text, extra)
        instruction, context = attach(rng, text, cl.text)
        c = {"fields": fields, "numbers": numbers, "exact_keys": True}
        return instruction, context, json.dumps(ref), c

    def _check(self, c: Mapping[str, Any], response: str) -> CheckResult:
        fields, numbers = c.get("fields", {}), c.get("numbers", {})
        total = bool(c.get("exact_keys")) + len(fields) + len(numbers)
        obj = parse_json_object(response)
        if obj is None:
            return failed("no JSON object found", total)
        got = {str(k).strip().lower(): v for k, v in obj.items()}
        checks = []
        if c.get("exact_keys"):
            want = set(fields) | set(numbers)
            checks.append((set(got) == want, f"keys {sorted(got)[:8]} != {sorted(want)}"))
        for key, variants in fields.items():
            value = got.get(key)
            ok = isinstance(value, str) and norm(value) in variants
            checks.append((ok, f"{key}={str(value)[:40]!r} not in {variants}"))
        for key, expected in numbers.items():
            value = got.get(key)
            number = to_number(value) if isinstance(value, str) else value
            ok = (
                isinstance(number, int | float)
                and not isinstance(number, bool)
                and number == expected
            )
            checks.append((ok, f"{key}={str(value)[:20]!r} != {expected}"))
        return tally(True, checks)


def strip_article(phrase: str) -> str:
    head, _, rest = phrase.partition(" ")
    return rest if head.lower() in ("the", "a", "an") and rest else phrase


# Sorting items: (items shown, how to sort in words, items expected, the multi-step extra
# instruction). Each draws from the rng in a fixed order, so a seed gives the same tasks.
SortItems = tuple[list, str, list, str]


def _names(rng: random.Random, pool: list[str], desc: bool, multi: bool) -> SortItems:
    items = rng.sample(pool, rng.randint(6, 12))
    how = (
        pick(rng, ["in reverse alphabetical order", "from Z to A"])
        if desc
        else pick(rng, ["alphabetically", "in alphabetical order", "from A to Z"])
    )
    keep = sorted(items, key=str.lower, reverse=desc)
    if not multi:
        return items, how, keep, ""
    cut = pick(rng, [k for k in (4, 5, 6) if sum(len(w) > k for w in pool) >= 6])
    while len([w for w in items if len(w) > cut]) < 2:
        items.append(pick(rng, [w for w in pool if len(w) > cut and w not in items]))
    keep = sorted((w for w in items if len(w) > cut), key=str.lower, reverse=desc)
    extra = expand(
        rng,
        "[First|Before sorting,|To begin,] [remove|drop|delete|leave out] every [item|entry|one] with {k} letters or fewer.",
        k=cut,
    )
    return items, how, keep, extra


def _numbers(rng: random.Random, integers: bool, desc: bool, multi: bool) -> SortItems:
    lo = -60 if multi else 1
    if integers:
        items = [rng.randint(lo, 999) for _ in range(rng.randint(6, 14))]
    else:
        items = [round(rng.uniform(lo, 100), 1) for _ in range(rng.randint(6, 12))]
    how = (
        pick(rng, ["from largest to smallest", "in descending order", "from highest to lowest"])
        if desc
        else pick(rng, ["from smallest to largest", "in ascending order", "from lowest to highest"])
    )
    keep = sorted(items, reverse=desc)
    if not multi:
        return items, how, keep, ""
    items += rng.sample(items, 2)
    keep = sorted(set(items), reverse=desc)
    extra = expand(
        rng,
        "[Remove|Drop|Delete|Leave out] [any|all] duplicates [first|before sorting|to begin with].",
    )
    return items, how, keep, extra


class Sorting(Family):
    """Sort a given list of words, names or numbers (multi-step: filter or de-duplicate first)."""

    name = "sorting"
    TEMPLATES = {
        "imperative": [
            "[Sort|Order|Arrange|Rearrange|Put] [these|the following|the given|the next] {kind} {how} and [write|give|return|list] them as a comma-separated list:",
            "[Arrange|Sort|Order|Reorder] the [following|given|listed] {kind} {how}, [separated|divided|split] by commas:",
        ],
        "interrogative": [
            "What do [these|the following|the given] {kind} look like when [sorted|ordered|arranged] {how}? [Give|Write|Return] a comma-separated list.",
            "[Can|Could|Would] you [sort|order|arrange] the [following|given|next] {kind} {how}? [Separate|Split|Divide] them with commas.",
        ],
        "declarative": [
            "The [following|given|next] {kind} [should|need to|must] be [sorted|ordered|arranged] {how} and [listed|written|given] with commas:",
            "A comma-separated list of [these|the following|the given] {kind}, [sorted|ordered|arranged] {how}, is [required|needed|expected]:",
        ],
    }
    POOLS = {"words": SORT_WORDS, "city names": CITIES, "first names": FIRST_NAMES}

    def build(
        self, rng: random.Random, phrasing: str, difficulty: str
    ) -> tuple[str, str, str, dict]:
        kind = pick(
            rng, ["words", "city names", "first names", "numbers", "numbers", "decimal numbers"]
        )
        desc = rng.random() < 0.4
        multi = difficulty == "multi_step"
        if kind in self.POOLS:
            items, how, keep, extra = _names(rng, self.POOLS[kind], desc, multi)
        else:
            items, how, keep, extra = _numbers(rng, kind == "numbers", desc, multi)
        shuffled = list(items)
        rng.shuffle(shuffled)
        text = expand(rng, pick(rng, self.TEMPLATES[phrasing]), kind=kind, how=how)
        text = append(text, extra)
        expected = [f"{v:g}" if isinstance(v, float) else str(v) for v in keep]
        shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in shuffled)
        instruction, context = attach(rng, text, shown)
        return (
            instruction,
            context,
            ", ".join(expected),
            {"kind": "numbers" if "numbers" in kind else "words", "expected": expected},
        )

    def _check(self, c: Mapping[str, Any], response: str) -> CheckResult:
        items = split_items(response)
        if len(items) < 2:
            return failed("no list of items found", 2)
        if c["kind"] == "numbers":
            got: list[Any] = [to_number(i) for i in items]
            want: list[Any] = [float(x) for x in c["expected"]]
            if None in got:
                return tally(True, [(False, "non-numeric items"), (False, "order not checked")])
        else:
            got, want = [i.lower() for i in items], [w.lower() for w in c["expected"]]
        same = sorted(got) == sorted(want)
        return tally(
            True, [(same, "items differ from the expected set"), (got == want, "wrong order")]
        )
