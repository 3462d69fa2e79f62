"""Truth over echo: a seeded scenario where the model's wrong answers compete with the user.

    .venv/bin/python bench/truth.py [--seed 7] [--facts 50]

The user states facts once, in varied wording and often inside chatter ("Long week. My sister
Priya moved to Brno last spring, by the way."). Weeks later the user asks about each fact twice
(the question and a paraphrase) and the model answers wrongly; each of those turns is stored, as
memo-shell stores every turn. Sometimes a later turn gets the right answer. Ordinary chatter is
spread throughout. Probes are the question again, the paraphrase, and an unseen paraphrase.

Scores: the share of probes whose stated fact is ranked first (``first``) and in the top 3
(``top3``). A stored turn that repeats the right answer does not count: what the user said is the
evidence, what the model said is a claim. ``bench/locomo.py`` runs this beside LoCoMo.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

_NAMES = (
    "Priya Tomasz Ingrid Kwame Mateo Yuki Leila Anders Bongani Chiara Dmitri Esperanza Farid "
    "Greta Hamid Isolde Jarrah Katya Lorenzo Malia Nikos Oksana Pavel Quentin Rania Soren Thandiwe "
    "Ulrich Valentina Wojtek Ximena Yusuf Zofia Aurelio Benedikt Carmela Desmond Elif Florian "
    "Gulnara Hiroshi Imogen Joaquin Kalani Ludmila Marek Nadia Osvaldo Petra Radek Sunita Teodor"
)
NAMES = _NAMES.split()
RELATIONS = ["sister", "brother", "cousin", "friend", "colleague", "neighbour", "aunt", "uncle"]
CITIES = [
    "Brno",
    "Lisbon",
    "Porto",
    "Tampere",
    "Ghent",
    "Valencia",
    "Krakow",
    "Lyon",
    "Graz",
    "Bergen",
    "Utrecht",
    "Trieste",
    "Malmo",
    "Aarhus",
    "Bilbao",
    "Ljubljana",
]
JOBS = [
    "nurse",
    "carpenter",
    "pilot",
    "pharmacist",
    "architect",
    "plumber",
    "librarian",
    "veterinarian",
    "electrician",
    "translator",
    "baker",
    "surveyor",
]
PETS = [
    ("parrot", "Kiwi"),
    ("tortoise", "Bolt"),
    ("beagle", "Pixel"),
    ("ferret", "Mango"),
    ("rabbit", "Biscuit"),
    ("cat", "Saffron"),
    ("hamster", "Nacho"),
    ("iguana", "Rex"),
]
FOODS = ["peanuts", "shellfish", "sesame", "strawberries", "gluten", "celery", "mustard", "kiwi"]
CARS = ["Volvo", "Skoda", "Subaru", "Fiat", "Peugeot", "Toyota", "Renault", "Mazda"]
INSTRUMENTS = ["cello", "trumpet", "banjo", "accordion", "drums", "clarinet", "harp", "ukulele"]
LANGUAGES = [
    ("Portuguese", "Brazil"),
    ("Finnish", "Finland"),
    ("Turkish", "Turkey"),
    ("Swahili", "Kenya"),
    ("Polish", "Poland"),
    ("Greek", "Greece"),
    ("Korean", "Korea"),
    ("Dutch", "Belgium"),
]
SUBJECTS = [
    "geology",
    "linguistics",
    "astronomy",
    "marine biology",
    "economics",
    "philosophy",
    "chemistry",
    "archaeology",
]
DISHES = ["moussaka", "pierogi", "ramen", "paella", "goulash", "falafel", "risotto", "bibimbap"]

#: Each kind: statements (varied wording), the question, two paraphrases, a wrong-answer template
#: and a right-answer template. ``{v}`` is the true value, ``{w}`` a wrong one.
KINDS: list[dict[str, object]] = [
    {
        "values": CITIES,
        "say": [
            "My {rel} {name} moved to {v} last spring.",
            "Big news in the family: {name}, my {rel}, now lives in {v}.",
            "Did I mention {name} relocated to {v}? My {rel} loves it there.",
        ],
        "ask": "Where does my {rel} {name} live?",
        "para": ["Which city is {name} living in now?", "Remind me, what town did {name} move to?"],
        "wrong": "Your {rel} {name} lives in {w}.",
        "right": "{name} lives in {v}.",
    },
    {
        "values": JOBS,
        "say": [
            "{name}, my {rel}, started working as a {v} in March.",
            "My {rel} {name} finally got the job: {v} at the regional hospital group.",
            "So {name} retrained and is a {v} now, can you believe it.",
        ],
        "ask": "What does my {rel} {name} do for a living?",
        "para": ["What is {name}'s job?", "What work does {name} do these days?"],
        "wrong": "{name} works as a {w}.",
        "right": "{name} is a {v}.",
    },
    {
        "values": [f"{p} called {n}" for p, n in PETS],
        "say": [
            "Our {rel} {name} has a {v}.",
            "{name} adopted a {v} last month, so cute.",
            "Fun fact: my {rel} {name} keeps a {v} at home.",
        ],
        "ask": "What pet does {name} have?",
        "para": ["What animal does my {rel} {name} keep?", "Does {name} own an animal?"],
        "wrong": "{name} has a {w}, I believe.",
        "right": "{name} has a {v}.",
    },
    {
        "values": FOODS,
        "say": [
            "{name} is allergic to {v}, so never cook with it for them.",
            "Careful with {v} when my {rel} {name} visits, severe allergy.",
            "Note for dinners: {name} cannot eat {v} at all, allergic.",
        ],
        "ask": "What is {name} allergic to?",
        "para": [
            "Which food should I avoid when cooking for {name}?",
            "Is there anything {name} can't eat?",
        ],
        "wrong": "{name} is allergic to {w}.",
        "right": "{name} is allergic to {v}.",
    },
    {
        "values": CARS,
        "say": [
            "{name} drives an old {v} that breaks down every winter.",
            "My {rel} {name} bought a second-hand {v} last year.",
            "We borrowed {name}'s {v} for the trip, my {rel} is generous.",
        ],
        "ask": "What car does {name} drive?",
        "para": ["Which car brand does my {rel} {name} own?", "What does {name} drive these days?"],
        "wrong": "{name} drives a {w}.",
        "right": "{name} drives a {v}.",
    },
    {
        "values": INSTRUMENTS,
        "say": [
            "{name} plays the {v} in a band on weekends.",
            "My {rel} {name} has been learning the {v} for two years.",
            "Went to see {name} perform yesterday, {name} is great on the {v}.",
        ],
        "ask": "What instrument does {name} play?",
        "para": [
            "Which instrument is my {rel} {name} learning?",
            "What does {name} play in that band?",
        ],
        "wrong": "{name} plays the {w}.",
        "right": "{name} plays the {v}.",
    },
    {
        "values": [f"{lang}, having grown up in {land}" for lang, land in LANGUAGES],
        "say": [
            "{name} speaks fluent {v}.",
            "My {rel} {name} is fluent in {v}.",
            "Turns out {name} speaks {v}, which explains the accent.",
        ],
        "ask": "What language does {name} speak?",
        "para": [
            "Which language is my {rel} {name} fluent in?",
            "Does {name} speak any other languages?",
        ],
        "wrong": "{name} speaks {w}.",
        "right": "{name} speaks {v}.",
    },
    {
        "values": SUBJECTS,
        "say": [
            "{name} studies {v} at the university.",
            "My {rel} {name} just enrolled in a {v} degree.",
            "{name} is doing a master's in {v}, my {rel} is so driven.",
        ],
        "ask": "What does {name} study?",
        "para": [
            "What subject is my {rel} {name} taking at university?",
            "Which degree is {name} enrolled in?",
        ],
        "wrong": "{name} studies {w}.",
        "right": "{name} studies {v}.",
    },
    {
        "values": DISHES,
        "say": [
            "{name}'s favourite dish is {v}.",
            "My {rel} {name} would eat {v} every day.",
            "For {name}'s party we should make {v}, it's the favourite.",
        ],
        "ask": "What is {name}'s favourite food?",
        "para": [
            "What does my {rel} {name} like to eat most?",
            "Which dish should I cook for {name}?",
        ],
        "wrong": "{name}'s favourite food is {w}.",
        "right": "{name} loves {v}.",
    },
]

CHATTER = [
    ("Good morning! Any tips for a rainy weekend?", "Board games, a long film, or baking bread."),
    ("I'm so tired today.", "Sorry to hear that. Maybe an early night?"),
    ("What's a good name for a sourdough starter?", "How about 'Bread Pitt'?"),
    ("Remind me to water the plants.", "I can't set reminders, but noted in our chat."),
    ("Tell me a joke about computers.", "Why did the computer go to therapy? Too many bytes."),
    ("The train was late again this morning.", "That's frustrating. Was it a long delay?"),
    ("Thinking about learning to knit.", "Knitting is relaxing; start with a simple scarf."),
    ("How many cups in a litre?", "About four and a quarter US cups."),
    ("Ugh, my laptop keeps freezing.", "Try closing some tabs or restarting it."),
    ("We watched a documentary about octopuses.", "Octopuses are fascinating creatures!"),
    ("Can you suggest a quick lunch?", "A wrap with hummus and vegetables is quick."),
    ("I went for a run by the river.", "Nice! How far did you go?"),
    ("Should I repaint the kitchen?", "A lighter colour could make it feel bigger."),
    ("My phone battery dies so fast lately.", "Check which apps use the most battery."),
    ("What's the capital of Australia?", "Canberra."),
    ("Our team meeting ran two hours over.", "That sounds exhausting."),
]
FILLER = ["Long week.", "Anyway,", "Oh and", "By the way,", "Random thought:", "Quick update:"]
ACKS = ["Got it, I'll remember that.", "Noted!", "Thanks for telling me.", "Good to know.", ""]


@dataclass
class Fact:
    name: str
    statement: str
    probes: list[str]
    fact_id: str = ""


@dataclass
class Scenario:
    """Memories to add, in order, and the probes per fact."""

    turns: list[tuple[str, str, str, datetime, str]] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)


def build(seed: int = 7, n_facts: int = 50, chatter: int = 120) -> Scenario:
    """A seeded scenario: ``turns`` are (user, assistant, session, at, key) with ``key`` naming
    the fact a statement turn carries (``""`` for everything else)."""
    rng = random.Random(seed)
    names = NAMES[:]
    rng.shuffle(names)
    out = Scenario()
    start = datetime(2025, 3, 3, 9, 0)
    statements: list[tuple[str, str, str]] = []
    asks: list[tuple[str, str, Fact]] = []
    for i in range(n_facts):
        kind = KINDS[i % len(KINDS)]
        values = list(kind["values"])  # type: ignore[call-overload]
        v, w = rng.sample(values, 2)
        slots = {"name": names[i], "rel": rng.choice(RELATIONS), "v": v, "w": w}
        said = rng.choice(kind["say"]).format(**slots)  # type: ignore[attr-defined]
        if rng.random() < 0.4:  # inside chatter, as people actually write
            said = f"{rng.choice(FILLER)} {said}"
        ask = kind["ask"].format(**slots)  # type: ignore[attr-defined]
        paras = [p.format(**slots) for p in kind["para"]]  # type: ignore[attr-defined]
        fact = Fact(names[i], said, [ask, paras[0], paras[1]])
        out.facts.append(fact)
        statements.append((said, rng.choice(ACKS), f"fact{i}"))
        wrong = kind["wrong"].format(**slots)  # type: ignore[attr-defined]
        right = kind["right"].format(**slots)  # type: ignore[attr-defined]
        # asked twice (the question and the first paraphrase), answered wrongly both times
        asks.append((ask, wrong, fact))
        asks.append((paras[0], wrong, fact))
        if rng.random() < 0.3:  # sometimes the model got it right once
            asks.append((ask, right, fact))
    chat = [(u, a, "") for u, a in (rng.choice(CHATTER) for _ in range(chatter))]
    early = statements + chat[: chatter // 2]
    rng.shuffle(early)
    late: list[tuple[str, str, str]] = [(q, a, "") for q, a, _f in asks] + chat[chatter // 2 :]
    rng.shuffle(late)
    at = start
    for n, (user, assistant, key) in enumerate(early + late):
        at += timedelta(hours=rng.randint(2, 30))
        out.turns.append((user, assistant, f"day-{at:%Y-%m-%d}", at, key))
        del n
    return out


def score(ranked: list[list[str]], truth: list[str]) -> dict[str, float]:
    """Share of probes with the stated fact at rank 1 (``first``) and in the top 3 (``top3``);
    also ``first`` by probe kind: the question asked before (``same``), the paraphrase asked
    before (``para``), and a paraphrase never asked (``unseen``)."""
    n = max(len(truth), 1)
    hit = [bool(r) and r[0] == t for r, t in zip(ranked, truth, strict=True)]
    out = {
        "first": sum(hit) / n,
        "top3": sum(t in r[:3] for r, t in zip(ranked, truth, strict=True)) / n,
        "n": float(len(truth)),
    }
    for i, kind in enumerate(("same", "para", "unseen")):
        part = hit[i :: len(PROBE_KINDS)]
        out[kind] = sum(part) / max(len(part), 1)
    return out


#: The probes of each fact, in this order.
PROBE_KINDS = ("same", "para", "unseen")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--facts", type=int, default=50)
    args = parser.parse_args()
    sc = build(args.seed, args.facts)
    for user, assistant, session, at, key in sc.turns[:12]:
        print(f"{at:%Y-%m-%d %H:%M} {session} {key or '-':6} {user!r} -> {assistant!r}")
    print(f"... {len(sc.turns)} turns, {len(sc.facts)} facts, {3 * len(sc.facts)} probes")
