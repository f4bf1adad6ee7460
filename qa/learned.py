"""The learned selector: a cheap first stage shortlists retrieved sentences, the reader reads the shortlist, and
a calibrated answerability model, looking at the best few readings together, decides whether to answer at all.

Every weight and the abstention threshold come from `citeqa train` (stored in the reader's `reader.json`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from index.spans import Span
from qa.reader import Candidate, Reader, Reading
from qa.retrieve import Retrieved
from qa.select import Evidence, Found, ScoredSpan, Selection, SpanSelector, clause_windows

# What each learned linear model reads, in the order of its weights in reader.json.
FIRST_STAGE_FEATURES = ("dense", "overlap", "chunk")
RANKER_FEATURES = ("first stage", "relevance", "span")
# The overlaps and the best sentence's dense similarity: chosen by leave-one-article-out on the calibration articles
# (abstain_ok at 15% false_abstain 0.365 -> 0.405, AUC 0.646 -> 0.660), never on the measuring articles.
ANSWERABLE_FEATURES = ("best rank", "second rank", "best relevance", "best span", "best first stage",
                       "best overlap", "most overlap", "best dense")
MAX_QUOTE_CHARS = 300  # as the rule-based selector: a long sentence is cut to the clauses around the answer
RELEVANT = 0.5  # the ranker's probability at which a sentence answers (its training label's boundary)


@dataclass(frozen=True)
class Linear:
    """A logistic model: sigmoid(weights · features + bias)."""

    weights: tuple[float, ...]
    bias: float

    @classmethod
    def from_card(cls, card: dict) -> Linear:
        return cls(tuple(card["weights"]), card["bias"])

    def logit(self, features: np.ndarray) -> np.ndarray:
        return features @ np.asarray(self.weights) + self.bias

    def probability(self, features: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(features)))


def first_stage_features(found: list[Found]) -> np.ndarray:
    return np.asarray([[f.dense, f.overlap, f.chunk] for f in found], dtype=np.float64).reshape(-1, 3)


def ranker_features(readings: list[Reading], first: list[float]) -> np.ndarray:
    return np.asarray([[f, r.relevance, r.span_score] for f, r in zip(first, readings, strict=True)],
                      dtype=np.float64).reshape(-1, 3)


def answerable_features(rank: np.ndarray, readings: list[Reading], first: list[float],
                        shortlist: list[Found]) -> np.ndarray:
    """The best sentence against the runner-up (a question many sentences half-answer is often unanswerable), and
    how much of the question the sentences hold at all (a question about something the documents never name)."""
    order = np.argsort(-rank, kind="stable")
    best = order[0]
    second = rank[order[1]] if len(order) > 1 else rank[best] - 10.0
    return np.asarray([rank[best], second, readings[best].relevance, readings[best].span_score, first[best],
                       shortlist[best].overlap, max(f.overlap for f in shortlist), shortlist[best].dense],
                      dtype=np.float64)


class LearnedSelector:
    def __init__(self, table: SpanSelector, reader: Reader, threshold: float | None = None):
        self.table, self.reader = table, reader
        card = reader.card
        self.first_stage = Linear.from_card(card["first_stage"])
        self.ranker = Linear.from_card(card["ranker"])
        self.answerable = Linear.from_card(card["answerable"])
        self.threshold = card["answerable"]["threshold"] if threshold is None else threshold
        self.read = card["read"]

    def shortlist(self, retrieved: Retrieved) -> tuple[Evidence, list[Found], list[float]]:
        """The retrieved sentences the reader reads: the first stage's best `read`, best first."""
        evidence = self.table.evidence(retrieved)
        if not evidence.found:
            return evidence, [], []
        scores = self.first_stage.logit(first_stage_features(evidence.found))
        order = np.argsort(-scores, kind="stable")[: self.read]
        return evidence, [evidence.found[i] for i in order], [float(scores[i]) for i in order]

    def candidate(self, row: int) -> Candidate:
        return candidate(self.table, row)

    def run(self, retrieved: Retrieved) -> Selection:
        evidence, shortlist, first = self.shortlist(retrieved)
        if not shortlist:
            return Selection(retrieved, [])
        readings = self.reader.read(reader_question(retrieved), [self.candidate(f.row) for f in shortlist])
        rank = self.ranker.logit(ranker_features(readings, first))
        chance = float(self.answerable.probability(answerable_features(rank, readings, first, shortlist)))
        order = np.argsort(-rank, kind="stable").tolist()
        ranked = [ScoredSpan(self.table.sentences[shortlist[i].row].span, sigmoid(float(rank[i]))) for i in order]
        if chance < self.threshold:
            return Selection(retrieved, [], ranked, floor=RELEVANT)
        best, reading = shortlist[order[0]].row, readings[order[0]]
        sentence = self.table.sentences[best].span
        short = Span(sentence.source, sentence.start + reading.start, sentence.start + reading.end)
        return Selection(retrieved, [ScoredSpan(quote_around(self.table.quote(sentence), sentence, short), chance)],
                         ranked, short if short.end > short.start else None, RELEVANT)


def candidate(table: SpanSelector, row: int) -> Candidate:
    """What the reader reads for a sentence: its text and the sentence before it in the same source."""
    return Candidate(table.quote(table.sentences[row].span), table.previous(row))


def reader_question(retrieved: Retrieved) -> str:
    """The question, and for a follow-up the earlier turn it leans on ("What did he say?" → who "he" is)."""
    query = retrieved.query
    return f"{query.question.text} {query.context}".strip() if query.context else query.question.text


def quote_around(text: str, sentence: Span, short: Span) -> Span:
    """The sentence, or for a long one the longest run of its clauses that holds the short answer."""
    if len(text) <= MAX_QUOTE_CHARS:
        return sentence
    inside = [(end - start, start, end) for start, end in clause_windows(text, MAX_QUOTE_CHARS)
              if sentence.start + start <= short.start and short.end <= sentence.start + end]
    if not inside:
        return sentence
    _, start, end = max(inside)
    return Span(sentence.source, sentence.start + start, sentence.start + end)


def sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value))
