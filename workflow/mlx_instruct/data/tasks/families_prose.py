"""Free-text families with structural constraints: lengths, sentences, keywords, openings.

The content (facts about a subject) has no single right answer, so these checkers verify
only what the instruction pins down: word and sentence counts, required and forbidden
words, opening and closing words.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from mlx_instruct.data.tasks.core import (
    CheckResult,
    Family,
    clean,
    expand,
    failed,
    join_words,
    number_word,
    pick,
    sentences,
    tally,
    words,
)
from mlx_instruct.data.tasks.corpus import FACTS
from mlx_instruct.data.tasks.families_lists import list_lines
from mlx_instruct.data.tasks.lexicon import STOPWORDS


def plural(n: int, noun: str) -> str:
    return f"{number_word(n)} {noun}{'' if n == 1 else 's'}"


def quoted(items: list[str]) -> str:
    return join_words([f"'{w}'" for w in items])


def content_words(text: str) -> list[str]:
    """Distinct lowercase alphabetic words worth requiring (not stopwords, 4+ letters)."""
    seen = [w.lower() for w in words(text) if w.isalpha() and len(w) >= 4]
    return list(dict.fromkeys(w for w in seen if w not in STOPWORDS))


def word_pattern(word: str) -> re.Pattern[str]:
    """The word or a simple inflection of it (plural, past, -ing), as a whole word."""
    return re.compile(rf"(?<![\w-]){re.escape(word)}(?:s|es|d|ed|ing)?(?![\w-])", re.I)


def fact_passage(rng: random.Random, n: int) -> tuple[str, str, list[str], list[str]]:
    """(subject, keyword, n consecutive fact sentences, the subject's other sentences)."""
    subject = pick(rng, sorted(FACTS))
    keyword, sents = FACTS[subject]
    start = rng.randrange(len(sents) - n + 1)
    chosen = sents[start : start + n]
    return subject, keyword, chosen, [s for s in sents if s not in chosen]


class WordLimit(Family):
    """Answer within a word budget (at most / between / exactly N words)."""

    name = "word_limit"
    TEMPLATES = {
        "imperative": [
            "[Describe|Summarise|Explain|Characterise|Introduce] {subject} in {limit}.",
            "[Write|Share|Give] [one fact|a short note|a fact|one thing] about {subject} [using|in] {limit}.",
            "Tell me [something|one thing] about {subject} in {limit}.",
        ],
        "interrogative": [
            "What is [one|a single] [interesting|surprising|important|useful|key] [fact|point|thing] about {subject}? [Answer|Reply|Respond|Keep it] [in|to|within] {limit}.",
            "[Can|Could|Would] you [describe|summarise|explain|sum up] {subject} in {limit}?",
            "What should [people|a student|a visitor|everyone|a beginner] know about {subject}? [Reply|Answer|Respond] in {limit}.",
        ],
        "declarative": [
            "A [description|summary|short description|brief note] of {subject} in {limit} is [required|needed|wanted|requested].",
            "[The reply|Your reply|The answer|Your answer] [should|must|needs to] [describe|cover|be about|explain] {subject} in {limit}.",
            "One [fact|point|detail|observation] about {subject}, [stated|written|given|put] in {limit}, [would be ideal|is all I need|is enough|is what is wanted].",
        ],
    }

    def build(
        self, rng: random.Random, phrasing: str, difficulty: str
    ) -> tuple[str, str, str, dict]:
        subject, _, sents, _ = fact_passage(rng, rng.randint(1, 2))
        ref = " ".join(sents)
        wc = len(words(ref))
        c: dict[str, Any] = {"min_words": 1, "max_words": wc, "include": []}
        if difficulty == "multi_step":
            c["min_words"] = wc
            c["include"] = [pick(rng, content_words(ref))]
            limit = f"{pick(rng, ['exactly', 'precisely'])} {wc} words"
        elif rng.random() < 0.5:
            c["max_words"] = wc + rng.randint(0, 8)
            limit = f"{pick(rng, ['at most', 'no more than'])} {c['max_words']} words"
        else:
            c["min_words"], c["max_words"] = max(1, wc - rng.randint(2, 6)), wc + rng.randint(2, 8)
            limit = f"between {c['min_words']} and {c['max_words']} words"
        text = expand(rng, pick(rng, self.TEMPLATES[phrasing]), subject=subject, limit=limit)
        if c["include"]:
            text += " " + expand(
                rng,
                "[Use|Include|Work in|Make sure to use|Be sure to include] the word '{w}'.",
                w=c["include"][0],
            )
        return text, "", ref, c

    def _check(self, c: Mapping[str, Any], response: str) -> CheckResult:
        text = clean(response)
        wc = len(words(text))
        if wc == 0:
            return failed("empty answer", 1 + len(c.get("include", [])))
        lo, hi = c["min_words"], c["max_words"]
        checks = [(lo <= wc <= hi, f"{wc} words, expected {lo}..{hi}")]
        checks += [
            (bool(word_pattern(w).search(text)), f"missing '{w}'") for w in c.get("include", [])
        ]
        return tally(True, checks)


class SentenceCount(Family):
    """Exactly N sentences of prose (optionally with a required word, no list)."""

    name = "sentence_count"
    TEMPLATES = {
        "imperative": [
            "[Write|Give|Compose|Produce|Draft] [exactly |precisely |]{ns} about {subject}.",
            "[Describe|Explain|Introduce|Summarise|Discuss] {subject} [in|using] [exactly |precisely |]{ns}.",
        ],
        "interrogative": [
            "What [do you know|can you tell me|is worth knowing|should I know] about {subject}? [Reply|Answer|Respond] in [exactly |precisely |]{ns}.",
            "[Can|Could|Would] you [tell me about|describe|explain|summarise] {subject} in [exactly |]{ns}?",
        ],
        "declarative": [
            "[The answer|The reply|Your answer|Your reply] [should|must|needs to] [consist of|contain|be] [exactly |precisely |]{ns} about {subject}.",
            "A [short|brief|compact|plain] text of {ns} about {subject} is [required|needed|requested|expected].",
            "[Exactly|Precisely] {ns} about {subject} [would answer this|are needed|are expected|are what I want].",
        ],
    }

    def build(
        self, rng: random.Random, phrasing: str, difficulty: str
    ) -> tuple[str, str, str, dict]:
        n = rng.randint(1, 3) if difficulty == "simple" else rng.randint(2, 4)
        subject, _, sents, _ = fact_passage(rng, n)
        ref = " ".join(sents)
        text = expand(
            rng, pick(rng, self.TEMPLATES[phrasing]), ns=plural(n, "sentence"), subject=subject
        )
        c: dict[str, Any] = {"n": n, "include": [], "no_list": False}
        if difficulty == "multi_step":
            c["include"], c["no_list"] = [pick(rng, content_words(ref))], True
            text += " " + expand(
                rng,
                "[Mention|Use|Include] the word '{w}' and [write|keep it as|stick to] [plain prose|ordinary prose|running text], [not a list|with no bullet points|without any list].",
                w=c["include"][0],
            )
        return text, "", ref, c

    def _check(self, c: Mapping[str, Any], response: str) -> CheckResult:
        text = clean(response)
        found = sentences(text)
        total = 1 + len(c.get("include", [])) + bool(c.get("no_list"))
        if not found:
            return failed("no sentences found", total)
        checks = [(len(found) == c["n"], f"{len(found)} sentences, expected {c['n']}")]
        checks += [
            (bool(word_pattern(w).search(text)), f"missing '{w}'") for w in c.get("include", [])
        ]
        if c.get("no_list"):
            bullets, numbered, _, _ = list_lines(text)
            checks.append((not bullets and not numbered, "answer is a list"))
        return tally(True, checks)


class KeywordInclusion(Family):
    """Write about a subject using required words (and, multi-step, avoiding others)."""

    name = "keyword_inclusion"
    TEMPLATES = {
        "imperative": [
            "[Write|Compose|Draft|Produce] a [short passage|sentence or two|brief note|short paragraph] about {subject} that [uses|includes|contains|mentions] the {ws} {incl}.",
            "[Using|With|Including] the {ws} {incl}, [write|compose|draft] [one or two sentences|a short passage|a brief description] about {subject}.",
        ],
        "interrogative": [
            "[Can|Could|Would] you [write|compose|draft] a [sentence or two|short passage|brief note] about {subject} that [includes|uses|contains] the {ws} {incl}?",
            "What can you [tell me|say|share] about {subject}? [Be sure to|Make sure you|Please] [use|include|work in] the {ws} {incl}.",
        ],
        "declarative": [
            "A [short|brief] [text|note|passage|description] about {subject} is [needed|required|wanted], and it [must|should|has to] [contain|include|use] the {ws} {incl}.",
            "[The answer|The reply|Your answer|Your reply] should [talk about|describe|discuss|be about] {subject} and [include|use|contain] the {ws} {incl}.",
        ],
    }

    def build(
        self, rng: random.Random, phrasing: str, difficulty: str
    ) -> tuple[str, str, str, dict]:
        subject, _, sents, rest = fact_passage(rng, rng.randint(1, 2))
        ref = " ".join(sents)
        pool = content_words(ref)
        include = rng.sample(
            pool, min(len(pool), 2 if difficulty == "multi_step" else rng.randint(1, 2))
        )
        c: dict[str, Any] = {"include": include, "exclude": [], "max_words": None}
        template = pick(rng, self.TEMPLATES[phrasing])
        ws = "word" if len(include) == 1 else "words"
        text = expand(rng, template, subject=subject, ws=ws, incl=quoted(include))
        if difficulty == "multi_step":
            banned = [w for w in content_words(" ".join(rest)) if not word_pattern(w).search(ref)]
            if banned:
                c["exclude"] = [pick(rng, banned)]
                text += " " + expand(
                    rng, "[Do not|Don't|Never] use the word '{w}'.", w=c["exclude"][0]
                )
            c["max_words"] = len(words(ref)) + rng.randint(2, 10)
            text += " " + expand(
                rng, "[Keep it|Stay] [under|below] {k} words.", k=c["max_words"] + 1
            )
        return text, "", ref, c

    def _check(self, c: Mapping[str, Any], response: str) -> CheckResult:
        text = clean(response)
        include, exclude = c.get("include", []), c.get("exclude", [])
        total = len(include) + len(exclude) + bool(c.get("max_words"))
        if not words(text):
            return failed("empty answer", total)
        checks = [(bool(word_pattern(w).search(text)), f"missing '{w}'") for w in include]
        checks += [(not word_pattern(w).search(text), f"uses banned '{w}'") for w in exclude]
        if c.get("max_words"):
            wc = len(words(text))
            checks.append((wc <= c["max_words"], f"{wc} words, limit {c['max_words']}"))
        return tally(True, checks)


class StartsEnds(Family):
    """A sentence that must open with given words and/or close with a given word."""

    name = "starts_ends"
    TEMPLATES = {
        "imperative": [
            "[Write|Compose|Give me|Produce|Draft] [a sentence|one sentence|a single sentence] about {subject} that {rule}.",
            "[Describe|Mention|Say something about] {subject} in a sentence that {rule}.",
        ],
        "interrogative": [
            "[Could|Can|Would] you [write|give me|compose|draft] a sentence about {subject} that {rule}?",
            "[Can|Could] you [come up with|think of|suggest|offer] [a sentence|one sentence|a single sentence] about {subject} that {rule}?",
        ],
        "declarative": [
            "A sentence about {subject} is [needed|required|wanted]; it {rule}.",
            "[The reply|The answer|Your reply|Your answer] [should|must|needs to] be a sentence about {subject} that {rule}.",
        ],
    }

    def build(
        self, rng: random.Random, phrasing: str, difficulty: str
    ) -> tuple[str, str, str, dict]:
        subject, _, sents, _ = fact_passage(rng, 1)
        ref = sents[0]
        toks = words(ref)
        start, end = " ".join(toks[: rng.randint(2, 3)]), toks[-1]
        mode = "both" if difficulty == "multi_step" else pick(rng, ["start", "end"])
        c: dict[str, Any] = {
            "start": start if mode != "end" else "",
            "end": end if mode != "start" else "",
        }
        c["one_sentence"] = mode == "both"
        rules = {
            "start": expand(rng, "[begins|starts|opens] with the words '{s}'", cap=False, s=start),
            "end": expand(rng, "[ends|finishes|closes] with the word '{e}'", cap=False, e=end),
        }
        rule = rules[mode] if mode != "both" else f"{rules['start']} and {rules['end']}"
        text = expand(rng, pick(rng, self.TEMPLATES[phrasing]), subject=subject, rule=rule)
        if c["one_sentence"]:
            text += " " + expand(rng, "[Write|Give|Return] only that [one|single] sentence.")
        return text, "", ref, c

    def _check(self, c: Mapping[str, Any], response: str) -> CheckResult:
        text = clean(response).lstrip("*_#> ")
        toks = [t.lower() for t in words(text)]
        total = bool(c.get("start")) + bool(c.get("end")) + bool(c.get("one_sentence"))
        if not toks:
            return failed("empty answer", total)
        checks = []
        if c.get("start"):
            want = [t.lower() for t in words(c["start"])]
            checks.append((toks[: len(want)] == want, f"does not begin with '{c['start']}'"))
        if c.get("end"):
            checks.append((toks[-1] == c["end"].lower(), f"does not end with '{c['end']}'"))
        if c.get("one_sentence"):
            checks.append((len(sentences(text)) == 1, "more than one sentence"))
        return tally(True, checks)
