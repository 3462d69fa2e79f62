"""The entity knowledge graph: memory -[mentions]-> entity, entity co-occurrence, expansion.

Storage, and why: the graph's edges are kept as an incidence index (``IndexData.graph``: entity ->
memories, memory -> entities), not as a networkx object. At 100k memories a networkx graph with
every mention and co-occurrence edge costs hundreds of MB of Python objects and seconds to load;
the incidence arrays cost a few MB, load with the snapshot, and give co-occurrence exactly
(entities sharing a memory) with one ``bincount``. networkx is used where it shines, on the small
neighbourhood of one entity built on demand (``subgraph``), e.g. for the TUI's graph view.

Edges:
* memory -[mentions]-> entity: the incidence index (weights encode the mention's kind);
* entity -[co-occurs, weight = shared memories]- entity: derived here;
* memory -[next]-> memory within a session: the catalog's linked list (``Catalog.prev/next``);
* memory -[mentions]-> topic: the lexical index (content words), walked by ``recall.lexical``.

Which entities count: a capitalised word that opened a sentence was only *guessed* to be a name
at extraction. The graph accepts it when live evidence agrees: the same entity was written as a
name mid-sentence somewhere, or the word never occurs in any live memory except as this entity
(so it was never written as an ordinary word; for a run like "Acme Robotics" opening a
sentence, the test is on its first word). Both tests are counts over live memories, so the
answer does not depend on the order memories were added or on memories since forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from memo_shell.analyzer import stem
from memo_shell.extract import canonical
from memo_shell.index.data import IndexData
from memo_shell.index.entities import KINDS
from memo_shell.index.schema import EntityInfo

if TYPE_CHECKING:
    import networkx as nx


def valid(data: IndexData, numbers: np.ndarray) -> np.ndarray:
    """Which entities are real: mentioned by a live memory, and confirmed or never common."""
    numbers = np.asarray(numbers, dtype=np.int64)
    out = np.zeros(len(numbers), dtype=bool)
    if not len(numbers):
        return out
    df = data.graph.df.view
    mentioned = np.zeros(len(numbers), dtype=bool)
    inside = numbers < len(df)
    mentioned[inside] = df[numbers[inside]] > 0
    confirmed = data.entities.confirmed(numbers)
    out = mentioned & confirmed
    for i in np.flatnonzero(mentioned & ~confirmed).tolist():
        first_word = data.entities.keys[int(numbers[i])].split()[0]  # the word that opened it
        term = data.terms.get(stem(first_word))
        uses = data.lexical.count(term) if term is not None else 0
        out[i] = uses <= int(df[numbers[i]])  # never written except as this name
    return out


def linkable(data: IndexData, numbers: np.ndarray) -> np.ndarray:
    """Valid entities of a kind that links memories (names, places, titles... not dates)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if not len(numbers):
        return np.zeros(0, dtype=bool)
    return valid(data, numbers) & data.entities.linkable_kind(numbers)


def entity_number(data: IndexData, entity: str) -> int | None:
    number = data.entities.get(entity)
    if number is None:
        number = data.entities.get(canonical(entity))
    return number


def top_entities(data: IndexData, limit: int | None = None) -> list[EntityInfo]:
    """Valid entities by how many live memories mention them, most first (ties by key)."""
    df = data.graph.df.view
    live = np.flatnonzero(df > 0)
    live = live[valid(data, live)]
    order = sorted(live.tolist(), key=lambda e: (-int(df[e]), data.entities.keys[e]))
    if limit is not None:
        order = order[:limit]
    kinds = data.entities.kind_index(np.asarray(order, dtype=np.int64))
    return [
        EntityInfo(data.entities.names[e], KINDS[int(k)], int(df[e]))
        for e, k in zip(order, kinds, strict=True)
    ]


def live_mentions(data: IndexData, number: int) -> np.ndarray:
    """Doc numbers of live memories mentioning entity ``number``."""
    docs, _w = data.graph.postings(number)
    return docs[data.catalog.alive.view[docs]]


def mentions(data: IndexData, entity: str) -> list[str]:
    """Ids of the live memories mentioning an entity, newest first."""
    number = entity_number(data, entity)
    if number is None or not valid(data, np.array([number]))[0]:
        return []
    docs = live_mentions(data, number)
    cat = data.catalog
    ordered = sorted(docs.tolist(), key=lambda d: (cat.created[d], cat.ids[d]), reverse=True)
    return [cat.ids[d] for d in ordered]


def cooccurrence(data: IndexData, number: int) -> tuple[np.ndarray, np.ndarray]:
    """(entity numbers, shared-memory counts) of valid entities co-occurring with ``number``."""
    docs = live_mentions(data, number)
    _owners, keys, _w = data.graph.forward_many(docs)
    if not len(keys):
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    counts = np.bincount(keys, minlength=len(data.entities))
    counts[number] = 0
    others = np.flatnonzero(counts)
    others = others[valid(data, others)]
    return others, counts[others].astype(np.float64)


def neighbours(data: IndexData, entity: str, limit: int = 20) -> list[tuple[str, float]]:
    """Co-occurring entities by shared memories, most first."""
    number = entity_number(data, entity)
    if number is None:
        return []
    others, weights = cooccurrence(data, number)
    order = sorted(range(len(others)), key=lambda i: (-weights[i], data.entities.keys[others[i]]))
    return [(data.entities.names[int(others[i])], float(weights[i])) for i in order[:limit]]


