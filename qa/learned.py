"""The learned selector: a cheap first stage shortlists retrieved sentences, the reader reads the shortlist, and
a calibrated answerability model, looking at the best few readings together, decides whether to answer at all.

Every weight and the abstention threshold come from `citeqa train` (stored in the reader's `reader.json`).
"""

from __future__ import annotations

import math
import re

import numpy as np

from index.spans import Span
from index.text import terms
from qa.compose import SHORT_JOINER
from qa.features import (
    ANSWERABLE_FEATURES,
    FIRST_STAGE_FEATURES,
    RANKER_FEATURES,
    Linear,
    answerable_features,
    candidate,
    first_stage_features,
    ranker_features,
    reader_question,
)
from qa.question import Expect, wants_passage
from qa.reader import Candidate, Reader
from qa.retrieve import Retrieved
from qa.select import Evidence, Found, ScoredSpan, Selection, SpanSelector, clause_windows, holds

MAX_QUOTE_CHARS = 300  # as the rule-based selector: a long sentence is cut to the clauses around the answer
RELEVANT = 0.5  # the ranker's probability at which a sentence answers (its training label's boundary)
PASSAGE_SENTENCES = 3  # the longest run quoted for a reason, a way or a list (the bound)
SAID_MIN_CHARS = 20  # a piece of the previous answer this long found in a sentence means it was quoted there


class LearnedSelector:
    def __init__(self, table: SpanSelector, reader: Reader, threshold: float | None = None):
        self.table, self.reader = table, reader
        card = reader.card
        self.first_stage = Linear.from_card(card["first_stage"], FIRST_STAGE_FEATURES)
        self.ranker = Linear.from_card(card["ranker"], RANKER_FEATURES)
        self.answerable = Linear.from_card(card["answerable"], ANSWERABLE_FEATURES)
        self.threshold = card["answerable"]["threshold"] if threshold is None else threshold
        # Whether the question is about anything the documents hold at all: "What is the price of quinoa flour?"
        # over news about Niger (`lab.absent`). Read from the same features, a model and threshold of its own.
        self.about = Linear.from_card(card["about"], ANSWERABLE_FEATURES)
        self.about_threshold = card["about"]["threshold"]
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
        if not shortlist or self.table.absent(evidence) or self.table.asks_nothing(evidence):
            return Selection(retrieved, [])
        readings = self.reader.read(reader_question(retrieved), [self.candidate(f.row) for f in shortlist])
        rank = self.ranker.logit(ranker_features(readings, first, shortlist))
        features = answerable_features(rank, readings, first, shortlist, evidence, self.table)
        chance = float(self.answerable.probability(features))
        held = not checks_topic(retrieved) or float(self.about.probability(features)) >= self.about_threshold
        order = np.argsort(-rank, kind="stable").tolist()
        if retrieved.query.previous:
            order = not_again(order, rank, [self.table.quote(self.table.sentences[f.row].span) for f in shortlist],
                              retrieved.query.previous)
        ranked = [ScoredSpan(self.table.sentences[shortlist[i].row].span, sigmoid(float(rank[i]))) for i in order]
        if chance < self.threshold or not held:  # no sentence answers, or the documents hold nothing it is about
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
        """The sentence after a question that answers it, in an interview or a FAQ: the next one when it is not a
        question; when the question's paragraph ends in more questions (an interviewer asking twice, "Do you think
        this is a revival? Or is it nothing?"), the first sentence of the next paragraph. Questions followed by a
        statement in their own paragraph are the speaker's own (rhetorical): no reply is taken for them."""
        following = row + 1
        while self.joined(following - 1, following) and self.table.asks(following):
            following += 1
        if following > row + 1 and self.joined(following - 1, following):
            return None
        if not self.joined(following - 1, following, across_paragraphs=True) or self.table.asks(following):
            return None
        return following

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


def checks_topic(retrieved: Retrieved) -> bool:
    """Whether the "about" check reads this question: a standalone one. A follow-up's topic is the conversation's,
    which the documents held, and the check learned standalone questions ("And how many American personnel?" was
    turned away when follow-ups were checked)."""
    return not retrieved.query.context


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
