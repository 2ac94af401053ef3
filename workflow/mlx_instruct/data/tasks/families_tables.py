"""Records to markdown tables and CSV: ground-truth rows, lenient parsing, strict cells.

Records (people, products, books) are drawn with random attribute subsets so headers and
prose descriptions vary; sortable columns have distinct values so the order is unique.
"""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mlx_instruct.data.tasks.core import (
    CheckResult,
    Family,
    clean,
    drop_preamble,
    expand,
    failed,
    join_words,
    pick,
    tally,
    wordlist,
)
from mlx_instruct.data.tasks.lexicon import (
    CITIES,
    OCCUPATIONS,
    person,
)

PRODUCTS = wordlist(
    """desk lamp|water bottle|backpack|keyboard|umbrella|teapot|notebook|yoga mat|bike lock|
travel mug|phone case|wool scarf|frying pan|alarm clock|garden chair|rain jacket|camping stove|
reading light|coffee grinder|picnic blanket|walking stick|table fan|bread knife|laundry basket""",
    "|",
)


COLORS = wordlist("red blue green black white grey yellow orange purple silver navy beige")
TEAMS = wordlist("sales design support finance research marketing logistics legal")
GENRES = wordlist(
    "mystery|biography|cookbook|travel guide|thriller|history book|poetry collection|fantasy novel",
    "|",
)


TITLE_ADJS = wordlist("Silent Hidden Golden Last Quiet Distant Broken Northern Secret Wandering")
TITLE_NOUNS = wordlist("Harbour Orchard Garden River Lantern Island Winter Letter Mountain Kitchen")
NUMERIC = {"age", "joined", "price", "stock", "weight", "rating", "year", "pages"}
IDENTITY = {"person": "name", "product": "product", "book": "title"}


# attribute -> prose phrasings (for csv_format's descriptions)
PHRASES = {
    "age": ["is {age} years old", "is aged {age}", "turned {age} this year", "is {age}"],
    "city": [
        "lives in {city}",
        "is based in {city}",
        "comes from {city}",
        "calls {city} home",
        "moved to {city} recently",
    ],
    "job": [
        "works as {a_job}",
        "is {a_job} by trade",
        "earns a living as {a_job}",
        "trained as {a_job}",
    ],
    "team": [
        "belongs to the {team} team",
        "is on the {team} team",
        "reports to the {team} team",
        "sits with the {team} team",
    ],
    "joined": [
        "joined the company in {joined}",
        "has worked here since {joined}",
        "was hired in {joined}",
        "started with us in {joined}",
    ],
    "price": [
        "costs ${price}",
        "sells for ${price}",
        "is priced at ${price}",
        "goes for ${price}",
        "retails at ${price}",
    ],
    "color": ["comes in {color}", "is {color}", "is finished in {color}", "is sold in {color}"],
    "stock": [
        "has {stock} units in stock",
        "has {stock} left in the warehouse",
        "shows a stock level of {stock}",
        "is down to {stock} units",
    ],
    "weight": [
        "weighs {weight} kg",
        "has a weight of {weight} kg",
        "tips the scales at {weight} kg",
    ],
    "rating": [
        "is rated {rating} out of 5",
        "has an average rating of {rating}",
        "scores {rating} in reviews",
        "earns {rating} stars from buyers",
    ],
    "author": [
        "was written by {author}",
        "is by {author}",
        "comes from the pen of {author}",
        "was authored by {author}",
    ],
    "year": [
        "came out in {year}",
        "was published in {year}",
        "first appeared in {year}",
        "was released in {year}",
    ],
    "pages": [
        "runs to {pages} pages",
        "has {pages} pages",
        "is {pages} pages long",
        "spans {pages} pages",
    ],
    "genre": [
        "is {a_genre}",
        "is shelved as {a_genre}",
        "is sold as {a_genre}",
        "counts as {a_genre}",
    ],
}


