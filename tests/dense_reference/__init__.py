"""FROZEN ORACLE for tests/test_recall_sparse.py: memo_shell.recall as it was before recall became
sparse (one numpy pass over every row per signal), with index.graph.spread, kept verbatim so the
sparse ranking can be checked against it. Do not "fix" or tune it; delete it with that test.

Hybrid recall: lexical + conversation context + knowledge graph + time (+ vectors), fused.

How a query is ranked (each signal scaled to a maximum of 1, then blended with the weights in
``RecallOptions``; a weighted blend rather than reciprocal rank fusion because RRF throws away how
*much* better the best lexical hit is, which on LoCoMo cost 0.03 turn recall@10):

1. **lexical**: BM25 over single memories, with our analyzer;
2. **session context**: a memory gains from the one(s) before it (the answer to a matching
   question) and from its session's BM25 score (sessions relevant as a whole);
3. **knowledge graph**: spreading activation from the query's entities and best hits, over
   memory-entity edges (names, places, titles...) and memory-topic edges (content words);
4. **time**: memories inside a span the question names ("in July 2023", "last week");
5. **vectors** (only with an embedder): cosine similarity to the query's embedding;
6. the caller's current session gets a mild nudge; **pins** are always eligible; **recency**
   only breaks exact ties, so an old exact answer is never buried under new near-misses.

Every hit carries the reasons that lifted it (``matched: thai, restaurant``, ``entity: Caroline
(2 hops)``, ``same session as #2``, ``time: July 2023``, ``similar: 0.82``, ``pinned``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

import numpy as np

from dense_reference import graph, lexical, signals
from dense_reference.explain import Contributions, explain
from memo_shell.index import names
from memo_shell.index.data import IndexData
from memo_shell.index.schema import IndexHit
from memo_shell.index.vectors import VectorSet
from memo_shell.recall.options import RecallOptions

__all__ = ["RecallOptions", "search"]


def _or0(x: np.ndarray, rows: int) -> np.ndarray:
    """A signal's array, or zeros if the signal did not run."""
    return x if len(x) == rows else np.zeros(rows)


def _with_fresh_sessions(data: IndexData, ranked: list[int], k: int, slots: int) -> list[int]:
    """Top ``k``, but the last ``slots`` go to the best memories from sessions not yet shown.

    When the best hits all come from one or two conversations and those are the wrong ones, one
    memory from elsewhere is the cheapest hedge (measured on LoCoMo: session recall@5 +0.004 for
    turn recall@10 -0.001). Applies from k >= 5 so short lists stay purely by score.
    """
    if slots <= 0 or k < 5 or len(ranked) <= k:
        return ranked[:k]
    session = data.catalog.session.view
    head = ranked[: k - slots]
    seen = {int(session[d]) for d in head}
    fresh: list[int] = []
    for doc in ranked[k - slots :]:
        number = int(session[doc])
        if number not in seen:
            fresh.append(doc)
            seen.add(number)
            if len(fresh) == slots:
                break
    rest = [d for d in ranked[k - slots :] if d not in fresh]
    return (head + fresh + rest)[:k]


