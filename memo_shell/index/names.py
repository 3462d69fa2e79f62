"""Name variants: the people a query names, however the query (or the memory) spells them.

Real chat spells names loosely: Muhammad / Mohammed / Muhhamed, Jon / John, Mel for Melanie,
all lower-case. Exact entity keys then link nothing, and the name (usually the rarest, most
telling word of a question) matches nothing lexically. So recall widens a query by the names
known to the store that are close to a name in the query:

* Jaro-Winkler similarity >= ``THRESHOLD`` 0.84 (rapidfuzz; it rewards a shared beginning, which is
  how name variants and typos mostly look: Muhammad/Mohammed 0.85, Jon/John 0.93, while
  Tim/Tom is 0.80);
* or one is a prefix of the other, at least 3 letters (Mel/Melanie, Caro/Caroline).

Only words that may be names are tried: ones known as a person's name, or unknown to the
lexical index (a misspelling), or capitalised inside the question. Candidates are the
single-word names of people in live memories. Measured on the real-chat variants of LoCoMo dev
(bench/locomo.py, ablation "- name variants").
"""

from __future__ import annotations

import bisect
import re

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler

from memo_shell.analyzer import stem
from memo_shell.extract import canonical
from memo_shell.index.data import IndexData
from memo_shell.stopwords import STOPWORDS

THRESHOLD = 0.84
MIN_PREFIX = 3
#: Switch for the benchmark's ablation (bench/ablate.py); always on otherwise.
NAME_VARIANTS = True
_CAPITALISED_INSIDE = re.compile(r"(?<=[a-z,;] )([A-Z][a-z]+)")


def _people(data: IndexData) -> tuple[list[str], list[int], list[str]]:
    """Single-word person names known to the index (cached until the entity table changes)."""
    table = data.entities
    key = (id(table), len(table))
    cached = getattr(data, "_name_cache", None)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2], cached[3]
    numbers = [n for n, k in enumerate(table.keys) if " " not in k and k.isalpha()]
    person = table.is_person(numbers)
    keys = [table.keys[n] for n, p in zip(numbers, person, strict=True) if p]
    nums = [n for n, p in zip(numbers, person, strict=True) if p]
    ordered = sorted(keys)
    data._name_cache = (key, keys, nums, ordered)  # type: ignore[attr-defined]
    return keys, nums, ordered


def table_number(data: IndexData, key: str) -> int:
    number = data.entities.get(key)
    assert number is not None  # keys come from the table itself
    return number


def _maybe_name(data: IndexData, word: str, capitalised: set[str], people: set[str]) -> bool:
    if len(word) < MIN_PREFIX or word in STOPWORDS or not word.isalpha():
        return False
    if word in people or word in capitalised:
        return True
    term = data.terms.get(stem(word))
    return term is None or data.lexical.count(term) == 0


def variants(data: IndexData, query: str, limit: int = 5) -> list[str]:
    """Names of people in the store that the query probably means, other than those it spells."""
    if not NAME_VARIANTS or not len(data.entities):
        return []
    from memo_shell.index import graph  # the graph module imports IndexData users; keep it light

    keys, nums, ordered = _people(data)
    if not keys:
        return []
    people = set(keys)
    capitalised = {w.casefold() for w in _CAPITALISED_INSIDE.findall(query[:2000])}
    words = dict.fromkeys(canonical(query[:2000]).split())
    found: dict[int, None] = {}
    for word in words:
        if not _maybe_name(data, word, capitalised, people):
            continue
        matches = process.extract(
            word,
            keys,
            scorer=JaroWinkler.normalized_similarity,
            score_cutoff=THRESHOLD,
            limit=limit,
        )
        for _key, _score, i in matches:
            found[nums[i]] = None
        # nicknames: a name starting with the word ("mel" -> Melanie), or the word starting
        # with a name ("jonny" -> Jon); on the sorted keys, so it costs a bisection
        lo = bisect.bisect_left(ordered, word)
        hi = bisect.bisect_left(ordered, word + "\uffff")
        prefixes = [word[:n] for n in range(MIN_PREFIX, len(word))]
        for k in ordered[lo:hi] + [p for p in prefixes if p in people]:
            if k != word:
                found[table_number(data, k)] = None
    spelled = set(words)
    out = [n for n in found if data.entities.keys[n] not in spelled]
    if not out:
        return []
    ok = graph.valid(data, np.array(out))
    return [data.entities.names[n] for n, good in zip(out, ok, strict=True) if good][:limit]
