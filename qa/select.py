"""Picks the sentences (or the clauses within one) that answer the question, and decides to abstain.

Each sentence of the retrieved chunks is scored by meaning (its own vector against the question's), by
IDF-weighted word overlap, by whether it holds the kind of thing asked for (a number for "how many", a name
for "who"), and by how well its chunk ranked. Long sentences are trimmed to the clauses that carry the answer.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from index.model import Sentence, Span
from index.store import Snapshot
from index.text import normalize, terms, words
from qa.question import Expect, Question, has_number, has_time, names
from qa.retrieve import CONTEXT_WEIGHT, Retrieved

_JOINERS = " ,;:\u2014-"
NAME_DISTANCE = 3  # words between a name and the question's word, as in an apposition
_CLAUSE_BREAK = re.compile(r"(?<=[,;:\u2014])\s+|\s+(?=[\u2014(])|(?<=[\u201d\"])\s+(?=said\b)")


@dataclass(frozen=True)
class Weights:
    dense: float = 1.0
    overlap: float = 1.0
    expected: float = 0.5
    chunk: float = 0.15
    threshold: float = 0.62
    second_ratio: float = 0.9
    max_chars: int = 280


@dataclass(frozen=True)
class ScoredSpan:
    span: Span
    score: float


@dataclass
class Selection:
    retrieved: Retrieved
    spans: list[ScoredSpan]

    @property
    def grounded(self) -> bool:
        return bool(self.spans)


class SpanSelector:
    def __init__(self, snapshot: Snapshot, weights: Weights | None = None):
        self.w = weights or Weights()
        self.texts = snapshot.texts
        self.row = {(s.span.source, s.span.start): i for i, s in enumerate(snapshot.sentences)}
        self.sentences = snapshot.sentences
        self.vectors = snapshot.sentence_vectors
        self.terms = [set(terms(self.quote(s.span))) for s in snapshot.sentences]
        frequency = Counter(t for ts in self.terms for t in ts)
        total = max(1, len(self.terms))
        self.idf = {t: math.log(1 + total / n) for t, n in frequency.items()}
        self.unseen_idf = math.log(1 + total)

    def quote(self, span: Span) -> str:
        return self.texts.get(span.source, "")[span.start:span.end]

    def run(self, retrieved: Retrieved) -> Selection:
        question = retrieved.query.question
        weights = Overlap(self._idf(question.terms), self._idf(terms(retrieved.query.context)))
        scored = sorted(self._candidates(retrieved, weights), key=lambda item: -item[1])
        if not scored or scored[0][1] < self.w.threshold:
            return Selection(retrieved, [])
        best_row, best_score = scored[0]
        chosen = [ScoredSpan(self._trim(best_row, question, weights), best_score)]
        for row, score in scored[1:3]:
            span = self._trim(row, question, weights)
            if score >= self.w.second_ratio * best_score and self._fits(chosen, span):
                chosen.append(ScoredSpan(span, score))
        return Selection(retrieved, sorted(chosen, key=lambda s: (s.span.source, s.span.start)))

    def _idf(self, ts: list[str]) -> dict[str, float]:
        return {t: self.idf.get(t, self.unseen_idf) for t in ts}

    def _candidates(self, retrieved: Retrieved, weights: Overlap) -> list[tuple[int, float]]:
        chunk_score: dict[int, float] = {}
        top = max((score for _, score in retrieved.chunks), default=1.0)
        for chunk, score in retrieved.chunks:
            for span in chunk.sentences:
                row = self.row.get((span.source, span.start))
                if row is not None:
                    chunk_score[row] = max(chunk_score.get(row, 0.0), score / top)
        if not chunk_score:
            return []
        rows = np.fromiter(chunk_score, dtype=np.int64)
        dense = self.vectors[rows] @ retrieved.vector
        question = retrieved.query.question
        scored = []
        for row, similarity in zip(rows.tolist(), dense.tolist(), strict=True):
            expected = self._expected(row, question)
            if expected is not None:
                scored.append((row, self.w.dense * similarity + self.w.overlap * weights.of(self.terms[row])
                               + self.w.expected * expected + self.w.chunk * chunk_score[row]))
        return scored

    def _expected(self, row: int, question: Question) -> float | None:
        """How well the sentence holds what the question asks for (1 best); None when it cannot answer.

        A count or a date must be in the sentence itself, beside the thing counted; a name may be in the
        sentence before (the speaker of a quote), which counts for less.
        """
        if question.expect is Expect.ANY:
            return 0.0
        if question.focus and not question.focus & self.terms[row]:
            return None
        here = holds(self.quote(self.sentences[row].span), question)
        if question.expect in (Expect.NUMBER, Expect.TIME):
            return 1.0 if here else None
        if here:
            return here
        return 0.5 * holds(self._previous(row), question) - 0.5

    def _previous(self, row: int) -> str:
        """The sentence before, when in the same or the previous paragraph: where a speaker is often named."""
        if row == 0:
            return ""
        before, this = self.sentences[row - 1], self.sentences[row]
        near = before.span.source == this.span.source and this.paragraph - before.paragraph <= 1
        return self.quote(before.span) if near else ""

    def _trim(self, row: int, question: Question, weights: Overlap) -> Span:
        """The shortest run of clauses that keeps the sentence's answer, when the sentence is long."""
        sentence: Sentence = self.sentences[row]
        text = self.quote(sentence.span)
        if len(text) <= self.w.max_chars:
            return sentence.span
        cuts = [0] + [m.end() for m in _CLAUSE_BREAK.finditer(text)] + [len(text)]
        best: tuple[tuple[float, int, int], Span] | None = None
        for i in range(len(cuts) - 1):
            for j in range(i + 1, len(cuts)):
                start, end = _strip(text, cuts[i], cuts[j])
                if end - start > self.w.max_chars:
                    break
                piece = text[start:end]
                rank = (weights.of(set(terms(piece))) + 0.5 * holds(piece, question), len(piece), -i)
                if best is None or rank > best[0]:
                    offset = sentence.span.start
                    best = (rank, Span(sentence.span.source, offset + start, offset + end))
        return best[1] if best else sentence.span

    def _fits(self, chosen: list[ScoredSpan], span: Span) -> bool:
        overlaps = any(c.span.source == span.source and c.span.start < span.end and span.start < c.span.end
                       for c in chosen)
        length = sum(c.span.end - c.span.start for c in chosen) + span.end - span.start
        return not overlaps and length <= self.w.max_chars


