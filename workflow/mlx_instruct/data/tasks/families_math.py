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
)
from mlx_instruct.data.tasks.lexicon import (
    CITIES,
    FIRST_NAMES,
)
from mlx_instruct.data.tasks.word_problems import problem


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