def subgraph(data: IndexData, entity: str, *, limit: int = 20) -> nx.Graph:
    """An entity and its strongest co-occurring neighbours as a weighted networkx graph.

    Nodes are display names (with ``kind`` and ``count`` attributes); edge weights are shared
    memories, including the edges among the neighbours themselves, so the TUI can lay it out.
    """
    import networkx as nx  # only for this small view; keeps ~0.1 s off every start-up

    g = nx.Graph()
    number = entity_number(data, entity)
    if number is None:
        return g
    others, weights = cooccurrence(data, number)
    order = sorted(range(len(others)), key=lambda i: (-weights[i], data.entities.keys[others[i]]))
    keep = [int(others[i]) for i in order[:limit]]
    df = data.graph.df.view
    for e in [number, *keep]:
        g.add_node(data.entities.names[e], kind=data.entities.kind(e), count=int(df[e]))
    kept = set(keep) | {number}
    for e in [number, *keep]:
        docs = live_mentions(data, e)
        _o, keys, _w = data.graph.forward_many(docs)
        counts = np.bincount(keys, minlength=len(data.entities)) if len(keys) else np.zeros(0)
        for other in kept:
            if other > e and len(counts) and counts[other]:
                g.add_edge(
                    data.entities.names[e], data.entities.names[other], weight=float(counts[other])
                )
    return g


def query_entities(data: IndexData, query: str, *, max_words: int = 4) -> list[int]:
    """Valid entities named in a query: every 1-4 word run of it that is an entity key."""
    tokens = canonical(query[:2000]).split()
    found: list[int] = []
    for n in range(max_words, 0, -1):
        for i in range(len(tokens) - n + 1):
            number = data.entities.get(" ".join(tokens[i : i + n]))
            if number is not None and number not in found:
                found.append(number)
    if not found:
        return []
    ok = valid(data, np.array(found))
    return [e for e, good in zip(found, ok, strict=True) if good]


@dataclass
class Spread:
    """Activation reaching memories through the graph: sorted docs, and per doc its score, the
    entity that contributed most, and that entity's hops from the query."""

    docs: np.ndarray
    score: np.ndarray
    entity: np.ndarray
    hops: np.ndarray


_NO_SPREAD = Spread(
    np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.int32), np.zeros(0, np.int8)
)


def spread(
    data: IndexData,
    seed_docs: np.ndarray,
    seed_weights: np.ndarray,
    seed_entities: list[int],
    *,
    top_entities: int = 30,
    hub_share: float = 0.2,
) -> Spread:
    """Spreading activation over memory-entity edges (two steps of a personalized PageRank).

    Activation starts on the query's own entities and on the best lexical hits, flows to the
    entities those memories mention (split by each memory's out-degree, scaled by entity
    specificity), then to every memory mentioning the most active entities. Hub entities (in more
    than ``hub_share`` of all memories, like the user's own name) carry no information and are
    skipped, as are dates and entities the evidence does not support. Only the memories reached
    are returned (sparse: the cost follows the mentions, not the store).
    """
    if len(data.entities) == 0:
        return _NO_SPREAD
    act: dict[int, float] = {}
    direct: set[int] = set()
    for e in seed_entities:
        act[e] = act.get(e, 0.0) + 1.0
        direct.add(e)
    if len(seed_docs):
        owners, keys, _w = data.graph.forward_many(seed_docs.tolist())
        if len(keys):
            weight_of = dict(zip(seed_docs.tolist(), seed_weights.tolist(), strict=True))
            _docs, slot, deg = np.unique(owners, return_inverse=True, return_counts=True)
            w = np.array([weight_of[int(o)] for o in owners]) / np.maximum(deg[slot], 1)
            for e, x in zip(keys.tolist(), w.tolist(), strict=True):
                act[e] = act.get(e, 0.0) + x
    if not act:
        return _NO_SPREAD
    numbers = np.fromiter(act.keys(), np.int64, len(act))
    values = np.fromiter(act.values(), np.float64, len(act))
    df = data.graph.df.view[numbers].astype(np.float64)
    n_docs = max(data.n_docs, 1)
    values *= np.log1p(n_docs / np.maximum(df, 1.0))
    values[df > max(3.0, hub_share * n_docs)] = 0.0
    values[~linkable(data, numbers)] = 0.0
    names = [data.entities.keys[int(e)] for e in numbers]
    order = sorted(
        (i for i in range(len(numbers)) if values[i] > 0), key=lambda i: (-values[i], names[i])
    )[:top_entities]
    reached, contribs, entities, hops = [], [], [], []
    for i in order:
        e = int(numbers[i])
        docs = live_mentions(data, e)
        if not len(docs):
            continue
        reached.append(docs.astype(np.int64))
        contribs.append(np.full(len(docs), values[i] / np.sqrt(len(docs))))
        entities.append(np.full(len(docs), e, dtype=np.int32))
        hops.append(np.full(len(docs), 2 if e in direct else 3, dtype=np.int8))
    if not reached:
        return _NO_SPREAD
    doc, contrib = np.concatenate(reached), np.concatenate(contribs)
    # summed in entity order, as the activation flows; the entity credited with a memory is the
    # one that gave it the most (the first of those, on a tie)
    first = np.lexsort((np.arange(len(doc)), -contrib, doc))
    head = np.ones(len(first), dtype=bool)
    head[1:] = doc[first][1:] != doc[first][:-1]
    best = first[head]  # per doc (ascending), its strongest entry
    unique, slot = np.unique(doc, return_inverse=True)
    score = np.bincount(slot, weights=contrib, minlength=len(unique))
    return Spread(unique, score, np.concatenate(entities)[best], np.concatenate(hops)[best])
