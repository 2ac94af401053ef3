"""Numeric families: arithmetic word problems and unit conversions.

The checker reads the number the answer commits to (after "answer is", "=", "####", next
to the asked unit, or the last number), so worked solutions are welcome.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from typing import Any

from mlx_instruct.data.tasks.core import (
    NUMBER,
    CheckResult,
    Family,
    clean,
    expand,
    failed,
    final_number,
    pick,
    tally,
    to_number,
    wordlist,
)
from mlx_instruct.data.tasks.lexicon import (
    CITIES,
    FIRST_NAMES,
)

ITEMS = wordlist("""pencils stickers marbles cookies apples stamps postcards beads eggs shells tickets
cupcakes buttons crayons candles batteries lemons badges envelopes seed packets""")


HOLDERS = wordlist("packs boxes bags jars crates tins trays cartons")
EVENTS = wordlist(
    """a school fair|a birthday party|a craft market|the weekend|a camping trip|a charity sale|
a family picnic|the holidays|a science club meeting|a street party""",
    "|",
)


# A problem builder draws its numbers, then words the question through `say` (which draws
# the wording's alternatives): (word problem, worked solution, answer). Each draws from the
# rng in a fixed order, so the same seed gives the same tasks.
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


class Arithmetic(Family):
    """Word problems with integer answers (one step, or two to three steps)."""

    name = "arithmetic"
    TEMPLATES = {
        "imperative": [
            "[Solve|Work through|Answer] the [following|given|next] [word problem|problem|question] and [give|state|write] the final answer as a number.",
            "[Work out|Calculate|Figure out] the answer to [this|the following] problem, [showing each step|step by step|showing your working]:",
        ],
        "interrogative": [
            "What is the answer to the [following|given|next] [word problem|problem|question]?",
            "[Can|Could|Would] you solve [this|the following] problem step by step?",
        ],
        "declarative": [
            "The [following|given|next] [word problem|problem] [should|needs to|must] be solved, ending with the [numeric|final|numerical] answer.",
            "[This|The following] problem [needs|requires|calls for] a worked solution and a final number:",
        ],
    }

    def build(
        self, rng: random.Random, phrasing: str, difficulty: str
    ) -> tuple[str, str, str, dict]:
        text, work, answer = problem(rng, difficulty == "multi_step")
        instruction, context = expand(rng, pick(rng, self.TEMPLATES[phrasing])), text
        if rng.random() < 0.3:
            instruction, context = (
                text + " " + expand(rng, "[Give|State|Write] the final answer as a number."),
                "",
            )
        return instruction, context, f"{work} The answer is {answer}.", {"answer": answer}

    def _check(self, c: Mapping[str, Any], response: str) -> CheckResult:
        value = final_number(response)
        if value is None:
            return failed("no number in the answer")
        return tally(True, [(value == c["answer"], f"answered {value:g}, expected {c['answer']}")])


UNITS: dict[str, list[str]] = {
    "kilometres": ["km", "kilometre", "kilometres", "kilometer", "kilometers"],
    "miles": ["mi", "mile", "miles"],
    "kilograms": ["kg", "kgs", "kilogram", "kilograms", "kilo", "kilos"],
    "pounds": ["lb", "lbs", "pound", "pounds"],
    "litres": ["l", "litre", "litres", "liter", "liters"],
    "US gallons": ["gal", "gallon", "gallons", "us gallons", "us gal"],
    "metres": ["m", "metre", "metres", "meter", "meters"],
    "feet": ["ft", "foot", "feet"],
    "centimetres": ["cm", "centimetre", "centimetres", "centimeter", "centimeters"],
    "inches": ["inch", "inches"],
    "degrees Celsius": ["°c", "celsius", "degrees celsius", "degrees c", "c"],
    "degrees Fahrenheit": ["°f", "fahrenheit", "degrees fahrenheit", "degrees f", "f"],
    "grams": ["g", "gram", "grams"],
    "ounces": ["oz", "ounce", "ounces"],
}


CONVERSIONS: list[tuple[str, str, Callable[[float], float]]] = [
    ("kilometres", "miles", lambda x: x * 0.621371),
    ("miles", "kilometres", lambda x: x * 1.609344),
    ("kilograms", "pounds", lambda x: x * 2.204623),
    ("pounds", "kilograms", lambda x: x * 0.453592),
    ("litres", "US gallons", lambda x: x * 0.264172),
    ("metres", "feet", lambda x: x * 3.28084),
    ("feet", "metres", lambda x: x * 0.3048),
    ("centimetres", "inches", lambda x: x / 2.54),
    ("inches", "centimetres", lambda x: x * 2.54),
    ("grams", "ounces", lambda x: x * 0.035274),
    ("degrees Celsius", "degrees Fahrenheit", lambda x: x * 9 / 5 + 32),
    ("degrees Fahrenheit", "degrees Celsius", lambda x: (x - 32) * 5 / 9),
]


# plausible magnitudes per source unit, so "walks 187 km every day" never appears
RANGES = {
    "kilometres": (1, 40),
    "miles": (1, 30),
    "kilograms": (0.5, 60),
    "pounds": (1, 120),
    "litres": (0.5, 60),
    "grams": (10, 900),
    "degrees Celsius": (-20, 45),
    "degrees Fahrenheit": (-5, 110),
}


DIMENSION = {
    u: "length" for u in ("kilometres", "miles", "metres", "feet", "centimetres", "inches")
}
DIMENSION.update({u: "mass" for u in ("kilograms", "pounds", "grams", "ounces")}, litres="volume")


ROUTINES = {
    "length": [
        "{name} [walks|runs|cycles|swims] {v} {u} every day. Over {k} days, how far is that in {t}?",
        "A [ribbon|rope|cable|plank] is cut into {k} pieces, each {v} {u} long. What is the total length in {t}?",
    ],
    "mass": [
        "A {box} weighs {v} {u}. What do {k} such {box}s weigh together, in {t}?",
        "{name} buys {k} bags of [flour|rice|sugar|apples] that weigh {v} {u} each. What is the total weight in {t}?",
    ],
    "volume": [
        "Each of {k} [bottles|jugs|buckets|cans] holds {v} {u}. What is their total volume in {t}?",
        "{name} [fills|uses|pours out] {k} [watering cans|kettles|tanks] of {v} {u} each. How much is that in {t}?",
    ],
}


def unit_regex(unit: str) -> str:
    return "|".join(re.escape(a) for a in sorted(UNITS[unit], key=len, reverse=True))


class UnitConversion(Family):
    """Convert a quantity between units, rounded; checked within a stated tolerance.

    Tolerance = max(one unit in the last requested decimal place, 0.5% of the value), so a
    model that uses 1.6 km per mile passes while a wrong conversion does not.
    """

    name = "unit_conversion"
    TEMPLATES = {
        "imperative": [
            "[Convert|Change|Turn] {v} {u} [to|into] {t}.",
            "[Express|Give|Write] {v} {u} in {t}.",
            "{ctx} [Convert|Express|Give] that in {t}.",
        ],
        "interrogative": [
            "How many {t} [is|are|make] {v} {u}?",
            "What is {v} {u} [in|when converted to] {t}?",
            "{ctx} What is that in {t}?",
        ],
        "declarative": [
            "{v} {u} [should|needs to|must] be [converted|changed] to {t}.",
            "The value of {v} {u} in {t} is [needed|required|wanted].",
            "{ctx} That [should|needs to] be [converted to|expressed in] {t}.",
        ],
    }
    CONTEXT = {
        "length": [
            "[The trail|The running route|The bike path|The walk to school|The canal towpath] is {v} {u} long.",
            "{name} [ran|cycled|walked|hiked] {v} {u} [today|on Sunday|this morning|last weekend].",
        ],
        "mass": [
            "{name}'s [suitcase|parcel|dog|bag of flour|backpack] weighs {v} {u}.",
            "The [box of books|watermelon|bag of potatoes|toolbox] weighs {v} {u}.",
        ],
        "volume": ["The [fish tank|water butt|jug|paddling pool|soup pot] holds {v} {u}."],
        "temperature": [
            "[The oven|The pool|The soup|The air outside|Yesterday's high] was {v} {u}.",
            "The thermometer in {city} showed {v} {u} [at noon|this morning|last night].",
        ],
    }

    def build(
        self, rng: random.Random, phrasing: str, difficulty: str
    ) -> tuple[str, str, str, dict]:
        src, dst, fn = pick(rng, CONVERSIONS)
        lo, hi = RANGES.get(src, (1, 250))
        v = round(rng.uniform(lo, hi), 1)
        decimals = rng.randint(1, 2)
        name = pick(rng, FIRST_NAMES)
        if difficulty == "multi_step" and "degrees" not in src:
            k = rng.randint(2, 9)
            box = pick(rng, ["crate", "sack", "parcel", "suitcase"])
            template = pick(rng, ROUTINES[DIMENSION[src]])
            text = expand(rng, template, name=name, v=v, u=src, k=k, t=dst, box=box)
            exact = fn(v * k)
            work = f"{k} x {v} = {round(k * v, 1)} {src}, which is about "
        else:
            dim = DIMENSION.get(src, "temperature")
            ctx = expand(
                rng, pick(rng, self.CONTEXT[dim]), name=name, v=v, u=src, city=pick(rng, CITIES)
            )
            text = expand(rng, pick(rng, self.TEMPLATES[phrasing]), v=v, u=src, t=dst, ctx=ctx)
            exact, work = fn(v), f"{v} {src} is about "
        answer = round(exact, decimals)
        need_unit = difficulty == "multi_step"
        rounding = "[Round|Give the result|Round the answer] to {d} decimal place" + (
            "s" if decimals > 1 else ""
        )
        rounding += (
            " and [include|state|give] the unit [in your answer|as well|too]." if need_unit else "."
        )
        text += " " + expand(rng, rounding, d=decimals)
        c = {
            "expected": answer,
            "tolerance": max(10**-decimals, abs(answer) * 0.005),
            "unit": dst,
            "need_unit": need_unit,
        }
        return text, "", f"{work}{answer:.{decimals}f} {dst}.", c

    def _check(self, c: Mapping[str, Any], response: str) -> CheckResult:
        text = clean(response).lower()
        near = list(re.finditer(rf"({NUMBER.pattern})\s*(?:{unit_regex(c['unit'])})(?![\w])", text))
        value = to_number(near[-1].group(1)) if near else final_number(text)
        total = 1 + bool(c.get("need_unit"))
        if value is None:
            return failed("no number in the answer", total)
        checks = [
            (
                abs(value - c["expected"]) <= c["tolerance"] + 1e-9,
                f"{value:g} not within {c['tolerance']:g} of {c['expected']}",
            )
        ]
        if c.get("need_unit"):
            checks.append((bool(near), f"unit '{c['unit']}' missing"))
        return tally(True, checks)
