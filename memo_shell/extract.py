"""Offline entity and key-phrase extraction: the nodes of the knowledge graph.

No model, no download, deterministic, and fast enough for 100k memories in seconds. The rules are
the ones that hold in almost any chat text:

* **names** are runs of Capitalised words ("Caroline", "New York", "Dr. Seuss"); a capitalised
  word that opens a sentence is only *guessed* to be a name, because English capitalises every
  first word (the graph decides at query time from live evidence, see ``extract``);
* a leading ``Name:`` is the **speaker** of a line (transcripts, imported chats);
* **places** and **organisations** are names after a locative preposition ("in Paris",
  "from Sweden") or ending in an institutional noun ("Stanford University", "Red Cross Club");
* **dates**: month names (with day/year), weekdays, years, and relative phrases ("last week");
* **key phrases**: quoted titles ("Charlotte's Web") and #hashtags;
* **topics** are not extracted here: the memory's content words are already in the lexical
  index, and the graph walks memory-topic edges through it (``recall.lexical.topic_terms``).

Each entity has a canonical key (lower-case, single spaces) used for matching, a display form, and
a kind. Keys are what the graph stores; the display form is what the TUI shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from memo_shell.analyzer import normalize, words
from memo_shell.stopwords import STOPWORDS

MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_MONTH_ABBR = {m[:3]: m for m in MONTHS} | {"sept": "september"}
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_RELATIVE = (
    "yesterday",
    "tonight",
    "tomorrow",
    "last week",
    "last weekend",
    "last month",
    "last year",
    "next week",
    "next weekend",
    "next month",
    "next year",
    "this week",
    "this weekend",
    "this month",
    "this year",
    "a few days ago",
    "a week ago",
    "a month ago",
    "a year ago",
)

_RELATIVE_RE = re.compile(
    r"\b(" + "|".join(sorted(map(re.escape, _RELATIVE), key=len, reverse=True)) + r")\b"
)

_INSTITUTION = {
    "university",
    "college",
    "school",
    "academy",
    "institute",
    "hospital",
    "clinic",
    "church",
    "club",
    "company",
    "corp",
    "corporation",
    "inc",
    "ltd",
    "llc",
    "bank",
    "museum",
    "library",
    "center",
    "centre",
    "foundation",
    "association",
    "society",
    "team",
    "group",
    "band",
    "restaurant",
    "cafe",
    "café",
    "hotel",
    "park",
    "studio",
    "agency",
    "department",
    "council",
}
_LOCATIVE = {"in", "at", "from", "to", "near", "into", "visit", "visited", "visiting", "around"}
#: "moved to Brno" is a place, "switched to Dagster" is not: after "to"/"into" a name is a place
#: only when the word before says someone goes there
_DIRECTIONAL = {"to", "into"}
_MOTION = {
    "go", "goes", "going", "went", "gone", "move", "moved", "moving", "moves", "relocate",
    "relocated", "relocating", "travel", "travelled", "traveled", "travelling", "traveling",
    "fly", "flew", "flying", "flight", "drive", "drove", "driving", "trip", "trips", "back",
    "come", "came", "coming", "return", "returned", "returning", "head", "headed", "heading",
    "road", "journey", "ride", "rode", "emigrated", "immigrated", "commute", "way", "tour",
}  # fmt: skip
#: Capitalised words that are not names even in mid-sentence: pronouns, and the interjections
#: that open chat replies ("Noted.", "Perfect.", "Sorry,") which are not in the stopword list
_NOT_NAMES = STOPWORDS | {
    "i", "i'm", "i've", "i'll", "i'd", "ok", "okay", "tv", "omg", "lol", "noted", "sorry",
    "alright", "agreed", "exactly", "indeed", "true", "perfect", "fine", "welcome", "yay", "ugh",
    "thx", "ty", "np", "cheers", "congrats", "congratulations", "great", "cool", "nice", "sure",
    "thanks", "hmm", "oops", "yes", "no", "yeah", "yep", "nope", "hi", "hey", "hello", "bye",
}  # fmt: skip
_HONORIFICS = {"dr", "mr", "mrs", "ms", "prof", "st", "mt"}

_SPEAKER = re.compile(r"^\s*([A-Z][\w'’.-]*(?: [A-Z][\w'’.-]*){0,2})\s*:\s")
_QUOTED = re.compile(r"[\"“]([^\"“”\n]{3,60})[\"”]")
_HASHTAG = re.compile(r"#(\w{2,40})")


@dataclass(frozen=True, slots=True)
class Entity:
    """One extracted entity: canonical key, display form, kind."""

    key: str
    name: str
    kind: str
    #: a capitalised word opening a sentence: a name only if the graph's live evidence agrees
    guessed: bool = False
    #: the speaker of the line (a leading "Name:")
    speaker: bool = False


def canonical(text: str) -> str:
    """The key an entity is matched by: normalised, possessive dropped, single-spaced."""
    return _canonical(text) if len(text) <= 200 else _canonical_uncached(text)


def _canonical_uncached(text: str) -> str:
    text = normalize(text).replace("’", "'")
    text = _POSSESSIVE.sub("", text)
    return " ".join(_WORDS.findall(text))


#: Names recur endlessly in a personal memory: cache their canonical keys.
_canonical = lru_cache(maxsize=50_000)(_canonical_uncached)


_POSSESSIVE = re.compile(r"'s\b")
_WORDS = re.compile(r"\w+")
_CONNECTORS = frozenset({"of", "the", "de", "van", "von", "la", "del"})
_UPPER = "A-ZÀ-ÖØ-Þ"
_CAP_WORD = rf"[{_UPPER}][\w'’-]*"
#: A run of capitalised words, allowing connectors inside ("Bank of America") and a title's
#: full stop ("Dr. Seuss"). Candidates only: each word is vetted in Python below.
_NAME_RUN = re.compile(
    rf"(?<![\w'’-]){_CAP_WORD}(?:(?:\.?\s+|\s+(?:of|the|de|van|von|la|del)\s+){_CAP_WORD})*"
)
_SENTENCE_END = frozenset('.!?;:\n"“”()')


def _is_capitalised(token: str) -> bool:
    return (token[:1].isupper() and not token.isupper()) or (token.isupper() and len(token) > 1)


def _clean(token: str) -> str:
    return token.rstrip(".'’-").removesuffix("'s").removesuffix("’s")


_MONTH_OF = {m: m for m in MONTHS} | _MONTH_ABBR
_WEEKDAY_OF = {d: d for d in WEEKDAYS} | {d + "s": d for d in WEEKDAYS}
_RELATIVE_CUES = frozenset({"yesterday", "tonight", "tomorrow", "ago", "last", "next", "this"})


_DATE_TOKENS = frozenset([*_MONTH_OF, *_WEEKDAY_OF, *_RELATIVE_CUES])


def _is_year(word: str) -> bool:
    return len(word) == 4 and word[:2] in ("19", "20") and word.isdigit()


def _dates(text: str, tokens: list[str]) -> list[Entity]:
    """Months (with their year when one follows), weekdays, years and relative phrases.

    Works on the analyzer's lower-cased words (set lookups, no regex over the text); "may"
    counts as the month only where the text writes it "May".
    """
    out: list[Entity] = []
    years = [w for w in filter(str.isdigit, tokens) if len(w) == 4 and w[:2] in ("19", "20")]
    cues = _DATE_TOKENS.intersection(tokens)
    if not cues:
        return [Entity(y, y, "date") for y in dict.fromkeys(years)]
    may_capital = "May" in text
    for i, word in enumerate(tokens):
        if word not in cues:
            continue
        month = _MONTH_OF.get(word)
        if month is not None:
            if word == "may" and not may_capital:
                continue
            if len(word) == 3 and word != "may" and word.capitalize() not in text:
                continue  # "mar", "jan" as fragments of something else
            out.append(Entity(month, month.capitalize(), "date"))
            year = next((w for w in tokens[i + 1 : i + 4] if _is_year(w)), None)
            if year:
                out.append(Entity(f"{month} {year}", f"{month.capitalize()} {year}", "date"))
        elif word in _WEEKDAY_OF:
            day = _WEEKDAY_OF[word]
            out.append(Entity(day, day.capitalize(), "date"))
    out.extend(Entity(y, y, "date") for y in dict.fromkeys(years))
    if cues & _RELATIVE_CUES:
        for phrase in dict.fromkeys(_RELATIVE_RE.findall(text.lower())):
            out.append(Entity(phrase, phrase, "when"))
    return out


def lowercase_words(text: str) -> set[str]:
    """Words written in lower case: evidence that a word is an ordinary word, not a name."""
    return set(re.findall(r"(?<![\w'’])[a-zà-öø-ÿ][a-zà-öø-ÿ'’-]*", text))


def _starts_sentence(text: str, start: int) -> bool:
    """Is position ``start`` the first word of a sentence (or of the text)?"""
    before = text[max(0, start - 12) : start].rstrip(" \t")
    if not before:
        return True
    if before[-1] not in _SENTENCE_END:
        return False
    if before[-1] == ".":  # "Dr. Seuss", "J. Smith": not a sentence end
        last = re.findall(r"[\w]+$", before[:-1])
        if last and (last[0].lower() in _HONORIFICS or len(last[0]) == 1):
            return False
    return True


def _word_before(text: str, start: int) -> str:
    """The word before ``start``; for "to"/"into", "go" first if a motion word comes a few
    words earlier ("moved from Sweden to", "went back home to")."""
    words = text[max(0, start - 60) : start].split()
    if not words:
        return ""
    last = words[-1].lower().strip(",;")
    if last in _DIRECTIONAL and any(w.lower().strip(",;") in _MOTION for w in words[-5:-1]):
        return f"go {last}"
    return last


def extract(
    text: str,
    *,
    lower_here: set[str] | None = None,
    words_here: list[str] | None = None,
) -> list[Entity]:
    """Entities of one memory's text, de-duplicated by key, in order of first appearance.

    A pure function of the text (no corpus state), so the index built by adding memories one by
    one, in any order, equals the one ``reindex`` builds. The one judgement that needs the
    corpus, whether a capitalised word opening a sentence is a name ("Caroline moved...") or an
    ordinary word ("Painting is fun"), is left to query time: such a word is emitted with
    ``guessed=True`` and the graph accepts it only on live evidence (see ``index.graph``). If the
    same text writes the word in lower case, it is dropped here. ``lower_here`` and
    ``words_here``: the text's ``lowercase_words`` and analyzer ``words``, if the caller already
    has them (speed).
    """
    if not text:
        return []
    text = text[:20_000]
    found: list[Entity] = []
    speaker = _SPEAKER.match(text)
    if speaker:
        name = speaker.group(1)
        found.append(Entity(canonical(name), name, "person", speaker=True))
        text = text[speaker.end() :]
    # most texts quote nothing and tag nothing: a substring test is cheaper than the regex
    if '"' in text or "“" in text:
        for quoted in _QUOTED.findall(text):
            key = canonical(quoted)
            if key and len(key.split()) <= 8:
                found.append(Entity(key, quoted.strip(), "title"))
    if "#" in text:
        for tag in _HASHTAG.findall(text):
            found.append(Entity(canonical(tag), f"#{tag}", "tag"))
    found.extend(_dates(text, words_here if words_here is not None else words(text)))
    if lower_here is None:
        lower_here = lowercase_words(text)
    for run in _NAME_RUN.finditer(text):
        found.extend(_names_in_run(text, run, lower_here))
    seen: dict[str, Entity] = {}
    for entity in found:
        old = seen.get(entity.key)
        if entity.key and (old is None or (old.guessed and not entity.guessed)):
            seen[entity.key] = entity  # a confirmed mention outranks a guessed one
    return list(seen.values())


def _names_in_run(text: str, run: re.Match[str], lower_here: set[str]) -> list[Entity]:
    """Split one capitalised run at words that are not names; flag a sentence-initial word."""
    out: list[Entity] = []
    tokens = run.group().split()
    group: list[str] = []

    def flush(first_of_sentence: bool, prev_word: str) -> None:
        parts = list(group)
        group.clear()
        while parts and parts[-1].lower() in _CONNECTORS:
            parts.pop()
        if first_of_sentence and parts:
            # "Caroline moved" or "Painting is fun"? "Acme Robotics builds" or "Seeing Paris"?
            # The first word, and the whole run, are guesses (the graph's live evidence decides);
            # the rest of the run is a name in any case.
            first = parts.pop(0)
            if canonical(first) not in lower_here:
                emit([first], prev_word, guessed=True)
                if parts:
                    emit([first, *parts], prev_word, guessed=True)
            while parts and parts[0].lower() in _CONNECTORS:
                parts.pop(0)
        if parts:
            emit(parts, prev_word, guessed=False)

    def emit(parts: list[str], prev_word: str, *, guessed: bool) -> None:
        if len(parts) == 1 and parts[0].lower() in _HONORIFICS:
            return
        name = " ".join(parts)
        key = canonical(name)
        if not key or key.isdigit() or key in MONTHS or key in WEEKDAYS:
            return
        last = parts[-1].lower()
        before = prev_word.split()
        if last in _INSTITUTION or (name.isupper() and len(name) >= 2):  # "KPN", "NASA"
            kind = "organisation"
        elif (
            before
            and before[-1] in _LOCATIVE
            and (before[-1] not in _DIRECTIONAL or (len(before) == 2 and before[0] in _MOTION))
        ):
            kind = "place"
        else:
            kind = "name"
        out.append(Entity(key, name, kind, guessed=guessed))

    first_of_sentence = _starts_sentence(text, run.start())
    prev_word = _word_before(text, run.start())
    for token in tokens:
        word = _clean(token)
        low = word.lower()
        # "Caroline. Dune rocks": a full stop that is not a title's or an initial's ends the
        # sentence inside the run
        ends_sentence = token.endswith(".") and low not in _HONORIFICS and len(word) > 1
        if low in _CONNECTORS and group:
            group.append(low)
        elif not word or not _is_capitalised(word) or low in _NOT_NAMES:
            flush(first_of_sentence, prev_word)
            first_of_sentence = False
            prev_word = low
        else:
            group.append(word)
        if ends_sentence:
            flush(first_of_sentence, prev_word)
            first_of_sentence = True
            prev_word = "."
    flush(first_of_sentence, prev_word)
    return out
