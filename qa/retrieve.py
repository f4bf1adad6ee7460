"""Hybrid retrieval: dense (Chroma, MiniLM) and BM25 over the same chunks, fused by reciprocal rank."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np
from langchain_core.embeddings import Embeddings

from index.snapshot import Snapshot
from index.spans import Chunk
from index.store import IndexStore
from index.text import STOPWORDS, normalize, stem, terms, words
from qa.answer import Turn
from qa.keywords import KeywordIndex
from qa.question import Question

RRF_K = 60
CONTEXT_WEIGHT = 0.5
EXPANSIONS = 2  # document words a question word may stand for
EXPANSION_SIMILARITY = 0.7  # "moscow" ~ "russia" 0.83, "august" ~ "aug" 0.78; "gdp" ~ "economic" 0.62 is not enough


@dataclass(frozen=True)
class Query:
    """A question as read, and the text of earlier turns it leans on (empty for a standalone question)."""

    question: Question
    context: str = ""
    previous: str = ""  # a follow-up's previous answer: what was already said, not to be said again
    history: tuple[Turn, ...] = ()  # the conversation before it, checked (what a language model is shown)


@dataclass
class Retrieved:
    query: Query
    vector: np.ndarray
    chunks: list[tuple[Chunk, float]]
    # Question words the documents never use, mapped to document words of like meaning ("moscow" → "russia").
    expansions: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    # Each of those words' likeness to its nearest document word, near enough or not.
    likeness: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # what retrieval took (the reply's timing_ms.retrieve)

    @property
    def unknown(self) -> list[str]:
        """The question's words, as typed, that no document uses nor a word like them ("quinoa" over news about
        Niger): what an abstention names, so that the user can ask in the documents' words."""
        text = self.query.question.text
        missing = self.likeness.keys() - self.expansions.keys()
        found = dict.fromkeys(w for w in words(text) if stem(w) in missing)
        return [next((m.group() for m in re.finditer(rf"\b{re.escape(w)}\b", text, re.IGNORECASE)), w) for w in found]


