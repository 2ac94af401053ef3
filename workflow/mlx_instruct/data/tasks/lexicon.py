"""Word lists and a small sentence grammar: varied, real-looking English for task contexts.

Each verb takes only objects that fit it, so sentences stay plausible while the
combinations (subject x verb x object x place x time) keep repeated trigrams down.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mlx_instruct.data.tasks.core import norm, wordlist

FIRST_NAMES = wordlist("""Maria James Aisha Liam Sofia Noah Priya Lucas Emma Mateo Hana Omar Chloe Ethan
Yuki Daniel Fatima Oliver Ingrid Samuel Leila Hugo Grace Ivan Amara Felix Nadia Tomas Elena
Kwame Clara Rafael Mei Jonas Zara Victor Anika Pedro Lucy Arjun Rosa Malik Julia Kenji Alice
Diego Freya Hassan Nora Mario Esther Tariq Helena Leo Ayesha Simon Olga Andre Ruth Jamal
Paula Erik Sara Marco Lina Dmitri Beatriz Tom Keiko Ahmed Laura Nils Ines Ben Chiara""")

LAST_NAMES = wordlist("""Lopez Smith Okafor Chen Patel Rossi Novak Kim Garcia Silva Müller Johansson
Nakamura Dubois Haddad Kowalski Mensah Schmidt Costa Ivanova Tanaka Ferreira Jensen Singh
Moreau Brown Walker Nguyen Hughes Romero Fischer Larsen Mendes Ali Wright Yilmaz Osei Perez
Bianchi Sato Kaur Hansen Murphy Reyes Clarke Weber Lindqvist Adeyemi Torres Park""")

CITIES = wordlist("""Porto Lyon Nairobi Osaka Leeds Austin Krakow Lima Accra Hamburg Valencia Denver
Toronto Seville Bergen Manila Adelaide Lisbon Bologna Quito Tampere Cork Dresden Halifax
Chennai Wellington Antwerp Montreal Graz Kyoto Malmo Tucson Cusco Dundee Perth Utrecht""")

DOMAINS = wordlist("""example.com mail.net postbox.org northwind.io bluepeak.co greenfield.org
harbourlabs.com riverstone.net quillworks.io orchard.org brightpath.com""")

OCCUPATIONS = wordlist("""farmer teacher pilot nurse baker gardener mechanic painter student librarian
carpenter doctor chef engineer journalist musician plumber scientist tailor waiter courier
architect photographer shopkeeper fisher firefighter pharmacist electrician potter florist
cyclist lawyer dentist sailor miner butcher jeweller""")

PERSON_ADJS = wordlist("""old young tired cheerful careful busy patient nervous clever quiet friendly
curious proud sleepy cautious retired new talented grumpy generous cheerful local""")

ANIMALS = wordlist(
    """dog fox hawk puppy kitten goat horse owl squirrel crow cat badger terrier magpie"""
)
ANIMAL_ADJS = wordlist("""grey hungry young small playful old clever brown spotted noisy""")

# verb (past tense) -> (object nouns, adjectives that fit every one of them).
PERSON_VERBS: dict[str, tuple[list[str], list[str]]] = {
    "repaired": (
        wordlist("fence bicycle roof radio gate chair lamp clock kettle fan"),
        wordlist("broken rusty old damaged"),
    ),
    "painted": (
        wordlist("gate boat wall bench fence door shed bookcase"),
        wordlist("old small wooden"),
    ),
    "carried": (
        wordlist("suitcase box basket crate sack backpack bucket tray"),
        wordlist("heavy large old blue"),
    ),
    "baked": (
        wordlist("cake pie loaf pizza tart muffins biscuits flatbread"),
        wordlist("fresh warm small huge homemade"),
    ),
    "opened": (
        wordlist("door window letter jar parcel gate drawer cupboard"),
        wordlist("heavy old small"),
    ),
    "found": (
        wordlist("key wallet map umbrella coin notebook ring glove photograph"),
        wordlist("lost missing old tiny"),
    ),
    "delivered": (
        wordlist("package parcel letter newspaper sofa pizza bouquet"),
        wordlist("heavy large small"),
    ),
    "wrote": (
        wordlist("letter report poem story email speech review"),
        wordlist("long short final funny formal detailed"),
    ),
    "read": (
        wordlist("instructions novel report diary recipe contract letter"),
        wordlist("long old whole new detailed handwritten"),
    ),
    "cleaned": (
        wordlist("floor shelves windows stove car garage bathroom desk"),
        wordlist("dusty muddy dirty greasy"),
    ),
    "borrowed": (
        wordlist("ladder umbrella book bicycle drill tent camera jacket"),
        wordlist("blue spare old new"),
    ),
    "planted": (
        wordlist("tree bulbs roses seeds hedge tomatoes herbs sunflowers"),
        wordlist("young small fresh new tiny hardy"),
    ),
    "sold": (
        wordlist("car painting piano house bicycle lamp sofa guitar"),
        wordlist("old vintage red used small expensive"),
    ),
    "fixed": (
        wordlist("tyre chair printer hose tap laptop zip shelf"),
        wordlist("broken old faulty"),
    ),
    "watched": (wordlist("match parade film fireworks concert game"), wordlist("long late noisy")),
    "washed": (
        wordlist("dishes boots car blanket windows dog shirts vegetables"),
        wordlist("dirty muddy old"),
    ),
    "lifted": (
        wordlist("box sack tyre crate table suitcase stone bench"),
        wordlist("heavy huge large"),
    ),
    "ordered": (
        wordlist("soup coffee curry sandwich salad pizza"),
        wordlist("hot spicy large fresh"),
    ),
    "sketched": (
        wordlist("bridge harbour lighthouse church mountain market"),
        wordlist("old distant"),
    ),
    "answered": (
        wordlist("question email letter message call"),
        wordlist("urgent long difficult short"),
    ),
    "packed": (wordlist("suitcase lunch boxes bag picnic car"), wordlist("small big heavy old")),
    "moved": (
        wordlist("sofa piano table boxes bookcase wardrobe"),
        wordlist("heavy old large wooden new dusty"),
    ),
    "bought": (
        wordlist("bicycle coat ticket lamp loaf plant camera map"),
        wordlist("new cheap red used"),
    ),
    "cooked": (
        wordlist("dinner soup rice pasta stew breakfast curry"),
        wordlist("simple hearty spicy quick"),
    ),
    "photographed": (
        wordlist("bridge harbour garden statue church market"),
        wordlist("old famous"),
    ),
}
ANIMAL_VERBS: dict[str, tuple[list[str], list[str]]] = {
    "chased": (
        wordlist("rabbit ball butterfly van squirrel pigeon leaf"),
        wordlist("small red yellow grey"),
    ),
    "followed": (wordlist("path stream trail track"), wordlist("narrow muddy winding")),
    "caught": (wordlist("fish ball moth frisbee stick"), wordlist("small tiny")),
    "dropped": (wordlist("stick shoe newspaper glove toy"), wordlist("muddy old wet")),
}
PREPOSITIONS = wordlist(
    "near|behind|beside|outside|next to|across from|close to|opposite|in front of", "|"
)
PLACE_NOUNS = wordlist(
    """station|library|market|school|harbour|bakery|museum|fountain|bridge|lake|river|church|
