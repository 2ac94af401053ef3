"""Text-manipulation families with exact ground truth: case, transforms, extraction, counts."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from mlx_instruct.data.tasks.core import (
    CheckResult,
    Family,
    append,
    attach,
    clean,
    drop_preamble,
    expand,
    failed,
    final_number,
    pick,
    tally,
    words,
)
from mlx_instruct.data.tasks.lexicon import (
    CITIES,
    OCCUPATIONS,
    SORT_WORDS,
    clause,
    passage,
)


class LetterCase(Family):
    """Rewrite given text in upper or lower case (multi-step: also drop punctuation)."""

    name = "letter_case"
    CASES = {
        "upper": "[upper-case|uppercase|capital|block capital] letters",
        "lower": "[lower-case|lowercase|small] letters",
    }
    TEMPLATES = {
        "imperative": [
            "[Rewrite|Copy out|Write out|Reproduce|Retype] the [following|given|next] {noun} [in|using] [all |only |]{case}:",
            "[Convert|Change|Turn|Transform] [this|the following|the given] {noun} [to|into] {case}:",
        ],
        "interrogative": [
            "How would the [following|given|next] {noun} look [written|typed|printed] [entirely|completely|only] in {case}?",
            "[Can|Could|Would] you [rewrite|retype|copy out|reproduce] [this|the following|the given] {noun} using only {case}?",
        ],
        "declarative": [
            "The {noun} [below|that follows|given below] [should|needs to|must] be [rewritten|retyped|reproduced] in {case}.",
            "[This|The following|The given] {noun} [needs to|should|must] be [converted|changed|turned] [to|into] {case}:",
        ],
    }

    def build(
        self, rng: random.Random, phrasing: str, difficulty: str
    ) -> tuple[str, str, str, dict]:
        text = passage(rng, rng.randint(1, 3))
        mode = pick(rng, ["upper", "lower"])
        expected = text.upper() if mode == "upper" else text.lower()
        case = expand(rng, self.CASES[mode], cap=False)
        noun = "[sentence|line|text]" if text.count(". ") == 0 else "[text|passage|snippet]"
        template = pick(rng, self.TEMPLATES[phrasing]).replace("{noun}", noun)
        instruction = expand(rng, template, case=case)
        strip = difficulty == "multi_step"
        if strip:
            expected = re.sub(r"[^\w\s'-]|(?<!\w)['-]|['-](?!\w)", "", expected)
            expected = re.sub(r"\s+", " ", expected).strip()
            tail = "[Remove|Drop|Strip out|Delete|Leave out] [all|every bit of|any] punctuation [as well|too|at the same time|while you are at it]."
            instruction = append(instruction, expand(rng, tail))
        instruction, context = attach(rng, instruction, text)
        return (
            instruction,
            context,
            expected,
            {"mode": mode, "expected": expected, "strip_punct": strip},
        )

    def _check(self, c: Mapping[str, Any], response: str) -> CheckResult:
        text = drop_preamble(clean(response))
        letters = [ch for ch in text if ch.isalpha()]
        if not letters:
            return failed("no text", 2 + bool(c.get("strip_punct")))
        wrong = sum(ch.islower() if c["mode"] == "upper" else ch.isupper() for ch in letters)
        same = [w.lower() for w in words(text)] == [w.lower() for w in words(c["expected"])]
        checks = [
            (wrong == 0, f"{wrong} letters in the wrong case"),
            (same, "words differ from the input"),
        ]
        if c.get("strip_punct"):
            left = re.sub(r"(?<=\w)['’-](?=\w)", "", text.rstrip("."))
            checks.append((not re.search(r"[^\w\s]", left), "punctuation left in"))
        return tally(True, checks)


class TextTransform(Family):
    """Reverse word order, spell words backwards, or replace a word (exact ground truth)."""

    name = "text_transform"
    TASKS = {
        "reverse_words": {
            "imperative": "[Reverse|Flip|Invert] the order of the words in [this|the following|the given|the next] sentence:",
            "interrogative": "What [is|does] [this|the following|the given] sentence [look like |read like |]with its words in reverse order?",
            "declarative": "The words of the [following|given|next] sentence [should|need to|must] be [written|put|listed] in reverse order:",
        },
        "spell_backwards": {
            "imperative": "[Spell|Write|Type] the {ws} {w} backwards[, letter by letter|].",
            "interrogative": "How [is|would you spell|do you write] the {ws} {w} [spelled backwards|in reverse|backwards]?",
            "declarative": "The {ws} {w} [should|must] be [spelled|written] backwards.",
        },
        "replace_word": {
            "imperative": "[Replace|Swap|Substitute] every [occurrence|instance|use] of '{a}' with '{b}' in [this|the following|the given] [text|sentence]:",
            "interrogative": "What does [this|the following|the given] [text|sentence] say if every '{a}' is [replaced with|swapped for|changed to] '{b}'?",
            "declarative": "In the [text|sentence] [below|that follows|given below], every '{a}' [should|must|needs to] [become|be replaced by|turn into] '{b}':",
        },
    }
    POOL = sorted({w.lower() for w in (*SORT_WORDS, *OCCUPATIONS, *CITIES)})

    def build(
        self, rng: random.Random, phrasing: str, difficulty: str
    ) -> tuple[str, str, str, dict]:
        task = pick(rng, sorted(self.TASKS))
        template = self.TASKS[task][phrasing]
        multi = difficulty == "multi_step"
        context = ""
        if task == "spell_backwards":
            pair = rng.sample(self.POOL, 2 if multi else 1)
            shown = " and ".join(f"'{w}'" for w in pair)
            instruction = expand(rng, template, ws="words" if multi else "word", w=shown)
            if multi:
                instruction = append(
                    instruction,
                    expand(
                        rng,
                        "[Write|Give|Put] the two results [separated by a comma|with a comma between them], in the same order.",
                    ),
                )
            expected = ", ".join(x[::-1] for x in pair)
        else:
            cl = clause(rng)
            sentence = cl.text
            if task == "reverse_words":
                expected = " ".join(reversed(words(sentence)))
                instruction = expand(rng, template)
            else:
                a = words(cl.obj)[-1]  # the object's head noun: the swap reads naturally
                b = pick(rng, [x for x in SORT_WORDS if x not in sentence.lower()])
                instruction = expand(rng, template, a=a, b=b)
                expected = re.sub(rf"\b{re.escape(a)}\b", b, sentence)
            if multi:
                expected = expected.upper()
                tail = "[Then|After that,|Finally,] [write|give|return] the result in [capital letters|upper case|block capitals]."
                instruction = append(instruction, expand(rng, tail))
            instruction, context = attach(rng, instruction, sentence)
        c = {
            "task": task,
            "expected": expected,
            "case_sensitive": multi and task != "spell_backwards",
        }
        return instruction, context, expected, c

    def _check(self, c: Mapping[str, Any], response: str) -> CheckResult:
        got, want = words(drop_preamble(clean(response))), words(c["expected"])
        if not got:
            return failed("empty answer", 1 + bool(c.get("case_sensitive")))
        if c["task"] == "spell_backwards" and len(got) > len(want):  # "It is: tnaleps"
            got = got[-len(want) :]
        same = [w.lower() for w in got] == [w.lower() for w in want]
        checks = [(same, f"got {' '.join(got)[:60]!r}")]
        if c.get("case_sensitive"):
            checks.append((got == want, "wrong letter case"))
        return tally(True, checks)


# What a count task asks: (context, answer, the counting shown in a multi-step answer, the
# thing counted as an imperative / a question / a noun phrase). Each draws from the rng in a
# fixed order, so a seed gives the same tasks.
Phrases = tuple[str, str, str]


def _occurrences(
    rng: random.Random, mode: str, context: str, toks: list[str], text: str, case: str
) -> tuple[int, list[str], Phrases]:
    """Times a letter (mode "letter") or the most frequent word ("word") appears."""
    if mode == "letter":
        target = pick(rng, [ch for ch in "aeinorstlhd" if ch in context.lower()])
        hits = [(t, t.lower().count(target)) for t in toks if target in t.lower()]
        unit = "letter"
        work = [f"{t} ({k})" for t, k in hits]
    else:
        counts = {w: sum(t.lower() == w for t in toks) for w in {t.lower() for t in toks}}
        target = pick(rng, sorted(w for w, k in counts.items() if k == max(counts.values())))
        hits = [(t, 1) for t in toks if t.lower() == target]
        unit = "word"
        work = [f"{t} ({i})" for i, (t, _) in enumerate(hits, 1)]
    return (
        sum(k for _, k in hits),
        work,
        (
            f"how many times the {unit} '{target}' appears in {text}, {case}",
            f"times does the {unit} '{target}' appear in {text}, {case}",
            f"times the {unit} '{target}' appears in {text}, {case}",
        ),
    )


def _what_to_count(
    rng: random.Random, mode: str, context: str, toks: list[str], text: str, case: str
) -> tuple[str, int, list[str], Phrases]:
    if mode in ("letter", "word"):
        return context, *_occurrences(rng, mode, context, toks, text, case)
    if mode == "long_words":
        cut = pick(rng, [4, 5, 6])
        work = [t for t in toks if len(t) > cut]
        return (
            context,
            len(work),
            work,
            (
                f"the words [longer than|with more than] {cut} letters in {text}",
                f"words in {text} [have more than|are longer than] {cut} letters",
                f"words [with more than|longer than] {cut} letters in {text}",
            ),
        )
    if mode == "words":
        words_asked = (
            f"the words in {text}",
            f"words [are there|appear] in {text}",
            f"words in {text}",
        )
        return context, len(toks), [], words_asked
    items = rng.sample(SORT_WORDS, rng.randint(4, 14))
    lst = "[this|the following|the given] [list|comma-separated list]"
    asked = (f"the items in {lst}", f"items are [in|on] {lst}", f"items in {lst}")
    return ", ".join(items), len(items), [], asked


class Counting(Family):
    """Count letters, word occurrences or list items; the checker reads the final number."""

    name = "counting"
    ASK = {
        "imperative": "{verb} {what}.",
        "interrogative": "How many {what_q}?",
        "declarative": "[The answer|The reply|Your answer] [should be|must be|is] the number of {what_n}.",
    }
    TEXT = "the {noun} [below|that follows|given below|shown below]"
    CASE = "[ignoring case|regardless of case|counting capitals too|in upper or lower case]"

    def build(
        self, rng: random.Random, phrasing: str, difficulty: str
    ) -> tuple[str, str, str, dict]:
        multi = difficulty == "multi_step"
        mode = pick(
            rng, ["letter", "word", "long_words"] if multi else ["letter", "words", "items"]
        )
        context = passage(rng, rng.randint(2, 3) if multi else 1)
        toks = words(context)
        noun = "[sentence|line|text]" if not multi else "[text|passage|snippet]"
        text = expand(rng, self.TEXT.format(noun=noun), cap=False)
        case = expand(rng, self.CASE, cap=False)
        context, answer, work, (what, what_q, what_n) = _what_to_count(
            rng, mode, context, toks, text, case
        )
        verb = (
            "[Count|Work out|Find out|Determine]"
            if what.startswith("how many")
            else "[Count|Tally up]"
        )
        instruction = expand(
            rng, self.ASK[phrasing].format(verb=verb, what=what, what_q=what_q, what_n=what_n)
        )
        if multi:
            tail = "[Show your counting|Show your work|List what you count], then [give|put|write] the total on the last line."
            output = f"{', '.join(work) or 'None found'}.\nAnswer: {answer}"
        else:
            tail = "[Reply|Answer|Respond] with [just|only] the [number|count|total]."
            output = str(answer)
        return append(instruction, expand(rng, tail)), context, output, {"answer": answer}

    def _check(self, c: Mapping[str, Any], response: str) -> CheckResult:
        value = final_number(response)
        if value is None:
            return failed("no number in the answer")
        return tally(True, [(value == c["answer"], f"answered {value:g}, expected {c['answer']}")])