@dataclass(frozen=True)
class Overlap:
    """IDF-weighted share of the question's words in a sentence; a follow-up's context counts as a group."""

    question: dict[str, float]
    context: dict[str, float]

    def of(self, sentence_terms: set[str]) -> float:
        share = _share(self.question, sentence_terms)
        if not self.context:
            return share
        return (share + CONTEXT_WEIGHT * _share(self.context, sentence_terms)) / (1 + CONTEXT_WEIGHT)


def _share(weights: dict[str, float], sentence_terms: set[str]) -> float:
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in sentence_terms) / total if total else 0.0


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    """A clause without the punctuation and spaces that joined it to its neighbours."""
    while start < end and text[start] in _JOINERS:
        start += 1
    while end > start and text[end - 1] in _JOINERS:
        end -= 1
    return start, end


def holds(text: str, question: Question) -> float:
    """Whether `text` holds the kind of thing asked for, beyond what the question names (0 to 1).

    For a name, one standing beside a word of the question ("President Mohamed Bazoum", "minister,
    Catherine Colonna", "leader Gen. Abdourahmane Tchiani") counts; a name elsewhere does not.
    """
    if question.expect is Expect.ANY or not text:
        return float(question.expect is Expect.ANY)
    asked = set(words(question.text))
    new_words = [w for w in words(text) if w not in asked]
    if question.expect is Expect.NUMBER:
        return float(has_number(new_words))
    if question.expect is Expect.TIME:
        return float(has_time(new_words))
    known = set(words(question.text))
    tokens = normalize(text).split()
    asked_at = [i for i, token in enumerate(tokens) if set(terms(token)) & set(question.terms)]
    named_at = []
    for name in names(text):
        # A person's name is new to the question and not in capitals (datelines, acronyms).
        new = [w for w in name.split() if not w.isupper() and not set(words(w)) <= known]
        if new:
            named_at += [i for i, token in enumerate(tokens) if token.strip("(\"'").startswith(new[0])]
    if not named_at:
        return 0.0
    return 1.0 if any(abs(i - j) <= NAME_DISTANCE for i in named_at for j in asked_at) else 0.0