def a_an(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def record(rng: random.Random, kind: str) -> dict[str, str]:
    """One entity as ordered key -> value strings (identity key first)."""
    r = rng.randint
    if kind == "person":
        return {
            "name": person(rng),
            "age": str(r(19, 78)),
            "city": pick(rng, CITIES),
            "job": pick(rng, OCCUPATIONS),
            "team": pick(rng, TEAMS),
            "joined": str(r(1995, 2024)),
        }
    if kind == "product":
        price = f"{r(3, 180)}.{pick(rng, ['00', '49', '50', '95', '99'])}"
        return {
            "product": pick(rng, PRODUCTS),
            "price": price,
            "color": pick(rng, COLORS),
            "stock": str(r(0, 250)),
            "weight": f"{r(0, 4)}.{r(1, 9)}",
            "rating": f"{r(2, 4)}.{r(0, 9)}",
        }
    title = f"The {pick(rng, TITLE_ADJS)} {pick(rng, TITLE_NOUNS)}"
    return {
        "title": title,
        "author": person(rng),
        "year": str(r(1950, 2024)),
        "pages": str(r(90, 720)),
        "genre": pick(rng, GENRES),
    }


def records(rng: random.Random, kind: str, n: int, keys: list[str]) -> list[dict[str, str]]:
    """n records restricted to `keys`, with distinct values in every column we may sort by."""
    while True:
        recs = [{k: rec[k] for k in keys} for rec in (record(rng, kind) for _ in range(n))]
        if all(len({x[k] for x in recs}) == n for k in keys if k in NUMERIC or k == IDENTITY[kind]):
            return recs


def pick_keys(rng: random.Random, kind: str, extra: int) -> list[str]:
    ident = IDENTITY[kind]
    others = [k for k in record(random.Random(0), kind) if k != ident]
    return [ident, *rng.sample(others, extra)]


def describe(rng: random.Random, kind: str, rec: dict[str, str]) -> str:
    """A natural sentence stating every attribute of a record."""
    fill = dict(rec, a_job=a_an(rec.get("job", "x")), a_genre=a_an(rec.get("genre", "x")))
    parts = [pick(rng, PHRASES[k]).format(**fill) for k in rec if k != IDENTITY[kind]]
    rng.shuffle(parts)
    head = {
        "person": rec.get("name"),
        "product": f"The {rec.get('product')}",
        "book": f"{rec.get('title')}",
    }[kind]
    return f"{head} {join_words(parts)}."


def sort_records(
    rng: random.Random, recs: list[dict[str, str]]
) -> tuple[list[dict[str, str]], str]:
    """Sort by a numeric or identity column; return (sorted, phrase describing the order)."""
    key = pick(rng, [k for k in recs[0] if k in NUMERIC] or list(recs[0])[:1])
    if rng.random() < 0.3:
        key = list(recs[0])[0]
    desc = rng.random() < 0.5
    numeric = key in NUMERIC
    ordered = sorted(recs, key=lambda r: float(r[key]) if numeric else r[key].lower(), reverse=desc)
    if numeric:
        how = pick(
            rng,
            ["from highest to lowest", "in descending order", "with the largest first"]
            if desc
            else ["from lowest to highest", "in ascending order", "with the smallest first"],
        )
    else:
        how = (
            "in reverse alphabetical order"
            if desc
            else pick(rng, ["alphabetically", "in alphabetical order", "from A to Z"])
        )
    return ordered, f"sorted by {key} {how}"


def cell(text: str) -> str:
    return (
        re.sub(r"\s+", " ", text.replace("**", "").replace("`", "").replace("$", ""))
        .strip()
        .rstrip(".")
        .lower()
    )


def row_checks(c: Mapping[str, Any], header: Sequence[str], rows: Sequence[Sequence[str]]) -> list:
    want_h = [cell(h) for h in c["header"]]
    want = [tuple(cell(v) for v in r) for r in c["rows"]]
    got = [tuple(cell(v) for v in r) for r in rows]
    checks = [
        ([cell(h) for h in header] == want_h, f"header {list(header)[:6]} != {c['header']}"),
        (len(got) == len(want), f"{len(got)} rows, expected {len(want)}"),
        (sorted(got) == sorted(want), "row contents differ from the input"),
    ]
    if c.get("ordered"):
        checks.append((got == want, "rows not in the requested order"))
    return checks


def table_total(c: Mapping[str, Any]) -> int:
    return 3 + bool(c.get("ordered"))


class KvToTable(Family):
    """Key-value pairs (or records) -> a markdown table with a given header."""

    name = "kv_to_table"
    HEADERS = [
        ("Field", "Value"),
        ("Key", "Value"),
        ("Attribute", "Value"),
        ("Property", "Detail"),
        ("Label", "Data"),
        ("Item", "Entry"),
    ]
    TEMPLATES = {
        "imperative": [
            "[Convert|Turn|Reformat|Put|Rewrite] the [following|given|next] [data|details|information|entries] [into|as] a [markdown|Markdown] table with the [columns|column headings|headers] {cols}.",
            "[Present|Show|Lay out|Organise|Arrange] [these|the following|the given] [details|fields|values|facts] as a [markdown|Markdown] table whose [header|header row|first row] is {cols}.",
        ],
        "interrogative": [
            "[Can|Could|Would] you [format|lay out|present|put] the [data|details|information|values] [below|that follows|given below] as a [markdown|Markdown] table with the [columns|headers|column names] {cols}?",
            "How would the [following|given|next] [data|details|information|entries] look as a [markdown|Markdown] table with the [header|header row|columns] {cols}?",
        ],
        "declarative": [
            "The [data|details|information|entries] [below|given below] [should|must] be [presented|shown|formatted|laid out] as a [markdown|Markdown] table with the [columns|headers|column headings] {cols}.",
            "A [markdown|Markdown] table with the [header|header row|columns] {cols} is [needed|required|expected|wanted] for the [following|given|next] [data|details|information].",
        ],
    }

    def build(
        self, rng: random.Random, phrasing: str, difficulty: str
    ) -> tuple[str, str, str, dict]:
        kind = pick(rng, sorted(IDENTITY))
        if difficulty == "simple":
            rec = records(rng, kind, 1, pick_keys(rng, kind, rng.randint(2, 4)))[0]
            header = list(pick(rng, self.HEADERS))
            rows = [[k, v] for k, v in rec.items()]
            sep, eq = pick(rng, ["; ", "\n", ", "]), pick(rng, [": ", " = ", " -> "])
            context = sep.join(f"{k}{eq}{v}" for k, v in rec.items())
            order, ordered = "", False
        else:
            recs = records(rng, kind, rng.randint(3, 5), pick_keys(rng, kind, rng.randint(2, 3)))
            context = "\n".join(", ".join(f"{k}={v}" for k, v in r.items()) for r in recs)
            recs, order = sort_records(rng, recs)
            header = [k.capitalize() for k in recs[0]]
            rows, ordered = [list(r.values()) for r in recs], True
            order = " " + expand(
                rng, "[Put|Use|Give] one [record|entry|item] per row, {o}.", o=order
            )
        cols = join_words([f"'{h}'" for h in header])
        text = expand(rng, pick(rng, self.TEMPLATES[phrasing]), cols=cols) + order
        c = {"header": header, "rows": rows, "ordered": ordered}
        lines = [f"| {' | '.join(header)} |", f"|{'|'.join('---' for _ in header)}|"]
        lines += [f"| {' | '.join(r)} |" for r in rows]
        return text, context, "\n".join(lines), c

    def _check(self, c: Mapping[str, Any], response: str) -> CheckResult:
        lines = [ln.strip() for ln in clean(response).splitlines() if "|" in ln]
        table = [[x.strip() for x in ln.strip("|").split("|")] for ln in lines]
        is_sep = [bool(r) and all(re.fullmatch(r":?-{1,}:?", x) for x in r) for r in table]
        if True not in is_sep or is_sep.index(True) == 0:
            return failed("no markdown table with a header and separator row", table_total(c))
        s = is_sep.index(True)
        rows = [r for r, sep in zip(table[s + 1 :], is_sep[s + 1 :], strict=True) if not sep]
        return tally(True, row_checks(c, table[s - 1], rows))


class CsvFormat(Family):
    """Records described in prose -> CSV with a given header."""

    name = "csv_format"
    TEMPLATES = {
        "imperative": [
            "[Convert|Turn|Rewrite|Transform] the [text|description|passage|paragraph] [below|that follows|given below] into CSV with the header {cols}.",
            "[Write|Record|Capture|Put] the [following|given|next] [information|details|facts] as CSV [using|with] the columns {cols}.",
        ],
        "interrogative": [
            "[Can|Could|Would] you [turn|convert|rewrite] [this|the following|the given] [text|description|paragraph] into CSV with the header {cols}?",
            "What would the [following|given|next] [information|details|description] look like as CSV with the columns {cols}?",
        ],
        "declarative": [
            "The [information|details|description|text] [below|given below] [should|must] be [rewritten as|converted to|recorded as] CSV with the header {cols}.",
            "A CSV version of [this|the following|the given] [text|description|passage], with the columns {cols}, is [required|needed|expected|wanted].",
        ],
    }

    def build(
        self, rng: random.Random, phrasing: str, difficulty: str
    ) -> tuple[str, str, str, dict]:
        kind = pick(rng, sorted(IDENTITY))
        keys = pick_keys(rng, kind, rng.randint(2, 3))
        recs = records(rng, kind, rng.randint(3, 6), keys)
        context = " ".join(describe(rng, kind, r) for r in recs)
        text = expand(rng, pick(rng, self.TEMPLATES[phrasing]), cols=f"'{','.join(keys)}'")
        ordered = difficulty == "multi_step"
        if ordered:
            recs, order = sort_records(rng, recs)
            text += " " + expand(
                rng,
                "[List|Write|Give] the rows {o}, [with no other text|and nothing else|without any commentary].",
                o=order,
            )
        rows = [[r[k] for k in keys] for r in recs]
        c = {"header": keys, "rows": rows, "ordered": ordered}
        return text, context, "\n".join(",".join(r) for r in [keys, *rows]), c

    def _check(self, c: Mapping[str, Any], response: str) -> CheckResult:
        lines = [ln.strip() for ln in drop_preamble(clean(response)).splitlines() if ln.strip()]
        try:
            table = [[x.strip() for x in row] for row in csv.reader(lines)]
        except csv.Error:
            return failed("unparseable CSV", table_total(c))
        if len(table) < 2 or len(table[0]) < 2:
            return failed("no CSV header and rows found", table_total(c))
        return tally(True, row_checks(c, table[0], table[1:]))
