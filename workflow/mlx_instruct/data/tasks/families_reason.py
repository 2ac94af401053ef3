"""Date conversion and yes/no questions: exact answers that need a step of reasoning."""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Callable, Mapping
from typing import Any

from mlx_instruct.data.tasks.core import (
    CheckResult,
    Family,
    append,
    clean,
    expand,
    failed,
    pick,
    tally,
    wordlist,
    words,
)
from mlx_instruct.data.tasks.lexicon import (
    CITIES,
    FIRST_NAMES,
    SORT_WORDS,
    clause,
)

MONTHS = wordlist(
    "January February March April May June July August September October November December"
)


WEEKDAYS = wordlist("Monday Tuesday Wednesday Thursday Friday Saturday Sunday")
_MON = "(" + "|".join(MONTHS) + ")"
FORMATS: dict[str, tuple[str, str, Callable[[dt.date], str]]] = {
    # name -> (how it is described, regex, formatter)
    "iso": ("YYYY-MM-DD", r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b", lambda d: d.isoformat()),
    "dmy": ("DD/MM/YYYY", r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b", lambda d: d.strftime("%d/%m/%Y")),
    "mdy": ("MM/DD/YYYY", r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b", lambda d: d.strftime("%m/%d/%Y")),
    "long": (
        "Month D, YYYY (like January 7, 2020)",
        rf"\b{_MON}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b",
        lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    ),
    "dmy_long": (
        "D Month YYYY (like 7 January 2020)",
        rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+{_MON},?\s+(\d{{4}})\b",
        lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    ),
}


def dates_in(fmt: str, text: str) -> list[dt.date | None]:
    """Dates written in `fmt` (None where the parts are not a real date)."""
    out: list[dt.date | None] = []
    for m in re.finditer(FORMATS[fmt][1], text, re.I):
        g = m.groups()
        parts = {"iso": (g[0], g[1], g[2]), "dmy": (g[2], g[1], g[0]), "mdy": (g[2], g[0], g[1])}
        if fmt == "long":
            parts[fmt] = (g[2], str(MONTHS.index(g[0].capitalize()) + 1), g[1])
        if fmt == "dmy_long":
            parts[fmt] = (g[2], str(MONTHS.index(g[1].capitalize()) + 1), g[0])
        y, mo, d = (int(x) for x in parts[fmt])
        try:
            out.append(dt.date(y, mo, d))
        except ValueError:
            out.append(None)
    return out


class DateFormat(Family):
    """Convert a date between formats (multi-step: shift it by days, or name the weekday)."""

    name = "date_format"
    TEMPLATES = {
        "imperative": [
            "[Convert|Rewrite|Reformat|Change] the date {src} [to|into] the format {fmt}.",
            "{ctx} [Write|Give|Rewrite|Express] that date in the format {fmt}.",
        ],
        "interrogative": [
            "What is {src} [written|expressed|formatted] [in|as] the format {fmt}?",
            "{ctx} How [is that date written|would that date be written|do you write that date] in the format {fmt}?",
        ],
        "declarative": [
            "The date {src} [should|needs to|must] be [rewritten|reformatted|expressed] in the format {fmt}.",
            "{ctx} That date [should|needs to|must] be [given|written|expressed] in the format {fmt}.",
        ],
    }
    CONTEXT = (
        "{name}'s [dentist appointment|flight to {city}|job interview|wedding|driving test|concert|piano recital|"
        "passport renewal|car service|first day at work|book club meeting|eye test] is [on|scheduled for|booked for|set for] {src}."
    )

    def build(
        self, rng: random.Random, phrasing: str, difficulty: str
    ) -> tuple[str, str, str, dict]:
        day = dt.date(1990, 1, 1) + dt.timedelta(days=rng.randrange(365 * 40))
        src_fmt, dst_fmt = rng.sample(sorted(FORMATS), 2)
        src = FORMATS[src_fmt][2](day)
        if src_fmt in ("dmy", "mdy"):
            src = f"{src} (written {FORMATS[src_fmt][0]})"
        ctx = expand(
            rng, self.CONTEXT, name=pick(rng, FIRST_NAMES), city=pick(rng, CITIES), src=src
        )
        text = expand(
            rng, pick(rng, self.TEMPLATES[phrasing]), src=src, ctx=ctx, fmt=FORMATS[dst_fmt][0]
        )
        target, weekday = day, None
        output = FORMATS[dst_fmt][2](day)
        if difficulty == "multi_step":
            if rng.random() < 0.5:
                shift = rng.choice([-1, 1]) * rng.randint(2, 45)
                target = day + dt.timedelta(days=shift)
                way = "[later|forward|ahead]" if shift > 0 else "[earlier|back]"
                text += " " + expand(
                    rng,
                    "[First|Before converting,|To begin,] move the date {k} days " + way + ".",
                    k=abs(shift),
                )
                output = f"{abs(shift)} days {'after' if shift > 0 else 'before'} that date is {FORMATS[dst_fmt][2](target)}."
            else:
                weekday = WEEKDAYS[day.weekday()]
                text += " " + expand(
                    rng,
                    "[Also|Additionally,|As well,] [say|state|name] which day of the week it [is|falls on].",
                )
                output = f"{output} ({weekday})"
        c = {"target_format": dst_fmt, "expected": target.isoformat(), "weekday": weekday}
        return text, "", output, c

    def _check(self, c: Mapping[str, Any], response: str) -> CheckResult:
        text = clean(response)
        found = dates_in(c["target_format"], text)
        total = 2 + bool(c.get("weekday"))
        if not found and not any(dates_in(f, text) for f in FORMATS):
            return failed("no date found", total)
        got = found[-1] if found else None
        checks = [
            (bool(found), f"no date in {FORMATS[c['target_format']][0]} format"),
            (
                got is not None and got.isoformat() == c["expected"],
                f"date {got} != {c['expected']}",
            ),
        ]
        if c.get("weekday"):
            named = {w for w in WEEKDAYS if re.search(rf"\b{w}\b", text, re.I)}
            checks.append((named == {c["weekday"]}, f"weekday {sorted(named)} != {c['weekday']}"))
        return tally(True, checks)


PALINDROMES = wordlist("level radar kayak rotor civic madam refer noon stats racecar deed solos")


def is_prime(n: int) -> bool:
    return n > 1 and all(n % d for d in range(2, int(n**0.5) + 1))


# A question builder draws from the rng in a fixed order (so a seed gives the same tasks)
# and returns (question, the same as a claim, truth, one-sentence reason).
Question = tuple[str, str, bool, str]


def _prime(rng: random.Random) -> Question:
    want = rng.random() < 0.5
    n = pick(rng, [x for x in range(2, 200) if is_prime(x) == want])
    d = next((k for k in range(2, n) if n % k == 0), None)
    why = f"{n} is divisible by {d}." if d else f"{n} has no divisors other than 1 and itself."
    return f"Is {n} a prime number", f"{n} is a prime number", d is None, why


def _even(rng: random.Random) -> Question:
    n = rng.randint(1, 9999)
    return (
        f"Is {n} an even number",
        f"{n} is an even number",
        n % 2 == 0,
        f"{n} ends in the digit {n % 10}.",
    )


def _palindrome(rng: random.Random) -> Question:
    w = pick(rng, PALINDROMES if rng.random() < 0.5 else SORT_WORDS)
    return (
        f"Is the word '{w}' a palindrome",
        f"the word '{w}' is a palindrome",
        w == w[::-1],
        f"Backwards it reads '{w[::-1]}'.",
    )


def _letter(rng: random.Random) -> Question:
    w, letter = pick(rng, SORT_WORDS), pick(rng, "abcdeghiklmnoprstuvwy")
    return (
        f"Does the word '{w}' contain the letter '{letter}'",
        f"the word '{w}' contains the letter '{letter}'",
        letter in w,
        f"'{w}' is spelled {'-'.join(w)}.",
    )


def _greater(rng: random.Random) -> Question:
    a, b = (
        round(rng.uniform(0, 20), rng.randint(0, 2)),
        round(rng.uniform(0, 20), rng.randint(0, 2)),
    )
    while a == b:
        b = round(b + 0.5, 2)
    return (
        f"Is {a:g} greater than {b:g}",
        f"{a:g} is greater than {b:g}",
        a > b,
        f"{a:g} is {'more' if a > b else 'less'} than {b:g}.",
    )


def _divisible(rng: random.Random) -> Question:
    k = rng.randint(3, 12)
    n = k * rng.randint(3, 40) + (0 if rng.random() < 0.5 else rng.randint(1, k - 1))
    return (
        f"Is {n} divisible by {k}",
        f"{n} is divisible by {k}",
        n % k == 0,
        f"{n} divided by {k} leaves a remainder of {n % k}.",
    )


def _sum_even(rng: random.Random) -> Question:
    a, b = rng.randint(10, 500), rng.randint(10, 500)
    return (
        f"Is the sum of {a} and {b} an even number",
        f"the sum of {a} and {b} is an even number",
        (a + b) % 2 == 0,
        f"{a} + {b} = {a + b}.",
    )


def _product(rng: random.Random) -> Question:
    a, b = rng.randint(3, 30), rng.randint(3, 30)
    c = a * b + rng.randint(-25, 25)
    return (
        f"Is the product of {a} and {b} greater than {c}",
        f"the product of {a} and {b} is greater than {c}",
        a * b > c,
        f"{a} x {b} = {a * b}.",
    )


def _sum_prime(rng: random.Random) -> Question:
    a, b = rng.randint(2, 90), rng.randint(2, 90)
    return (
        f"Is {a} + {b} a prime number",
        f"{a} + {b} is a prime number",
        is_prime(a + b),
        f"{a} + {b} = {a + b}, which is {'' if is_prime(a + b) else 'not '}prime.",
    )


def _longer(rng: random.Random) -> Question:
    w, v = rng.sample([x for x in SORT_WORDS], 2)
    while len(w) == len(v):
        v = pick(rng, SORT_WORDS)
    return (
        f"Is the word '{w}' longer than the word '{v}'",
        f"the word '{w}' is longer than the word '{v}'",
        len(w) > len(v),
        f"'{w}' has {len(w)} letters and '{v}' has {len(v)}.",
    )


def _sentence_words(rng: random.Random) -> Question:
    s = clause(rng).text
    n, k = len(words(s)), rng.randint(5, 11)
    return (
        f"Does the sentence '{s[:-1]}' contain more than {k} words",
        f"the sentence '{s[:-1]}' contains more than {k} words",
        n > k,
        f"The sentence has {n} words.",
    )


# The order of each dict is the order `pick` draws from: never reorder (it changes the data).
ONE_STEP: dict[str, Callable[[random.Random], Question]] = {
    "prime": _prime,
    "even": _even,
    "palindrome": _palindrome,
    "letter": _letter,
    "greater": _greater,
    "divisible": _divisible,
}
MULTI_STEP: dict[str, Callable[[random.Random], Question]] = {
    "sum_even": _sum_even,
    "product": _product,
    "sum_prime": _sum_prime,
    "longer": _longer,
    "sentence_words": _sentence_words,
}


def question(rng: random.Random, multi: bool) -> Question:
    """(question, the same as a claim, truth, one-sentence reason)."""
    kinds = MULTI_STEP if multi else ONE_STEP
    return kinds[pick(rng, list(kinds))](rng)


class YesNo(Family):
    """Yes/no questions with a verifiable answer; multi-step adds a computed step and a reason."""

    name = "yes_no"
    FORMS = {
        "interrogative": ["{q}?"],
        "imperative": [
            "[Say|Tell me|State|Decide|Check] [whether|if] {claim}.",
            "[Confirm or deny|Verify] that {claim}.",
        ],
        "declarative": [
            "[The claim to check|The statement to judge|The thing to verify] is that {claim}.",
            "[Whether|If] {claim} [needs to be decided|is what I want to know|should be determined].",
        ],
    }

    def build(
        self, rng: random.Random, phrasing: str, difficulty: str
    ) -> tuple[str, str, str, dict]:
        multi = difficulty == "multi_step"
        q, claim, truth, why = question(rng, multi)
        if multi:
            tail = "[Answer|Reply|Respond] yes or no, then [give|add|offer] a [one-sentence|short|brief] reason."
        else:
            tail = "[Reply|Answer|Respond] with [only|just] 'yes' or 'no'."
        text = expand(rng, pick(rng, self.FORMS[phrasing]), q=q, claim=claim)
        answer = "yes" if truth else "no"
        output = f"{answer.capitalize()}. {why}" if multi else answer.capitalize()
        return (
            append(text, expand(rng, tail)),
            "",
            output,
            {"answer": answer, "only": not multi, "explain": multi},
        )

    def _check(self, c: Mapping[str, Any], response: str) -> CheckResult:
        toks = [t.lower() for t in words(clean(response))]
        total = 1 + bool(c.get("only")) + bool(c.get("explain"))
        said = {t for t in toks if t in ("yes", "no")}
        verdict = (
            toks[0]
            if toks and toks[0] in ("yes", "no")
            else (said.pop() if len(said) == 1 else None)
        )
        if verdict is None:
            return failed("no clear yes or no", total)
        checks = [(verdict == c["answer"], f"answered {verdict}, expected {c['answer']}")]
        if c.get("only"):
            checks.append((len(toks) == 1, "more than a bare yes/no"))
        if c.get("explain"):
            checks.append((len(toks) >= 4, "no reason given"))
        return tally(True, checks)
