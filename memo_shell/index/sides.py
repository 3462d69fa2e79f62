"""Who said what: lexical term weights by provenance of the text inside one memory.

A memory is one turn: what the user wrote and what the model answered. Its words are not equally
good evidence. What the user *states* ("My sister Priya moved to Brno") is evidence; a question
("Where does Priya live?") is not a fact, yet it matches the next time the user asks the same
thing word for word; and the model's answer is a claim, which may be wrong. Without weights, a
stored wrong answer to the same question outranks the user's own statement every time, and the
model repeats its error (bench/truth.py: the statement first for 0% of probes).

So the lexical index keeps each word under a key that says where it came from: the plain stem
for the user's statements (and tags, the user's own labels), ``?stem`` for words of a question
the user asked the model (a sentence ending in "?", in a turn that stored an answer), ``~stem``
for words of the model's answer. The
analyzer never yields "?" or "~" inside a word, so the keys cannot collide. Recall then weighs
the three at query time (BM25F: weights scale term frequency before saturation; see
``recall.lexical``), so the weights are options and the ablation needs no rebuild, and a question
can still point at its answer (conversation context uses the unweighted score).

Measured (bench/locomo.py, "- provenance" ablation): on bench/truth.py the statement is ranked
first for 0.05 of probes without it and about 0.9 with it; LoCoMo dev turn recall@10 unchanged.
"""

from __future__ import annotations

import re
from collections import Counter

from memo_shell.analyzer import stem, words
from memo_shell.records import Memory
from memo_shell.stopwords import STOPWORDS

#: Key prefixes: a word in a question the user asked; a word of the model's answer.
QUESTION = "?"
CLAIM = "~"
SIDES = ("", QUESTION, CLAIM)

_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+|\n|$)")
#: "Did I mention X moved to Y?" tells rather than asks
_RHETORICAL = re.compile(
    r"(?:^|[:,;]\s*)\W*(?:did i (?:mention|tell you)|guess what|you know what)\b", re.I
)


def _is_question(sentence: str) -> bool:
    s = sentence.strip()
    return s.rstrip("\"'”’)»").endswith("?") and not _RHETORICAL.search(s)


#: word -> its key on each side ("" for a stopword): after the first few thousand memories
#: almost every word is a hit, so counting is two C-level passes instead of a stopword test, a
#: cached stem call and a string concatenation per word (a third of indexing time, profiled)
_KEYS: dict[str, dict[str, str]] = {side: {} for side in SIDES}
_MAX_CACHED = 200_000


def _count(counts: Counter[str], text: str, prefix: str) -> list[str]:
    plain = words(text)
    cache = _KEYS[prefix]
    keys = list(map(cache.get, plain))
    if None in keys:  # words not seen yet
        if len(cache) > _MAX_CACHED:  # bounded, whatever text arrives
            cache.clear()
        for w in plain:
            if w not in cache:
                cache[w] = "" if w in STOPWORDS else prefix + stem(w)
        keys = [cache.get(w) or _key(w, prefix) for w in plain]
    counts.update(filter(None, keys))
    return plain


def _key(word: str, prefix: str) -> str:
    """The key of a word not in the cache (another thread cleared it meanwhile)."""
    return "" if word in STOPWORDS else prefix + stem(word)


def term_counts(memory: Memory) -> tuple[Counter[str], float, list[str]]:
    """(term counts keyed by side, length in terms, every word of the memory in order)."""
    counts: Counter[str] = Counter()
    plain: list[str] = []
    # A question counts as a question only when it was put to the model (the turn holds its
    # answer): that is the echo that outranks the user's statement. A lone message that asks
    # something (a transcript line, an imported chat) keeps its words: in conversations between
    # people, the question turn is often where the topic is named (LoCoMo dev: session
    # recall@5 0.936 with the discount on such turns, 0.945 without).
    if "?" not in memory.user or not memory.assistant:
        plain += _count(counts, memory.user, "")
    else:
        for sentence in _SENTENCE.findall(memory.user):
            if sentence.strip():
                plain += _count(counts, sentence, QUESTION if _is_question(sentence) else "")
    if memory.assistant:
        plain += _count(counts, memory.assistant, CLAIM)
    if memory.tags:
        plain += _count(counts, " ".join(memory.tags), "")
    return counts, float(sum(counts.values())), plain


def is_side_key(key: str) -> bool:
    """A question's or a claim's word (not the user's statement)."""
    return key[:1] in (QUESTION, CLAIM)
