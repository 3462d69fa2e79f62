"""The ranking knobs, in one place, with the reason behind each default.

Defaults were chosen on LoCoMo dev (bench/locomo.py) from coarse grids, and picked inside broad
plateaus (neighbouring values score within ~0.005) rather than at the sharpest peak, so that they
carry over to conversations we have not seen. Every weight is relative to the best lexical hit
(each signal is scaled to a maximum of 1 before blending).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RecallOptions:
    """Which components are on, and how much each counts in the blend."""

    # components (the benchmark's ablations switch these off)
    graph: bool = True
    session_context: bool = True
    temporal: bool = True
    vectors: bool = True

    # lexical BM25 over single memories. Memories are short and of similar length, so length
    # normalisation matters less than usual: b 0.5 rather than 0.75 (LoCoMo dev: turn recall@10
    # 0.818 -> 0.825, session recall@5 0.942 either way; b 0.3 trades 0.006 of the latter for
    # 0.008 of the former, and the session figure has the thinner margin)
    k1: float = 1.2
    b: float = 0.5
    # BM25 over whole sessions (a session is one document)
    session_k1: float = 1.2
    session_b: float = 0.75

    # who said what (memo_shell.index.sides): a word counts fully when the user stated it, and
    # this much when it comes from a question the user asked (a question is not a fact: asked
    # again, it would otherwise outrank the statement by echoing the query word for word) or
    # from the model's answer (a claim, possibly wrong). Chosen on bench/truth.py together with
    # LoCoMo dev and its real-chat variants (bench/locomo.py, "- provenance" ablation)
    w_question: float = 0.1
    w_claim: float = 0.1

    # context: a memory right after a matching one is often its answer ("how was the trip?"
    # -> "amazing, we hiked..."), and a session relevant as a whole lifts all of its memories
    w_prev: float = 0.3
    w_prev2: float = 0.1
    w_next: float = 0.1
    w_session: float = 0.5
    #: a person the query names is the speaker of the memory (transcripts, imported chats)
    w_speaker: float = 0.2
    #: the caller's current session: a mild nudge, never a filter
    w_current: float = 0.05

    # knowledge graph: spreading activation from the query's entities and best hits, over
    # memory-entity edges (named things) and memory-topic edges (content words)
    w_entities: float = 0.1
    w_topics: float = 0.2
    graph_seeds: int = 10
    graph_top_entities: int = 30
    topic_terms: int = 10

    # time: memories inside a span the question names ("in July 2023") rank higher
    w_time: float = 0.7

    # vectors (only with an embedder): cosine similarity, scaled like the others
    w_vectors: float = 0.5

    #: of k >= 5 results, how many go to the best memories from sessions not already shown
    fresh_session_slots: int = 1
    #: how many candidates get reasons computed and are considered for the final cut
    pool: int = 200

    # scale (memo_shell.recall.pool): when the query's words have more postings than this in
    # all, each lexical signal yields only its best ``lexical_pool`` memories (by dynamic
    # pruning) for the other signals to re-rank, instead of every memory that shares a word
    # with the question. Below it (stores of a few thousand memories) ranking is exhaustive.
    # Tolerance measured in bench/recall_pool.py: at 1M synthetic memories, 0.97 of the top-10
    # lists identical to exhaustive ranking (0.973 with a pool of 1,000, 0.92 with 200)
    exhaustive_below: int = 50_000
    lexical_pool: int = 500
    #: a word with more postings than this is looked up, not walked, unless every word of the
    #: question is that long (the pool then comes from the rarer words and the pool's reach)
    long_postings: int = 50_000
