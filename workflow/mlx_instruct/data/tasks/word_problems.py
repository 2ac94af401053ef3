"""Arithmetic word problems for the arithmetic family: numbers drawn, then worded.

A builder draws its numbers, then words the question through `say` (which draws the
wording's alternatives), and returns (word problem, worked solution, answer). Each draws from
the rng in a fixed order, so the same seed gives the same tasks. Long lines are templates.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from mlx_instruct.data.tasks.core import expand, pick, wordlist
from mlx_instruct.data.tasks.lexicon import CITIES, FIRST_NAMES

ITEMS = wordlist("""pencils stickers marbles cookies apples stamps postcards beads eggs shells tickets
cupcakes buttons crayons candles batteries lemons badges envelopes seed packets""")


HOLDERS = wordlist("packs boxes bags jars crates tins trays cartons")
EVENTS = wordlist(
    """a school fair|a birthday party|a craft market|the weekend|a camping trip|a charity sale|
a family picnic|the holidays|a science club meeting|a street party""",
    "|",
)


Problem = tuple[str, str, int]
Say = Callable[..., str]


def _add(rng: random.Random, say: Say, f: dict[str, str]) -> Problem:
    a, b = rng.randint(5, 90), rng.randint(3, 60)
    question = say(
        "{name} has {a} {item}. {name} [buys|gets|is given|finds] {b} more. How many {item} does {name} have [now|altogether|in total]?",
        a=a,
        b=b,
    )
    return question, f"{a} + {b} = {a + b}.", a + b


def _sub(rng: random.Random, say: Say, f: dict[str, str]) -> Problem:
    a = rng.randint(20, 150)
    b = rng.randint(2, a - 1)
    question = say(
        "{name} had {a} {item} and [gave|handed|passed] {b} of them to {friend}. How many {item} does {name} have [left|now]?",
        a=a,
        b=b,
    )
    return question, f"{a} - {b} = {a - b}.", a - b


def _mul(rng: random.Random, say: Say, f: dict[str, str]) -> Problem:
    a, b = rng.randint(2, 12), rng.randint(3, 24)
    question = say(
        "There are {a} {holder} with {b} {item} in each. How many {item} are there [in total|altogether]?",
        a=a,
        b=b,
    )
    return question, f"{a} x {b} = {a * b}.", a * b


def _div(rng: random.Random, say: Say, f: dict[str, str]) -> Problem:
    k, q = rng.randint(2, 9), rng.randint(2, 15)
    question = say(
        "{name} [shares|splits|divides] {t} {item} equally [among|between] {k} friends. How many {item} does each friend [get|receive]?",
        t=k * q,
        k=k,
    )
    return question, f"{k * q} / {k} = {q}.", q


def _buy_give(rng: random.Random, say: Say, f: dict[str, str]) -> Problem:
    a, b = rng.randint(2, 9), rng.randint(4, 20)
    c = rng.randint(1, a * b - 1)
    question = say(
        "{name} [buys|orders|picks up] {a} {holder} of {item} with {b} in each, then [gives|hands] {c} {item} to {friend}. How many {item} does {name} have left?",
        a=a,
        b=b,
        c=c,
    )
    solution = f"{f['name']} buys {a} x {b} = {a * b} {f['item']}. After giving away {c}, {a * b} - {c} = {a * b - c} remain."
    return question, solution, a * b - c


def _change(rng: random.Random, say: Say, f: dict[str, str]) -> Problem:
    a, p = rng.randint(2, 6), rng.randint(2, 15)
    bill = next(x for x in (20, 50, 100, 200) if x >= a * p)
    question = say(
        "A [shop|stall|kiosk] sells {item} for ${p} each. {name} [buys|takes] {a} of them and pays with a ${bill} [note|bill]. How much change, in dollars, does {name} [get|receive]?",
        a=a,
        p=p,
        bill=bill,
    )
    solution = f"The {f['item']} cost {a} x {p} = {a * p} dollars, so the change is {bill} - {a * p} = {bill - a * p} dollars."
    return question, solution, bill - a * p


def _pages(rng: random.Random, say: Say, f: dict[str, str]) -> Problem:
    a, d, b = rng.randint(8, 40), rng.randint(3, 9), rng.randint(5, 30)
    question = say(
        "{name} reads {a} pages [every day|each day|a day] for {d} days and then {b} pages on the [last|final] day. How many pages does {name} read [in total|altogether]?",
        a=a,
        d=d,
        b=b,
    )
    solution = f"{a} x {d} = {a * d} pages, plus {b} makes {a * d} + {b} = {a * d + b}."
    return question, solution, a * d + b


def _bus(rng: random.Random, say: Say, f: dict[str, str]) -> Problem:
    a = rng.randint(15, 60)
    b, c = rng.randint(1, a - 5), rng.randint(1, 20)
    e = rng.randint(1, a - b + c - 1)
    total = a - b + c - e
    question = say(
        "A [bus|tram|train] leaves the [depot|station|terminal] with {a} passengers. At the first stop {b} get off and {c} get on. At the second stop {e} get off. How many passengers are [on board|aboard|left] now?",
        a=a,
        b=b,
        c=c,
        e=e,
    )
    return question, f"{a} - {b} + {c} = {a - b + c}, then {a - b + c} - {e} = {total}.", total


def _remainder(rng: random.Random, say: Say, f: dict[str, str]) -> Problem:
    k, q = rng.randint(2, 8), rng.randint(3, 12)
    rem = rng.randint(1, k - 1)
    question = say(
        "{name} has {t} {item} and [shares|splits] them equally among {k} friends, keeping the {rem} left over. How many {item} does each friend get?",
        t=k * q + rem,
        k=k,
        rem=rem,
    )
    return question, f"{k * q + rem} - {rem} = {k * q}, and {k * q} / {k} = {q}.", q


def _garden(rng: random.Random, say: Say, f: dict[str, str]) -> Problem:
    rows, per = rng.randint(3, 12), rng.randint(4, 15)
    d, e = rng.randint(1, rows * per - 1), rng.randint(1, 20)
    total = rows * per - d + e
    question = say(
        "A [garden|allotment|greenhouse] has {rows} rows of {per} [tomato|pepper|bean|lettuce] plants. {name} [pulls out|removes|digs up] {d} plants and then plants {e} new ones. How many plants are there now?",
        rows=rows,
        per=per,
        d=d,
        e=e,
    )
    return question, f"{rows} x {per} = {rows * per}; {rows * per} - {d} + {e} = {total}.", total


def _wage(rng: random.Random, say: Say, f: dict[str, str]) -> Problem:
    w, h1, h2 = rng.randint(9, 30), rng.randint(2, 8), rng.randint(2, 8)
    d1, d2 = rng.sample(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"], 2)
    question = say(
        "{name} earns ${w} [per|an|for each] hour and works {h1} hours on {d1} and {h2} hours on {d2}. How much does {name} earn [in total|altogether], in dollars?",
        w=w,
        h1=h1,
        h2=h2,
        d1=d1,
        d2=d2,
    )
    solution = f"{h1} + {h2} = {h1 + h2} hours, and {h1 + h2} x {w} = {w * (h1 + h2)} dollars."
    return question, solution, w * (h1 + h2)


# The order of each dict is the order `pick` draws from: never reorder (it changes the data).
ONE_STEP: dict[str, Callable[[random.Random, Say, dict[str, str]], Problem]] = {
    "add": _add,
    "sub": _sub,
    "mul": _mul,
    "div": _div,
}
MULTI_STEP: dict[str, Callable[[random.Random, Say, dict[str, str]], Problem]] = {
    "buy_give": _buy_give,
    "change": _change,
    "pages": _pages,
    "bus": _bus,
    "remainder": _remainder,
    "garden": _garden,
    "wage": _wage,
}


def problem(rng: random.Random, multi: bool) -> Problem:
    """(word problem, worked solution ending in 'The answer is N.', N)."""
    name, friend = rng.sample(FIRST_NAMES, 2)
    f = {"name": name, "friend": friend, "item": pick(rng, ITEMS), "holder": pick(rng, HOLDERS)}
    intro = ""
    if rng.random() < 0.5:
        intro = (
            expand(
                rng,
                "{name} is [getting ready|preparing|shopping] for {event} in {city}.",
                name=name,
                event=pick(rng, EVENTS),
                city=pick(rng, CITIES),
            )
            + " "
        )

    def say(template: str, **more: Any) -> str:
        return intro + expand(rng, template, **f, **more)

    kinds = MULTI_STEP if multi else ONE_STEP
    return kinds[pick(rng, list(kinds))](rng, say, f)
