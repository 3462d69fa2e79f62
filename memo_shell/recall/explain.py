"""Why a memory was recalled: each signal's contribution turned into a short phrase.

A reason is shown when its signal added a noticeable share to the hit's score (``SHOWN``), so
the list says what actually lifted the memory, not everything that is true about it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from memo_shell.analyzer import stem
from memo_shell.index.data import IndexData
from memo_shell.recall.lexical import QueryTerms, present

#: A signal adding at least this much (on the scale where the best lexical hit is 1) is shown.
SHOWN = 0.05
_EMPTY = np.zeros(0)


@dataclass
class Contributions:
    """Score added by each signal to each candidate (empty arrays: signal off).

    Arrays are aligned with ``docs``, the sorted doc numbers of the candidates.
    """

    docs: np.ndarray = field(default_factory=lambda: _EMPTY)

    lexical: np.ndarray = field(default_factory=lambda: _EMPTY)
    prev: np.ndarray = field(default_factory=lambda: _EMPTY)
    next: np.ndarray = field(default_factory=lambda: _EMPTY)
    session: np.ndarray = field(default_factory=lambda: _EMPTY)
    entities: np.ndarray = field(default_factory=lambda: _EMPTY)
    entity_of: np.ndarray = field(default_factory=lambda: _EMPTY)
    hops: np.ndarray = field(default_factory=lambda: _EMPTY)
    topics: np.ndarray = field(default_factory=lambda: _EMPTY)
    topic_terms: QueryTerms = field(default_factory=lambda: QueryTerms([], [], []))
    vectors: np.ndarray = field(default_factory=lambda: _EMPTY)
    similarity: np.ndarray = field(default_factory=lambda: _EMPTY)
    time: np.ndarray = field(default_factory=lambda: _EMPTY)
    time_labels: list[str] = field(default_factory=list)
    speaker: np.ndarray = field(default_factory=lambda: _EMPTY)
    #: names the query did not spell but probably meant (index.names), lower-case
    name_variants: list[str] = field(default_factory=list)

    def get(self, name: str, doc: int, missing: float = 0.0) -> float:
        values: np.ndarray = getattr(self, name)
        i = self._position(doc)
        return float(values[i]) if 0 <= i < len(values) else missing

    def _position(self, doc: int) -> int:
        cache: dict[int, int] = self.__dict__.setdefault("_positions", {})
        if doc not in cache:
            i = int(np.searchsorted(self.docs, doc))
            cache[doc] = i if i < len(self.docs) and self.docs[i] == doc else -1
        return cache[doc]


def _topic_words(data: IndexData, doc: int, terms: QueryTerms) -> list[str]:
    """The expansion topics present in a memory, in the words the memory itself uses."""
    stems = set(present(data, doc, terms))
    if not stems:
        return []
    shown: list[str] = []
    for word in re.findall(r"[^\W\d_]+", data.catalog.previews[doc].lower()):
        s = stem(word)
        if s in stems and word not in shown:
            shown.append(word)
            stems.discard(s)
    return shown  # stems the preview does not show are left out rather than shown truncated


def _shown(c: Contributions, name: str, doc: int, found_by_other: bool) -> bool:
    value = c.get(name, doc)
    return value >= SHOWN or (found_by_other and value > 0)


def explain(data: IndexData, ranked: list[int], q: QueryTerms, c: Contributions) -> list[list[str]]:
    """Reasons for each ranked doc, in rank order (``#n`` refers to the n-th hit)."""
    cat = data.catalog
    position = {doc: i + 1 for i, doc in enumerate(ranked)}
    first_in_session: dict[int, int] = {}
    out: list[list[str]] = []
    for rank, doc in enumerate(ranked, 1):
        why: list[str] = []
        words = present(data, doc, q)
        if words and c.get("lexical", doc) > 0:
            why.append("matched: " + ", ".join(words))
            variants = [w for w in words if w in c.name_variants]
            if variants:
                why.append("name spelled differently: " + ", ".join(variants))
        if c.get("prev", doc) >= SHOWN:
            before = int(cat.prev[doc])
            why.append(
                f"reply to #{position[before]}"
                if before in position
                else "follows a matching memory"
            )
        if c.get("next", doc) >= SHOWN:
            why.append("answered by the next memory")
        number = int(cat.session[doc])
        if c.get("session", doc) >= SHOWN:
            earlier = first_in_session.get(number)
            why.append(f"same session as #{earlier}" if earlier else "session on this topic")
        first_in_session.setdefault(number, rank)
        # a signal is shown if it added a noticeable share, or if it is what found the memory
        found_by_other = not words
        if _shown(c, "entities", doc, found_by_other) and c.get("entity_of", doc, -1) >= 0:
            entity = int(c.get("entity_of", doc))
            why.append(f"entity: {data.entities.names[entity]} ({int(c.get('hops', doc))} hops)")
        if _shown(c, "topics", doc, found_by_other):
            topics = _topic_words(data, doc, c.topic_terms)
            if topics:
                why.append("related: " + ", ".join(topics[:4]))
        if c.get("speaker", doc) >= SHOWN:
            why.append(f"said by {data.entities.names[int(data.speaker[doc])]}")
        if _shown(c, "vectors", doc, found_by_other):
            why.append(f"similar: {c.get('similarity', doc):.2f}")
        if c.get("time", doc) > 0 and c.time_labels:
            why.append("time: " + ", ".join(dict.fromkeys(c.time_labels)))
        if cat.pinned[doc]:
            why.append("pinned")
        out.append(why)
    return out