class HybridRetriever:
    def __init__(self, store: IndexStore, snapshot: Snapshot, embeddings: Embeddings, top_k: int,
                 keywords: KeywordIndex | None = None, candidates: int = 12):
        """`keywords`: the snapshot's chunks' keyword index (`keyword_index`), built here when not given."""
        self.store, self.embeddings = store, embeddings
        self.top_k, self.candidates = top_k, candidates
        self.chunks = snapshot.chunks
        self.keywords = keywords if keywords is not None else keyword_index(snapshot, sentence_terms(snapshot))
        self.vocabulary, self.vocabulary_vectors = snapshot.vocabulary, snapshot.vocabulary_vectors
        self.vocabulary_terms = {stem(w) for w in snapshot.vocabulary}

    def embed(self, query: Query) -> np.ndarray:
        vector = np.asarray(self.embeddings.embed_query(normalize(query.question.text)), dtype=np.float32)
        if query.context:
            context = np.asarray(self.embeddings.embed_query(normalize(query.context)), dtype=np.float32)
            vector = vector + CONTEXT_WEIGHT * context
            vector /= np.linalg.norm(vector) or 1.0
        return vector

    def expand(self, query: Query) -> tuple[dict[str, list[tuple[str, float]]], dict[str, float]]:
        """Unseen question words → the documents' nearest words by embedding, when they are near enough; and each
        unseen word's likeness to its nearest document word."""
        unseen = {stem(w): w for w in words(query.question.text)
                  if w.isalpha() and w not in STOPWORDS and not self.known(stem(w))}
        unseen = {t: w for t, w in unseen.items() if t in query.question.terms}
        if not unseen or not self.vocabulary:
            return {}, {}
        # One by one as questions are (a few words; `embed_documents` is the batch path for chunks).
        vectors = np.asarray([self.embeddings.embed_query(w) for w in unseen.values()], dtype=np.float32)
        similarity = vectors @ self.vocabulary_vectors.T
        expansions, likeness = {}, {}
        for term, row in zip(unseen, similarity, strict=True):
            best = np.argsort(-row)[:EXPANSIONS]
            likeness[term] = float(row[best[0]])
            near = [(stem(self.vocabulary[i]), float(row[i])) for i in best if row[i] >= EXPANSION_SIMILARITY]
            if near:
                expansions[term] = near
        return expansions, likeness

    def known(self, term: str) -> bool:
        return term in self.vocabulary_terms or term in self.keywords

    def run(self, query: Query) -> Retrieved:
        started = time.perf_counter()
        vector = self.embed(query)
        if not len(self.chunks):
            return Retrieved(query, vector, [], seconds=time.perf_counter() - started)
        expansions, likeness = self.expand(query)
        # A chunk Chroma holds but this snapshot does not (written after it was taken) waits for the next one.
        dense = [row for row in (self.chunks.row(chunk_id) for chunk_id, _ in
                                 self.store.dense_search(vector.tolist(), self.candidates)) if row is not None]
        fused: dict[int, float] = {}
        for ranking in (dense, self.keyword_ranking(query, expansions)):
            for rank, row in enumerate(ranking):
                fused[row] = fused.get(row, 0.0) + 1.0 / (RRF_K + rank + 1)
        best = sorted(fused.items(), key=lambda item: -item[1])[: self.top_k]
        return Retrieved(query, vector, [(self.chunks[row], score) for row, score in best], expansions, likeness,
                         time.perf_counter() - started)

    def keyword_ranking(self, query: Query, expansions: dict[str, list[tuple[str, float]]]) -> list[int]:
        """Rows of the chunk table, best first."""
        scores = self.keywords.scores(query.question.terms + [t for near in expansions.values() for t, _ in near])
        if query.context:
            scores = scores + CONTEXT_WEIGHT * self.keywords.scores(terms(query.context))
        top = np.argsort(-scores)[: self.candidates]
        return [int(i) for i in top if scores[i] > 0]


def sentence_terms(snapshot: Snapshot) -> list[list[str]]:
    """Every content sentence's terms, in row order: read once when an index is loaded, for the keyword index and
    the selector's word frequencies alike (tokenizing was a third of loading a 30k-chunk index)."""
    spans = map(snapshot.sentences.span, range(len(snapshot.sentences)))
    return [terms(span.text_in(snapshot.texts.get(span.source, ""))) for span in spans]


def chunk_terms(snapshot: Snapshot, words_of_sentences: list[list[str]]) -> list[list[str]]:
    """Each chunk's terms, from its sentences' (a sentence is in two chunks, so this halves the reading). The same
    terms as the chunk's search text gives: its sentences are joined by spaces, which no word or name spans.
    Every chunk sentence's row is found at once, by one binary search over the sentence keys (one lookup per
    sentence in Python took 2 of the 5 s a refresh spends here at 30k chunks)."""
    chunks, sentences, texts = snapshot.chunks, snapshot.sentences, snapshot.texts
    if not len(chunks):
        return []
    rows = sentences.rows(chunks.sources, np.repeat(chunks.source, np.diff(chunks.first)),
                          chunks.sentence_starts).tolist()
    first = chunks.first.tolist()
    tokenized = []
    for row in range(len(chunks)):
        chunk_words: list[str] = []
        for i in range(first[row], first[row + 1]):
            if rows[i] >= 0:
                chunk_words += words_of_sentences[rows[i]]
            else:
                text = texts.get(chunks.sources[chunks.source[row]], "")
                chunk_words += terms(text[int(chunks.sentence_starts[i]):int(chunks.sentence_ends[i])])
        tokenized.append(chunk_words)
    return tokenized


def keyword_index(snapshot: Snapshot, words_of_sentences: list[list[str]]) -> KeywordIndex:
    """BM25 over the snapshot's chunks (`KeywordIndex.merged` carries it across a refresh instead)."""
    return KeywordIndex.build(chunk_terms(snapshot, words_of_sentences))