stadium|hospital|post office|town hall|cinema|theatre|park|garden centre|bus stop|cafe|bookshop|farm|
village hall|swimming pool|castle|lighthouse|windmill|pier|factory|hotel|supermarket|playground|mill|
harbour wall|bank|pharmacy|petrol station|sports centre""",
    "|",
)
PLACE_ADJS = wordlist("old busy quiet new small crowded local empty famous little")
TIMES = wordlist(
    """this morning|on Monday|after lunch|before sunrise|last weekend|yesterday evening|
during the storm|at noon|on Friday night|in early spring|late on Sunday|before breakfast|
after school|on a rainy afternoon|last winter|on Tuesday morning|at dawn|after dinner|
during the holidays|on Saturday|just after midnight|in the autumn|two days ago|at half past four|
on her birthday|before the meeting|after the concert|in late summer|on Wednesday|at the weekend""",
    "|",
)
ADVERBS = wordlist(
    "carefully quickly quietly finally suddenly slowly proudly happily eventually calmly"
)
CONNECTIVES = wordlist(
    "Later,|Meanwhile,|After that,|Soon afterwards,|The next day,|Earlier,|Then|Shortly after,", "|"
)

# Words for sorting / counting lists (common, distinct, lowercase).
SORT_WORDS = wordlist("""apple river candle mountain piano garden window lemon tiger ocean pencil
blanket rocket violin cherry forest ladder marble orange falcon harbor jacket kettle meadow
needle parrot quilt saddle tunnel umbrella valley walnut yogurt zebra anchor basket cactus
dolphin engine feather guitar helmet island jungle koala lantern mirror nickel oyster pepper
rabbit spider tomato velvet wagon bamboo cotton desert eagle fabric glacier hammer insect
lizard magnet napkin olive pillow radish shovel thimble turnip vessel whistle""")

STOPWORDS = set(
    wordlist("""the a an and or of to in on at by for from with is are was were be been it its this
    that these those as into than then their there they them can most many some such over
    each other more less very only about after before when while which who whom what""")
)


@dataclass(frozen=True)
class Clause:
    """A simple transitive sentence with its parts (for JSON extraction ground truth)."""

    subject: str  # as written, with article ("The old farmer", "Maria")
    verb: str
    obj: str  # with article ("the broken fence")
    place: str  # "near the old mill" ("" if none)
    spot: str  # the place's noun phrase: "the old mill"
    text: str  # full sentence with period


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def email_of(name: str, rng: random.Random) -> str:
    first, last = name.lower().split(" ", 1)
    last = last.replace("ü", "u").replace(" ", "")
    style = rng.randrange(3)
    local = f"{first}.{last}" if style == 0 else f"{first[0]}{last}" if style == 1 else first
    return f"{local}@{rng.choice(DOMAINS)}"


def noun_phrase(rng: random.Random, noun: str, adjs: list[str], definite: float = 0.6) -> str:
    """'the rusty gate', 'an old radio', 'the muddy boots' (plural nouns take 'the')."""
    words_ = f"{pick_(rng, adjs)} {noun}" if rng.random() < 0.7 else noun
    if noun.endswith("s") or rng.random() < definite:
        return f"the {words_}"
    return f"{'an' if words_[0] in 'aeiou' else 'a'} {words_}"


def pick_(rng: random.Random, options: list[str]) -> str:
    return options[rng.randrange(len(options))]


RELATIVES = wordlist(
    "aunt uncle neighbour cousin grandmother grandfather flatmate boss brother sister"
)


def subject_phrase(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.3:
        return pick_(rng, FIRST_NAMES)
    if roll < 0.4:
        return f"{pick_(rng, FIRST_NAMES)} {pick_(rng, LAST_NAMES)}"
    if roll < 0.5:
        return f"{pick_(rng, FIRST_NAMES)}'s {pick_(rng, RELATIVES)}"
    article = "The" if roll < 0.85 else "A"
    return f"{article} {pick_(rng, PERSON_ADJS)} {pick_(rng, OCCUPATIONS)}"


def clause(rng: random.Random, with_place: bool = True, compound: bool = False) -> Clause:
    """A random but sensible sentence: agent + verb + fitting object (+ place, time).

    `compound` (for passages, never for JSON extraction) may add a second verb phrase
    or a city, so longer texts vary in structure as well as in words.
    """
    animal = rng.random() < 0.2
    verbs = ANIMAL_VERBS if animal else PERSON_VERBS
    verb = pick_(rng, sorted(verbs))
    nouns, adjs = verbs[verb]
    if animal:
        adj = f"{pick_(rng, ANIMAL_ADJS)} " if rng.random() < 0.5 else ""
        subject = f"The {adj}{pick_(rng, ANIMALS)}"
    else:
        subject = subject_phrase(rng)
    obj = noun_phrase(rng, pick_(rng, nouns), adjs)
    place = spot = ""
    if with_place:
        noun = (
            f"{pick_(rng, PLACE_ADJS)} {pick_(rng, PLACE_NOUNS)}"
            if rng.random() < 0.5
            else pick_(rng, PLACE_NOUNS)
        )
        spot = f"the {noun}"
        place = f"{pick_(rng, PREPOSITIONS)} {spot}"
    adverb = f"{pick_(rng, ADVERBS)} " if rng.random() < 0.2 else ""
    tail = f" {place}" if place else ""
    if compound and place and rng.random() < 0.3:
        tail += f" in {pick_(rng, CITIES)}"
    if compound and rng.random() < 0.35:
        verb2 = pick_(rng, [v for v in sorted(verbs) if v != verb])
        nouns2, adjs2 = verbs[verb2]
        tail += f" and {pick_(rng, ['then ', 'later ', ''])}{verb2} {noun_phrase(rng, pick_(rng, nouns2), adjs2)}"
    time = pick_(rng, TIMES) if rng.random() < 0.4 else ""
    if time and rng.random() < 0.35:
        text = f"{time[0].upper()}{time[1:]}, {subject[0].lower() + subject[1:] if subject.split()[0] in ('The', 'A') else subject} {adverb}{verb} {obj}{tail}."
    else:
        text = f"{subject} {adverb}{verb} {obj}{tail}{' ' + time if time else ''}."
    return Clause(subject, verb, obj, place, spot, text)


def passage(rng: random.Random, n: int) -> str:
    """n clauses as a short narrative; later ones sometimes open with a connective."""
    out = []
    for k in range(n):
        text = clause(rng, compound=True).text
        if k and rng.random() < 0.4 and text.split(" ", 1)[0] in {"The", "A", *FIRST_NAMES}:
            first = text.split(" ", 1)[0]
            text = f"{pick_(rng, CONNECTIVES)} {text[0].lower() + text[1:] if first in ('The', 'A') else text}"
        out.append(text)
    return " ".join(out)


def phrase_variants(phrase: str) -> list[str]:
    """Accepted normalised answers for a noun phrase: full (minus articles) or head noun."""
    full = norm(phrase)
    toks = full.split()
    variants = [full]
    if " of " in f" {full} ":
        variants.append(full.split(" of ")[-1])
        variants.append(full.split(" of ")[0])
    if toks and toks[-1] not in variants:
        variants.append(toks[-1])
    proper = phrase[:1].isupper() and phrase.split()[0] not in ("The", "A", "An")
    if proper and len(toks) > 1 and not toks[0].endswith("'s"):
        variants.append(toks[0])  # "Maria" for "Maria Lopez"
    return list(dict.fromkeys(variants))


def preface(rng: random.Random) -> str:
    """An optional persona line, as real users write them; it never changes the answer."""
    occ = pick_(rng, OCCUPATIONS)
    who = f"{'an' if occ[0] in 'aeiou' else 'a'} {pick_(rng, PERSON_ADJS) + ' ' if rng.random() < 0.3 else ''}{occ}"
    where = pick_(rng, CITIES)
    options = [
        f"I'm {who} in {where}.",
        f"I work as {who} in {where}.",
        f"Hi, {pick_(rng, FIRST_NAMES)} here, {who} from {where}.",
        f"My colleague {pick_(rng, FIRST_NAMES)} asked me this.",
        f"Quick task from {pick_(rng, FIRST_NAMES)} in {where}.",
        f"This is for {pick_(rng, FIRST_NAMES)}, {who} in {where}.",
        f"I'm helping {pick_(rng, FIRST_NAMES)} with some work in {where}.",
    ]
    return pick_(rng, options)
