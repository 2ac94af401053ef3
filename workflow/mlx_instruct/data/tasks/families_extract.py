"""Extraction: pull emails, names, prices or dates out of a paragraph (exact ground truth).

The checker finds entities of the asked kind in the answer, so chatter around the list is
ignored while a missing or an extra entity is not.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from mlx_instruct.data.tasks.core import (
    CheckResult,
    Family,
    append,
    clean,
    expand,
    failed,
    numbers_in,
    pick,
    split_items,
    tally,
    wordlist,
)
from mlx_instruct.data.tasks.families_tables import PRODUCTS, a_an
from mlx_instruct.data.tasks.lexicon import (
    CITIES,
    email_of,
    person,
)

MONTHS = wordlist(
    "January February March April May June July August September October November December"
)


KIND_NAMES = {
    "email": "[email addresses|e-mail addresses|email contacts]",
    "name": "[full names of people|people's full names|names of the people|personal names]",
    "price": "[prices|dollar amounts|amounts of money|sums of money]",
    "date": "[dates|calendar dates]",
}


ORDER_NAMES = {
    "email": "[in alphabetical order|alphabetically|sorted from A to Z]",
    "name": "[in alphabetical order|alphabetically|sorted from A to Z]",
    "price": "[from lowest to highest|in ascending order|cheapest first]",
    "date": "[in chronological order|earliest first|from earliest to latest]",
}


SENTENCES = [
    "{p1} from {city} [asked for|requested|wanted] the [invoice|quote|contract|schedule] to be sent to {e1}.",
    "The {product} cost {price} when {p2} [bought|ordered|collected] it on {date}.",
    "{p1} and {p2} [met|had lunch|caught up] in {city} on {date} to [plan the launch|discuss the budget|review the designs|talk about the move].",
    "[Questions|Enquiries|Complaints] about the [order|booking|delivery] can go to {e2}, according to {p2}.",
    "On {date}, {p1} paid {price} for {a_product} and the receipt [went|was emailed] to {e1}.",
    "{p2} said the [hall|studio|meeting room|workshop] in {city} [charges|costs|rents for] {price} per [day|hour|session].",
    "The [team|group|committee] led by {p1} will reply from {e1} [before|by|no later than] {date}.",
    "A refund of {price} [reached|was paid to|was sent to] {p2} on {date}.",
    "{p3} [forwarded|shared|sent] the [minutes|slides|photos|notes] to {e3} [after|following] the [meeting|workshop|conference] in {city}.",
    "[Tickets|Seats|Places] for the [concert|lecture|tour|match] on {date} cost {price} each, {p3} [told|reminded] us.",
    "[If anything changes|For updates|In case of delays], [write to|contact|email] {e2} or call {p2} directly.",
    "{p1} [signed|renewed|cancelled] the [lease|contract|subscription] on {date} after [paying|settling] {price}.",
    "[Last year|Back in the spring|Earlier this month], {p3} moved from {city} and [started|opened] a [bakery|repair shop|design studio|bookshop].",
    "The [parcel|package|shipment] for {p2} [arrived|was delivered|turned up] on {date}, [two days late|right on time|a day early].",
    "[Please|Kindly] [copy|include] {e3} on [any|all] [messages|emails|replies] about the {product}.",
    "{p3} [thinks|believes|says] the {product} is [worth|a bargain at|overpriced at] {price}.",
]


EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]++@[\w-]++(?:\.[\w-]++)+")
DATE = re.compile(r"\b(" + "|".join(MONTHS) + r")\s+(\d{1,2}),?\s+(\d{4})\b", re.I)
ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
PRICE = re.compile(r"\$\s?(\d+(?:\.\d{1,2})?)")


def entities(kind: str, text: str) -> list[str]:
    """Canonical entity strings of one kind found in text (in order)."""
    if kind == "email":
        return [e.lower().rstrip(".") for e in EMAIL.findall(text)]
    if kind == "date":  # "March 4, 2022" as written, or the same day as 2022-03-04
        spans = [
            (m.start(), f"{m[1].capitalize()} {int(m[2])}, {m[3]}") for m in DATE.finditer(text)
        ]
        for m in ISO_DATE.finditer(text):
            month, day = int(m[2]), int(m[3])
            if 1 <= month <= 12 and 1 <= day <= 31:
                spans.append((m.start(), f"{MONTHS[month - 1]} {day}, {m[1]}"))
        return [value for _, value in sorted(spans)]
    if kind == "price":
        found = PRICE.findall(text) or [str(v) for v in numbers_in(text)]
        return [f"${float(v):.2f}" for v in found]
    return [" ".join(i.split()) for i in split_items(text)]


NAME = re.compile(r"[A-Z][\w'’-]+(?: [A-Z][\w'’-]+)+")


def names_in(text: str, expected: list[str]) -> list[str]:
    """Names a response lists: expected ones it contains (in order) plus other full names.

    Chatter around the list ("The names are ...") is ignored; an unexpected capitalised
    full name counts as an extra answer.
    """
    found: list[tuple[int, str]] = []
    for item in split_items(text):
        low = item.lower()
        hits = [(low.find(n.lower()), n) for n in expected if n.lower() in low]
        if hits:
            found.extend(sorted(hits))
        elif NAME.fullmatch(item):
            found.append((0, item))
    return [name for _, name in found]


def sort_key(kind: str, item: str) -> Any:
    if kind == "price":
        return float(item.strip("$"))
    if kind == "date":
        month, day, year = item.replace(",", "").split()
        return (int(year), MONTHS.index(month), int(day))
    return item.lower()


class Extraction(Family):
    """Extract emails / names / prices / dates from a paragraph (set or ordered)."""

    name = "extraction"
    TEMPLATES = {
        "imperative": [
            "[Extract|Pull out|Find|Pick out|Collect] [all|every one of] the {kind} [from|in] the [text|passage|paragraph|note] [below|that follows|given below].",
            "[List|Give|Write down|Note] [every one of|all of|each of] the {kind} [mentioned|that appear|given] in [this|the following|the next] [text|passage|message].",
        ],
        "interrogative": [
            "[Which|What] {kind} [appear|are mentioned|occur|show up] in the [following|given|next] [text|passage|paragraph|message]?",
            "[Can|Could|Would] you [list|find|extract|pick out] [all|each of] the {kind} [mentioned|given|that appear] [below|in this text|in the passage below]?",
        ],
        "declarative": [
            "[All the|Every one of the|Each of the] {kind} in the [text|passage|paragraph] [below|that follows] [should|must] be [extracted|listed|collected].",
            "The {kind} [mentioned|given|that appear] in [this|the following|the next] [passage|text|message] [need to be|should be|must be] [listed|pulled out|extracted].",
        ],
    }

    def build(
        self, rng: random.Random, phrasing: str, difficulty: str
    ) -> tuple[str, str, str, dict]:
        kind = pick(rng, sorted(KIND_NAMES))
        while True:
            people = [person(rng) for _ in range(3)]
            product = pick(rng, PRODUCTS)
            slots = {f"p{k}": p for k, p in enumerate(people, 1)} | {
                f"e{k}": email_of(p, rng) for k, p in enumerate(people, 1)
            }
            slots |= {"city": pick(rng, CITIES), "product": product, "a_product": a_an(product)}
            parts = []
            for template in rng.sample(SENTENCES, rng.randint(4, 6)):
                price = f"${rng.randint(5, 400)}.{pick(rng, ['00', '50', '25', '99', '75'])}"
                date = f"{pick(rng, MONTHS)} {rng.randint(1, 28)}, {rng.randint(2015, 2025)}"
                parts.append(expand(rng, template, **slots, price=price, date=date))
            context = " ".join(parts)
            found = (
                sorted((p for p in people if p in context), key=context.find)
                if kind == "name"
                else entities(kind, context)
            )
            found = list(dict.fromkeys(found))
            if len(found) >= 2 and len(set(people)) == 3:
                break
        ordered = difficulty == "multi_step"
        expected = sorted(found, key=lambda i: sort_key(kind, i)) if ordered else found
        instruction = expand(
            rng, pick(rng, self.TEMPLATES[phrasing]), kind=expand(rng, KIND_NAMES[kind], cap=False)
        )
        if ordered:
            tail = "[Write|Put|List] them one per line, " + ORDER_NAMES[kind] + "."
        else:
            tail = "[Separate them with commas.|Give them as a comma-separated list.|Use commas between them.]"
        instruction = append(instruction, expand(rng, tail))
        sep = "\n" if ordered else ", "
        c = {"kind": kind, "expected": expected, "ordered": ordered, "one_per_line": ordered}
        return instruction, context, sep.join(expected), c

    def _check(self, c: Mapping[str, Any], response: str) -> CheckResult:
        kind, want = c["kind"], list(c["expected"])
        text = clean(response)
        got = list(dict.fromkeys(names_in(text, want) if kind == "name" else entities(kind, text)))
        total = 2 + bool(c.get("ordered")) + bool(c.get("one_per_line"))
        if not got:
            return failed(f"no {kind} found", total)
        key = str.lower if kind in ("name", "email") else str
        got_k, want_k = [key(g) for g in got], [key(w) for w in want]
        missing = [w for w in want_k if w not in got_k]
        extra = [g for g in got_k if g not in want_k]
        checks = [(not missing, f"missing {missing[:3]}"), (not extra, f"extra {extra[:3]}")]
        if c.get("ordered"):
            checks.append((got_k == want_k, "wrong order"))
        if c.get("one_per_line"):
            lines = [ln for ln in text.splitlines() if ln.strip() and not ln.rstrip().endswith(":")]
            checks.append((len(lines) == len(got), "not one item per line"))
        return tally(True, checks)
