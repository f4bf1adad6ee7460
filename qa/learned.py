"""The learned selector: a cheap first stage shortlists retrieved sentences, the reader reads the shortlist, and
a calibrated answerability model, looking at the best few readings together, decides whether to answer at all.

Every weight and the abstention threshold come from `citeqa train` (stored in the reader's `reader.json`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from index.spans import Span
from index.text import terms
from qa.compose import SHORT_JOINER
from qa.question import Expect, wants_passage
from qa.reader import Candidate, Reader, Reading
from qa.retrieve import Retrieved
from qa.select import Evidence, Found, ScoredSpan, Selection, SpanSelector, clause_windows, form, holds

# What each learned linear model reads, in the order of its weights in reader.json: the reader's verdicts beside
# the cues the hand-weighted rules read (`SpanSelector.expected`: does the sentence hold the kind of thing asked
# for, a number for "how many", a name beside "president" for "who"; and whether the rules rule it out).
# "asks" and "heading": the sentence is a question (an interviewer's) or a title; interview transcripts quoted the
# interviewer's questions back as answers (GUM learning documents, never measuring ones).
# "replies": the sentence follows a question that shares the user's words: in an interview, the reply to it.
FIRST_STAGE_FEATURES = ("dense", "overlap", "chunk", "fits", "ruled out", "asks", "heading", "replies")
RANKER_FEATURES = ("first stage", "relevance", "span", "fits", "ruled out", "asks", "heading", "replies")
# The overlaps and the best sentence's dense similarity: chosen by leave-one-article-out on the calibration articles
# (abstain_ok at 15% false_abstain 0.365 -> 0.405, AUC 0.646 -> 0.660), never on the measuring articles; "unmatched"
# (how much of the question no document names) and the rules' cues on the best sentence, added with GUM.
# "missing rarest": the rarest question word the best sentence leaves out (`SpanSelector.missing`), chosen by
# out-of-fold comparison on the decision documents, never on measuring ones: AUC interview 0.773 -> 0.796, voyage
# 0.790 -> 0.824, wikipedia 0.674 -> 0.696; abstain_ok at a genre-averaged false_abstain of 0.10 0.481 -> 0.505.
# (The share of the question missing from the whole document as well measured 0.472: left out.)
ANSWERABLE_FEATURES = ("best rank", "second rank", "best relevance", "best span", "best first stage",
                       "best overlap", "most overlap", "best dense", "unmatched", "best fits", "best ruled out",
                       "typed", "missing rarest")
MAX_QUOTE_CHARS = 300  # as the rule-based selector: a long sentence is cut to the clauses around the answer
RELEVANT = 0.5  # the ranker's probability at which a sentence answers (its training label's boundary)
PASSAGE_SENTENCES = 3  # the longest run quoted for a reason, a way or a list (the bound)
SAID_MIN_CHARS = 20  # a piece of the previous answer this long found in a sentence means it was quoted there


class StaleReader(ValueError):
    """A reader card written for other features than this code reads."""


@dataclass(frozen=True)
class Linear:
    """A logistic model: sigmoid(weights · features + bias)."""

    weights: tuple[float, ...]
    bias: float

    @classmethod
    def from_card(cls, card: dict, features: tuple[str, ...]) -> Linear:
        """The model as `citeqa train` wrote it; one trained on other features is refused with what to do."""
        if len(card["weights"]) != len(features):
            raise StaleReader(f"the reader's card has {len(card['weights'])} weights where {len(features)} features "
                              f"({', '.join(features)}) are read: run `citeqa train --reader-from DIR` again")
        return cls(tuple(card["weights"]), card["bias"])

    def logit(self, features: np.ndarray) -> np.ndarray:
        return features @ np.asarray(self.weights) + self.bias

    def probability(self, features: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(features)))


def fits(found: Found) -> float:
    """The rules' answer-type cue as they weigh it: how well the sentence holds what is asked for, times how much
    of the question it shares (a number in an unrelated sentence is no answer to "how many")."""
    return (found.expected or 0.0) * found.overlap


def cues(found: Found) -> list[float]:
    return [fits(found), float(found.expected is None), float(found.asks), float(found.heading), found.replies]


def first_stage_features(found: list[Found]) -> np.ndarray:
    return np.asarray([[f.dense, f.overlap, f.chunk, *cues(f)] for f in found],
                      dtype=np.float64).reshape(-1, len(FIRST_STAGE_FEATURES))


def ranker_features(readings: list[Reading], first: list[float], shortlist: list[Found]) -> np.ndarray:
    return np.asarray([[f, r.relevance, r.span_score, *cues(s)]
                       for f, r, s in zip(first, readings, shortlist, strict=True)],
                      dtype=np.float64).reshape(-1, len(RANKER_FEATURES))


def answerable_features(rank: np.ndarray, readings: list[Reading], first: list[float],
                        shortlist: list[Found], evidence: Evidence, table: SpanSelector) -> np.ndarray:
    """The best sentence against the runner-up (a question many sentences half-answer is often unanswerable), how
    much of the question the sentences hold at all (a question about something the documents never name), whether
    the best one holds the kind of thing asked for, and the rarest question word it leaves out."""
    order = np.argsort(-rank, kind="stable")
    best = order[0]
    second = rank[order[1]] if len(order) > 1 else rank[best] - 10.0
    return np.asarray([rank[best], second, readings[best].relevance, readings[best].span_score, first[best],
                       shortlist[best].overlap, max(f.overlap for f in shortlist), shortlist[best].dense,
                       evidence.unmatched, fits(shortlist[best]), float(shortlist[best].expected is None),
                       float(evidence.question.expect is not Expect.ANY), table.missing(evidence, shortlist[best].row)],
                      dtype=np.float64)


class LearnedSelector:
    def __init__(self, table: SpanSelector, reader: Reader, threshold: float | None = None):
        self.table, self.reader = table, reader
        card = reader.card
        self.first_stage = Linear.from_card(card["first_stage"], FIRST_STAGE_FEATURES)
        self.ranker = Linear.from_card(card["ranker"], RANKER_FEATURES)
        self.answerable = Linear.from_card(card["answerable"], ANSWERABLE_FEATURES)
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
        if not shortlist or self.table.absent(evidence):
            return Selection(retrieved, [])
        readings = self.reader.read(reader_question(retrieved), [self.candidate(f.row) for f in shortlist])
        rank = self.ranker.logit(ranker_features(readings, first, shortlist))
        chance = float(self.answerable.probability(answerable_features(rank, readings, first, shortlist, evidence,
                                                                        self.table)))
        order = np.argsort(-rank, kind="stable").tolist()
        if retrieved.query.previous:
            order = not_again(order, rank, [self.table.quote(self.table.sentences[f.row].span) for f in shortlist],
                              retrieved.query.previous)
        ranked = [ScoredSpan(self.table.sentences[shortlist[i].row].span, sigmoid(float(rank[i]))) for i in order]
        if chance < self.threshold:
            return Selection(retrieved, [], ranked, floor=RELEVANT)
        best, reading = shortlist[order[0]].row, readings[order[0]]
        reply = self.reply_to(best) if shortlist[order[0]].asks else None
        if reply is not None:  # an interviewer's question answers nothing: the reply after it does
            best, reading = reply, self.reader.read(reader_question(retrieved), [self.candidate(reply)])[0]
        sentence = self.table.sentences[best].span
        short = Span(sentence.source, sentence.start + reading.start, sentence.start + reading.end)
        answering = {shortlist[i].row for i in order if sigmoid(float(rank[i])) >= RELEVANT}
        run = self.passage(best, answering) if wants_passage(evidence.question.text) else sentence
        quote = quote_around(self.table.quote(sentence), sentence, short) if run == sentence else run
        spans = [ScoredSpan(quote, chance)]
        question = evidence.question
        if question.expect is Expect.PERSON and not holds(self.table.quote(quote), question, near=False):
            turn = self.table.turn_speaker(best)  # a transcript: who speaks this turn is who said it
            speaker = turn or self.table.speaker(best, set(terms(self.table.quote(quote))), question)
            if speaker is not None and not (speaker.start < quote.end and quote.start < speaker.end):
                spans.insert(0, ScoredSpan(speaker, chance))  # who said it, named before the quote
                short = speaker if turn else short
        return Selection(retrieved, spans, ranked, short if short.end > short.start else None, RELEVANT)

    def reply_to(self, row: int) -> int | None:
        """The sentence right after a question in the same source, when it is not itself a question: in an
        interview or a FAQ, the answer to it."""
        following = row + 1
        if not self.joined(row, following, across_paragraphs=True):
            return None
        return None if form(self.table.quote(self.table.sentences.span(following)))[0] else following

    def passage(self, best: int, answering: set[int]) -> Span:
        """The best sentence joined with the neighbours that answer too (one paragraph, PASSAGE_SENTENCES at
        most): a reason or a list often runs on into the next sentence."""
        sentences = self.table.sentences
        first = last = best
        while last - first + 1 < PASSAGE_SENTENCES:
            if last + 1 in answering and self.joined(last, last + 1):
                last += 1
            elif first - 1 in answering and self.joined(first - 1, first):
                first -= 1
            else:
                break
        start, end = sentences.span(first), sentences.span(last)
        return Span(start.source, start.start, end.end) if first != last else start

    def joined(self, row: int, following: int, across_paragraphs: bool = False) -> bool:
        """Whether two rows are consecutive sentences of one paragraph (of one source, `across_paragraphs`)."""
        sentences = self.table.sentences
        if following >= len(sentences) or row < 0:
            return False
        one, two = sentences.span(row), sentences.span(following)
        return one.source == two.source and (
            across_paragraphs or "\n\n" not in self.table.texts[one.source][one.end:two.start])


def said_before(sentence: str, previous: str) -> bool:
    """Whether the previous answer already quoted this sentence (whole, or a clause of it)."""
    folded = " ".join(sentence.split()).casefold()
    pieces = [" ".join(p.split()).casefold() for p in re.split(rf"\[\d+\]|{re.escape(SHORT_JOINER.strip())}", previous)]
    return any(len(p) >= SAID_MIN_CHARS and (p in folded or folded in p) for p in pieces)


def not_again(order: list[int], rank: np.ndarray, sentences: list[str], previous: str) -> list[int]:
    """A follow-up's ranking with the sentences its previous answer gave moved last, when another one answers:
    "What did she say about that?" wants what she said next, not the quote just read."""
    again = [i for i in order if said_before(sentences[i], previous)]
    fresh = [i for i in order if i not in again]
    return fresh + again if fresh and sigmoid(float(rank[fresh[0]])) >= RELEVANT else order


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
