"""List families: exactly N bullet points or numbered items, with optional per-item limits.

Checkers count only top-level items (nested detail lines are ignored) and verify counts,
numbering and, multi-step, item length and the absence of text outside the list.
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
    number_word,
    pick,
    tally,
    words,
)
from mlx_instruct.data.tasks.corpus import PROCESSES, TOPICS

BULLET = re.compile(r"^\s*[-*•+]\s+(\S.*)$")
NUMBERED = re.compile(r"^\s*(\d{1,3})[.)]\s+(\S.*)$")


def list_lines(text: str) -> tuple[list[str], list[str], list[int], list[str]]:
    """(bullet items, numbered items, their numbers, other non-empty lines).

    Only top-level items count: a line indented deeper than the shallowest item is a
    nested detail of the item above it and is ignored.
    """
    lines = [ln.expandtabs(4) for ln in clean(text).splitlines() if ln.strip()]
    indents = [len(ln) - len(ln.lstrip()) for ln in lines if BULLET.match(ln) or NUMBERED.match(ln)]
    top = min(indents, default=0)
    bullets: list[str] = []
    numbered: list[str] = []
    nums: list[int] = []
    other: list[str] = []
    for line in lines:
        if len(line) - len(line.lstrip()) > top and indents:
            continue
        if m := BULLET.match(line):
            bullets.append(m.group(1))
        elif m := NUMBERED.match(line):
            nums.append(int(m.group(1)))
            numbered.append(m.group(2))
        else:
            other.append(line)
    return bullets, numbered, nums, other


def item_checks(items: list[str], other: list[str], c: Mapping[str, Any]) -> list:
    n, max_words = c["n"], c.get("max_words")
    checks = [(len(items) == n, f"{len(items)} items, expected {n}")]
    if max_words:
        long = [i for i in items if len(words(i)) > max_words]
        checks.append((not long, f"{len(long)} items over {max_words} words"))
    if c.get("only_list"):
        checks.append((not other, "text outside the list"))
    return checks


class BulletList(Family):
    """Exactly N bullet points about a topic (seed prompt 1 is this family's shape)."""

    name = "bullet_list"
    TEMPLATES = {
        "imperative": [
            "[List|Give|Name|Write down|Jot down|Suggest|Provide|Share|Note down|Set out] {nw} {topic}[,|] [as bullet points|in a bulleted list|using a bulleted list|formatted as bullets|with one bullet per item|as a list of bullets|in bullet form|as a short bulleted list].",
            "[Write|Make|Create|Put together|Draft|Produce|Compose|Prepare] a [bulleted|bullet-point|bullet] list [of|with|containing|giving|that names] {nw} {topic}.",
        ],
        "interrogative": [
            "[What are|Which are|Can you name|Could you list|Could you suggest|Would you list|Can you give me|What would you say are] {nw} {topic}? [Answer|Reply|Respond|Please answer] [with|using|in] [a bulleted list|bullet points|bullets|a bullet-point list].",
            "[Could|Can|Would] you [please |kindly |][list|name|give|share|suggest|set out] {nw} {topic}[, one bullet point each| as bullet points| in a bulleted list| using bullets| as a bullet list]?",
        ],
        "declarative": [
            "[The answer|Your answer|The reply|Your reply|The response|What I need] [should be|must be|is] a [bulleted|bullet-point] list of [exactly |precisely |]{n} {topic}.",
            "[A|One|Just one] [bulleted|bullet-point|short bulleted] list of {nw} {topic} is [needed|required|wanted|requested|what I am after|enough here].",
            "{NW} {topic} [should be|need to be|must be|are to be|ought to be] [given|listed|written|presented|provided|set out] as bullet points.",
        ],
    }
    MULTI = " [Use|Keep to|Write|Stick to] [at most|no more than|a maximum of|up to] {w} words [per|for each|in each|in every] [bullet|item|point|line] and [write|include|add|put] [nothing|no text|nothing else|no other text] [besides|outside|other than|apart from|beyond] the list."

    def build(
        self, rng: random.Random, phrasing: str, difficulty: str
    ) -> tuple[str, str, str, dict]:
        topic = pick(rng, sorted(TOPICS))
        n = rng.randint(2, 5)
        items = rng.sample(TOPICS[topic], n)
        nw = number_word(n)
        text = expand(
            rng, pick(rng, self.TEMPLATES[phrasing]), nw=nw, NW=nw.capitalize(), n=n, topic=topic
        )
        c: dict[str, Any] = {"n": n, "style": "bullet", "max_words": None, "only_list": False}
        if difficulty == "multi_step":
            c["max_words"] = max(len(words(i)) for i in items) + rng.randint(0, 2)
            c["only_list"] = True
            text += " " + expand(rng, self.MULTI, w=c["max_words"])
        return text, "", "\n".join(f"- {i}" for i in items), c

    def _check(self, c: Mapping[str, Any], response: str) -> CheckResult:
        bullets, numbered, _, other = list_lines(response)
        items = bullets + numbered if c.get("style") == "any" else bullets
        if c.get("style") != "any":
            other = other + numbered
        if not items:
            return failed(
                "no list items found", 1 + bool(c.get("max_words")) + bool(c.get("only_list"))
            )
        return tally(True, item_checks(items, other, c))


class NumberedList(Family):
    """Exactly N numbered steps (1., 2., ...) for a procedure or a topic."""

    name = "numbered_list"
    TEMPLATES = {
        "imperative": [
            "[Explain|Describe|Show|Set out|Outline|Write out] how to {what} in {nw} [numbered steps|numbered points|steps, numbered 1 to {n}].",
            "[Write|Give|List|Provide|Draft] {nw} numbered [steps|instructions] [that show|that explain|describing|for] how to {what}.",
            "[Give|Write|Make|Provide|Produce] a numbered list of {nw} {topic}.",
        ],
        "interrogative": [
            "How [do you|does one|should I|can I|would you] {what}? [Answer|Reply|Respond] [in|with|using] [exactly |precisely |]{nw} numbered steps.",
            "What are the [steps|main steps|basic steps|stages] [to|needed to|involved when you|required to] {what}? [Give|List|Write] {nw} numbered [steps|points].",
            "[What are|Which are|Could you list|Can you name] {nw} {topic}? [Number each one|Put them in a numbered list|Use a numbered list|Number them 1 to {n}].",
        ],
        "declarative": [
            "The steps to {what} [should be|need to be|must be|are to be] [written|given|set out|presented] as a numbered list of {n} [items|steps|points].",
            "[Instructions|Directions|Step-by-step instructions|Guidance] on how to {what}, in {nw} numbered steps, [are required|are needed|would help|are what I need].",
            "A numbered list of [exactly |precisely |]{n} {topic} [is needed|is required|is the expected answer|would be ideal].",
        ],
    }
    MULTI = " [Keep|Limit] [every|each] [item|step|line] to {w} words or fewer, [with no|and add no|and skip any|without an] [introduction|intro|preamble|opening line] or [closing line|conclusion|summary|sign-off]."

    def build(
        self, rng: random.Random, phrasing: str, difficulty: str
    ) -> tuple[str, str, str, dict]:
        use_topic = rng.random() < 0.4
        options = [t for t in self.TEMPLATES[phrasing] if ("{topic}" in t) == use_topic]
        if use_topic:
            topic, what = pick(rng, sorted(TOPICS)), ""
            items = rng.sample(TOPICS[topic], rng.randint(3, 6))
        else:
            what, topic = pick(rng, sorted(PROCESSES)), ""
            items = PROCESSES[what]
        n = len(items)
        text = expand(rng, pick(rng, options), nw=number_word(n), n=n, what=what, topic=topic)
        c: dict[str, Any] = {"n": n, "max_words": None, "only_list": False}
        if difficulty == "multi_step":
            c["max_words"] = max(len(words(i)) for i in items) + rng.randint(0, 3)
            c["only_list"] = True
            text += " " + expand(rng, self.MULTI, w=c["max_words"])
        return text, "", "\n".join(f"{k}. {s}" for k, s in enumerate(items, 1)), c

    def _check(self, c: Mapping[str, Any], response: str) -> CheckResult:
        bullets, items, nums, other = list_lines(response)
        if not items:
            return failed(
                "no numbered items found", 2 + bool(c.get("max_words")) + bool(c.get("only_list"))
            )
        checks = item_checks(items, other + bullets, c)
        checks.insert(
            1, (nums == list(range(1, len(nums) + 1)), f"numbering {nums[:8]} is not 1..N")
        )
        return tally(True, checks)
