"""Hybrid retrieval: dense (Chroma, MiniLM) and BM25 over the same chunks, fused by reciprocal rank."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from langchain_core.embeddings import Embeddings
from rank_bm25 import BM25Okapi

from index.model import Chunk
from index.store import IndexStore, Snapshot
from index.text import normalize, terms
from qa.question import Question

RRF_K = 60
CONTEXT_WEIGHT = 0.5


@dataclass(frozen=True)
class Query:
    """A question as read, and the text of earlier turns it leans on (empty for a standalone question)."""

    question: Question
    context: str = ""


@dataclass
class Retrieved:
    query: Query
    vector: np.ndarray
    chunks: list[tuple[Chunk, float]]


class HybridRetriever:
    def __init__(self, store: IndexStore, snapshot: Snapshot, embeddings: Embeddings, top_k: int,
                 candidates: int = 12):
        self.store, self.embeddings = store, embeddings
        self.top_k, self.candidates = top_k, candidates
        self.chunks = {c.id: c for c in snapshot.chunks}
        self.order = [c.id for c in snapshot.chunks]
        self.bm25 = BM25Okapi([terms(c.text) for c in snapshot.chunks]) if snapshot.chunks else None

    def embed(self, query: Query) -> np.ndarray:
        vector = np.asarray(self.embeddings.embed_query(normalize(query.question.text)), dtype=np.float32)
        if query.context:
            context = np.asarray(self.embeddings.embed_query(normalize(query.context)), dtype=np.float32)
            vector = vector + CONTEXT_WEIGHT * context
            vector /= np.linalg.norm(vector) or 1.0
        return vector

    def run(self, query: Query) -> Retrieved:
        vector = self.embed(query)
        if not self.chunks:
            return Retrieved(query, vector, [])
        dense = [chunk_id for chunk_id, _ in self.store.dense_search(vector.tolist(), self.candidates)]
        fused: dict[str, float] = {}
        for ranking in (dense, self.keyword_ranking(query)):
            for rank, chunk_id in enumerate(ranking):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        best = sorted(fused.items(), key=lambda item: -item[1])[: self.top_k]
        return Retrieved(query, vector, [(self.chunks[i], score) for i, score in best if i in self.chunks])

    def keyword_ranking(self, query: Query) -> list[str]:
        scores = self.bm25.get_scores(query.question.terms)
        if query.context:
            scores = scores + CONTEXT_WEIGHT * self.bm25.get_scores(terms(query.context))
        top = np.argsort(-scores)[: self.candidates]
        return [self.order[i] for i in top if scores[i] > 0]
