"""Hybrid recall: lexical + conversation context + knowledge graph + time (+ vectors), fused.

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

from memo_shell.index import graph, names
from memo_shell.index.data import IndexData
from memo_shell.index.schema import IndexHit
from memo_shell.index.vectors import VectorSet
from memo_shell.recall import bounds, lexical, pool, reach, signals, sparse
from memo_shell.recall.explain import Contributions, explain
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


def _inside(data: IndexData, query: str, docs: np.ndarray, now: datetime | None) -> np.ndarray:
    tm = signals.time_match(data, query, docs, now)
    return tm.inside if tm is not None else np.zeros(len(docs), dtype=bool)


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
    if k <= 0 or data.n_docs == 0 or not isinstance(query, str):
        return []
    with lexical.query_cache(data):
        return _search(data, query, k, session, exclude, o, vectors, query_vector, now)


def _search(
    data: IndexData,
    query: str,
    k: int,
    session: str | None,
    exclude: Collection[str],
    o: RecallOptions,
    vectors: VectorSet | None,
    query_vector: Sequence[float] | None,
    now: datetime | None,
) -> list[IndexHit]:
    cat = data.catalog
    rows = cat.rows
    also: list[str] = []
    if o.graph:  # "mel", "Mohammed", "jon": also the names in the store they probably mean
        also = names.variants(data, query)
        if also:
            query = f"{query} {' '.join(also)}"
    q = lexical.analyse_query(data, query)
    # at scale, each lexical signal yields only its best memories (recall.pool); below the
    # threshold every signal is exhaustive (and exact bit for bit to the dense reference)
    pooled = bool(q) and pool.size(data, q) > o.exhaustive_below
    budget = o.long_postings
    scorer = pool.Scorer(data, q, o, evidence=True, budget=budget) if pooled else None
    lex_docs: np.ndarray | None = None
    if scorer is not None:
        lex = sparse.scaled(scorer.top(o.lexical_pool))
        lex_docs = lex[0]
        if o.temporal:  # the time signal lifts the most: the best matches in the span join
            in_time = reach.window_docs(data, query, now)
            if len(in_time):
                in_time = pool.cut(data, in_time, scorer.at(in_time), o.lexical_pool)[0]
                lex_docs = sparse.union(data, rows, lex_docs, in_time)
    else:
        lex = sparse.scaled(lexical.bm25(data, q, o)) if q else sparse.empty()
    order = signals.top_n(lex[1], o.graph_seeds, cat.created.view[lex[0]])
    seeds, seed_scores = lex[0][order], lex[1][order]
    lex_max = float(lex[1].max()) if len(lex[1]) else 0.0
    # every signal is sparse: only these reach a memory
    prev = nxt = topics = sparse.empty()
    per_session: np.ndarray | None = None
    pointer: pool.Scorer | None = None
    topic_scorer: pool.Scorer | None = None
    g: graph.Spread | None = None
    topic_terms = lexical.QueryTerms([], [], [])
    if o.session_context and q:
        # a question is no evidence, but it does point at its answer (the memory after it)
        if scorer is not None:  # evaluated at the candidates, below
            pointer = scorer
            if (o.w_question, o.w_claim) != (1.0, 1.0):
                pointer = pool.Scorer(
                    data, q, o, evidence=False, reader=scorer.reader, budget=budget
                )
            per_session = signals.scaled(pool.session_bm25(data, q, o))
            # the pool's neighbours: what context and session lift the most
            lex_docs = sparse.union(
                data,
                rows,
                lex[0] if lex_docs is None else lex_docs,
                reach.neighbours(data, lex, reach.NEIGHBOURS_OF),
                reach.session_docs(data, per_session, reach.SESSIONS),
            )
        else:
            pointer_lex = lex
            if (o.w_question, o.w_claim) != (1.0, 1.0):
                pointer_lex = sparse.scaled(lexical.bm25(data, q, o, evidence=False))
            ctx = signals.context(data, pointer_lex, o.w_prev, o.w_prev2, o.w_next)
            prev, nxt = ctx.prev, ctx.next
            per_session = signals.scaled(lexical.session_bm25(data, q, o))
    if o.graph and q:
        g = signals.entity_spread(data, query, seeds, seed_scores, lex_max, o.graph_top_entities)
        topic_terms = lexical.topic_terms(data, seeds, seed_scores, q, o)
        if topic_terms and (pooled or pool.size(data, topic_terms) > o.exhaustive_below):
            topic_scorer = pool.Scorer(data, topic_terms, o, evidence=True, budget=budget)
            # topics add at most w_topics (0.2): a quarter of the pool is plenty
            topics = sparse.scaled(topic_scorer.top(max(o.lexical_pool // 4, 1)))
        elif topic_terms:
            topics = sparse.scaled(lexical.bm25(data, topic_terms, o))
    elif o.graph:  # no known words: the query's entities alone (e.g. a name typed in full)
        g = signals.entity_spread(
            data, query, seeds[:0], seed_scores[:0], lex_max, o.graph_top_entities
        )
    sim: np.ndarray | None = None
    if o.vectors and vectors is not None and query_vector is not None:
        sim = vectors.similarity(query_vector, rows)  # brute force: dense by nature

    # the candidates: a memory needs evidence of its own (words, entities, related topics,
    # similarity) to be recalled, or a pin; context, session and time only re-rank them
    # (so small stores never return noise)
    spread_docs = g.docs if g is not None else lex[0][:0]
    if lex_docs is not None:
        lex = (lex_docs, lex_docs[:0])  # every pool's memories are candidates (scored below)
    vector_docs = np.flatnonzero(sim > 0) if sim is not None else lex[0][:0]
    docs = sparse.union(data, rows, lex[0], spread_docs, topics[0], vector_docs, cat.pinned_docs())
    people: list[int] = []  # the query names them: their own words rank higher
    if o.graph and o.w_speaker and q:
        named = graph.query_entities(data, query)
        people = [e for e, p in zip(named, data.entities.is_person(named), strict=True) if p]
    if scorer is not None:  # drop what cannot make the shortlist, then score the rest exactly
        known = bounds.Blend(
            per_session=per_session,
            entities=sparse.scaled((g.docs, g.score)) if g is not None else None,
            topics=topic_scorer or (topics if topic_terms else None),
            vectors=signals.scaled(np.maximum(sim, 0.0)) if sim is not None else None,
            inside=_inside(data, query, docs, now) if o.temporal else None,
            excluded=np.isin(docs, [cat.doc_of.get(i, -1) for i in exclude]),
            speaker=bool(people),
            current=session is not None and bool(o.w_current),
        )
        docs = bounds.contenders(data, docs, scorer, known, o, max(o.pool, 2 * k))
        lex = (docs, scorer.at(docs) / (scorer.best() or 1.0))
        if pointer is not None:
            prev, nxt = reach.context(data, docs, pointer, o)
    if topic_scorer is not None:
        topics = (docs, topic_scorer.at(docs) / max(topic_scorer.best(), 1e-300))
    with sparse.Positions(data, rows, docs) as pos:
        c = Contributions(
            docs=docs, lexical=pos.at(lex), name_variants=[n.casefold() for n in also]
        )
        score = c.lexical.copy()
        if per_session is not None:
            c.prev, c.next = pos.at(prev), pos.at(nxt)
            c.session = o.w_session * per_session[cat.session.view[docs]]
            score += c.prev + c.next + c.session
        if g is not None:
            c.entities = o.w_entities * pos.at(sparse.scaled((g.docs, g.score)))
            c.entity_of = np.full(len(docs), -1, dtype=np.int32)
            c.hops = np.zeros(len(docs), dtype=np.int8)
            reached = pos.of(g.docs)  # every reached memory is a candidate (or was pruned)
            c.entity_of[reached[reached >= 0]] = g.entity[reached >= 0]
            c.hops[reached[reached >= 0]] = g.hops[reached >= 0]
            c.topic_terms = topic_terms
            score += c.entities
            if topic_terms:
                c.topics = o.w_topics * pos.at(topics)
                score += c.topics
        if people:
            c.speaker = o.w_speaker * (np.isin(data.speaker.view[docs], people) & (score > 0))
            score += c.speaker
        if sim is not None:
            c.similarity = sim[docs]
            c.vectors = o.w_vectors * signals.scaled(np.maximum(sim, 0.0))[docs]
            score += c.vectors
        if o.temporal:
            tm = signals.time_match(data, query, docs, now)
            if tm is not None:
                c.time_labels = tm.labels
                relevant = score > 0
                c.time = o.w_time * (tm.inside & relevant)
                score += c.time
        if session is not None and o.w_current:
            number = cat.session_of.get(session)
            if number is not None:
                score += o.w_current * ((cat.session.view[docs] == number) & (score > 0))

    n = len(docs)
    own = c.lexical + _or0(c.entities, n) + _or0(c.topics, n) + _or0(c.vectors, n)
    eligible = cat.alive.view[docs] & ((own > 0) | cat.pinned.view[docs])
    for memory_id in exclude:
        doc = cat.doc_of.get(memory_id)
        if doc is not None:
            i = int(np.searchsorted(docs, doc))
            if i < n and docs[i] == doc:
                eligible[i] = False
    at = np.flatnonzero(eligible)  # positions of the eligible candidates
    if not len(at):
        return []
    # best first; exact ties go to the newer memory, then to the larger id, so the order never
    # depends on doc numbers (which differ between a live index and a rebuilt one)
    shortlist = max(o.pool, 2 * k)
    final = score[at]
    created = cat.created.view
    if len(at) > shortlist:
        kth = np.partition(final, len(final) - shortlist)[len(final) - shortlist]
        at = at[final >= kth]  # everything tied with the cut-off stays in the shortlist
        if len(at) > 2 * shortlist:  # a sea of ties: order them by (score, time) in numpy first
            at = at[np.lexsort((-created[docs[at]], -score[at]))[: 2 * shortlist]]
    score_of = dict(zip(docs[at].tolist(), score[at].tolist(), strict=True))
    by_score = at[np.lexsort((-created[docs[at]], -score[at]))]
    first, then = score[by_score], created[docs[by_score]]
    if np.any((first[1:] == first[:-1]) & (then[1:] == then[:-1])):  # same score, same time
        ordered = sorted(score_of, key=lambda d: (-score_of[d], -created[d], cat.ids[d]))
    else:  # no exact tie: ids (a column read per memory) are not needed to order them
        ordered = docs[by_score].tolist()
    ranked = _with_fresh_sessions(data, ordered[:shortlist], k, o.fresh_session_slots)
    return [
        IndexHit(cat.ids[doc] or "", score_of[doc], why)
        for doc, why in zip(ranked, explain(data, ranked, q, c), strict=True)
    ]