def search(
    data: IndexData,
    query: str,
    k: int = 10,
    *,
    session: str | None = None,
    exclude: Collection[str] = (),
    options: RecallOptions | None = None,
    vectors: VectorSet | None = None,
    query_vector: Sequence[float] | None = None,
    now: datetime | None = None,
) -> list[IndexHit]:
    """The ``k`` best memories for ``query``, best first, each with its reasons."""
    o = options or RecallOptions()
    cat = data.catalog
    if k <= 0 or data.n_docs == 0 or not isinstance(query, str):
        return []
    rows = cat.rows
    also: list[str] = []
    if o.graph:  # "mel", "Mohammed", "jon": also the names in the store they probably mean
        also = names.variants(data, query)
        if also:
            query = f"{query} {' '.join(also)}"
    q = lexical.analyse_query(data, query)
    lex = signals.scaled(lexical.bm25(data, q, o)) if q else np.zeros(rows)
    c = Contributions(lexical=lex.copy(), name_variants=[n.casefold() for n in also])
    score = lex.copy()
    matching = np.flatnonzero(lex)
    seeds = signals.top_n(lex, o.graph_seeds, cat.created.view, matching)

    if o.session_context and q:
        # a question is no evidence, but it does point at its answer (the memory after it)
        pointer = lex
        if (o.w_question, o.w_claim) != (1.0, 1.0):
            pointer = signals.scaled(lexical.bm25(data, q, o, evidence=False))
        ctx = signals.context(data, pointer, np.flatnonzero(pointer), o.w_prev, o.w_prev2, o.w_next)
        c.prev, c.next = ctx.prev, ctx.next
        per_session = signals.scaled(lexical.session_bm25(data, q, o))
        c.session = o.w_session * per_session[cat.session.view]
        score += c.prev + c.next + c.session
    if o.graph and q:
        g = signals.entity_spread(data, query, lex, seeds, o.graph_top_entities)
        c.entities = o.w_entities * signals.scaled(g.score)
        c.entity_of, c.hops = g.entity, g.hops
        c.topic_terms = lexical.topic_terms(data, lex, seeds, q, o)
        score += c.entities
        if c.topic_terms:
            c.topics = o.w_topics * signals.scaled(lexical.bm25(data, c.topic_terms, o))
            score += c.topics
    elif o.graph:  # no known words: the query's entities alone (e.g. a name typed in full)
        g = signals.entity_spread(data, query, lex, seeds[:0], o.graph_top_entities)
        c.entities = o.w_entities * signals.scaled(g.score)
        c.entity_of, c.hops = g.entity, g.hops
        score += c.entities
    if o.graph and o.w_speaker and q:
        named = graph.query_entities(data, query)
        people = [e for e, p in zip(named, data.entities.is_person(named), strict=True) if p]
        if people:
            c.speaker = o.w_speaker * (np.isin(data.speaker.view, people) & (score > 0))
            score += c.speaker
    if o.vectors and vectors is not None and query_vector is not None:
        sim = vectors.similarity(query_vector, rows)
        c.similarity = sim
        c.vectors = o.w_vectors * signals.scaled(np.maximum(sim, 0.0))
        score += c.vectors
    if o.temporal:
        tm = signals.time_match(data, query, now)
        if tm is not None:
            c.time_labels = tm.labels
            relevant = score > 0
            c.time = o.w_time * (tm.inside & relevant)
            score += c.time
    if session is not None and o.w_current:
        number = cat.session_of.get(session)
        if number is not None:
            score += o.w_current * ((cat.session.view == number) & (score > 0))

    alive = cat.alive.view
    pinned = cat.pinned.view
    # a memory needs evidence of its own (words, entities, related topics, similarity) to be
    # recalled; context, session and time only re-rank (so small stores never return noise)
    own = c.lexical + _or0(c.entities, rows) + _or0(c.topics, rows) + _or0(c.vectors, rows)
    eligible = alive & ((own > 0) | pinned)
    for memory_id in exclude:
        doc = cat.doc_of.get(memory_id)
        if doc is not None:
            eligible[doc] = False
    docs = np.flatnonzero(eligible)
    if not len(docs):
        return []
    # best first; exact ties go to the newer memory, then to the larger id, so the order never
    # depends on doc numbers (which differ between a live index and a rebuilt one)
    pool = max(o.pool, 2 * k)
    final = score[docs]
    created = cat.created.view
    if len(docs) > pool:
        kth = np.partition(final, len(final) - pool)[len(final) - pool]
        docs = docs[final >= kth]  # everything tied with the cut-off stays in the pool
        if len(docs) > 2 * pool:  # a sea of ties: order them by (score, time) in numpy first
            docs = docs[np.lexsort((-created[docs], -score[docs]))[: 2 * pool]]
    ordered = sorted(docs.tolist(), key=lambda d: (-score[d], -created[d], cat.ids[d]))
    ranked = _with_fresh_sessions(data, ordered[:pool], k, o.fresh_session_slots)
    return [
        IndexHit(cat.ids[doc] or "", float(score[doc]), why)
        for doc, why in zip(ranked, explain(data, ranked, q, c), strict=True)
    ]
