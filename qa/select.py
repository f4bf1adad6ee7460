"""Picks the sentences (or the clauses within one) that answer the question, and decides to abstain.

Each sentence of the retrieved chunks is scored by meaning (its own vector against the question's), by
IDF-weighted word overlap, by whether it holds the kind of thing asked for (a number for "how many", a name
for "who"), and by how well its chunk ranked. Long sentences are trimmed to the clauses that carry the answer.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace

import numpy as np

from index.snapshot import Snapshot
from index.spans import Sentence, Span
from index.text import normalize, terms, token_terms, token_words, words
from qa.question import Expect, Question, has_number, has_time, names
from qa.retrieve import CONTEXT_WEIGHT, Retrieved, sentence_terms

_JOINERS = " ,;:\u2014-"
_CLOSING_QUOTES = "\"'\u201d\u2019)]"
_SENTENCE_ENDS = (".", "!", "?", ":", ";", "\u2026")
NAME_DISTANCE = 3  # words between a name and the question's word, as in an apposition
BEFORE_WEIGHT = 0.5  # a question word found only in the sentences before
CONTEXT_SENTENCES = 2  # "He said…" two sentences after the speaker is named
TERM_CACHE = 4096  # sentences whose terms stay read: a question reads ~25, each more than once
SPEAKER_CHARS = 160  # the longest clause cited for who said it
# A transcript's turn: a paragraph opening with one to four capitalized words and a colon ("Noam Chomsky: ...").
_TURN_LABEL = re.compile(r"(?m)^[ \t]*([A-Z][\w.'\u2019-]*(?:[ \t]+[A-Z][\w.'\u2019-]*){0,3}):[ \t]")
MIN_TURN_LABELS = 2  # one "Note: ..." paragraph does not make a transcript
LABEL_CACHE = 64  # documents whose labels stay read
# A name no document word is this like stands for nothing the documents hold: "quillon" ~ "bloc" 0.38 in the seed
# article; "american" ~ "country" 0.53 where it says "U.S.", "british" ~ "country" 0.61 (MiniLM, the seed's words).
NAME_LIKENESS = 0.5
VALUE_DISTANCE = 6  # words between a count or date and what it counts or dates
# Clause breaks: after , ; : — (also when a closing quote follows them), before — or (, and before "said".
_CLAUSE_BREAK = re.compile(r"(?<=[,;:\u2014])\s+|(?<=[,;:][\u201d\"])\s+|\s+(?=[\u2014(])|(?<=[\u201d\"])\s+(?=said\b)")


@dataclass(frozen=True)
class Weights:
    dense: float = 1.0
    overlap: float = 1.0
    expected: float = 0.5
    chunk: float = 0.15
    threshold: float = 0.62
    second_ratio: float = 0.9
    max_chars: int = 300


@dataclass(frozen=True)
class ScoredSpan:
    span: Span
    score: float


@dataclass(frozen=True)
class Found:
    """A retrieved sentence (its row in the snapshot) and the cheap signals both selectors start from."""

    row: int
    dense: float  # cosine of its own vector with the question's
    overlap: float  # IDF-weighted share of the question's words it holds (`Overlap.of`)
    chunk: float  # its best chunk's fused retrieval score, over the best chunk's
    expected: float | None  # how well it holds what the question asks for (`SpanSelector.expected`); None: not at all
    asks: bool = False  # it is itself a question (an interviewer's, a FAQ's): it rarely answers one
    heading: bool = False  # it ends without a sentence's punctuation: a title, a heading, a caption
    replies: float = 0.0  # it follows a question (an interviewer's): how much of the user's question that one shares


@dataclass(frozen=True)
class Evidence:
    retrieved: Retrieved
    question: Question
    overlap: Overlap
    found: list[Found]
    unmatched: float = 0.0  # IDF-weighted share of the question's words that no indexed sentence holds, nor a like word


@dataclass
class Selection:
    """The spans chosen to answer, and every candidate sentence ranked (what a language model is shown)."""

    retrieved: Retrieved
    spans: list[ScoredSpan]
    ranked: list[ScoredSpan] = field(default_factory=list)
    short: Span | None = None  # the exact words that answer, inside one of `spans`
    floor: float = 0.0  # the score in `ranked` at which a sentence counts as answering the question

    @property
    def answering(self) -> list[ScoredSpan]:
        """The ranked sentences scored as answering the question, best first."""
        return [s for s in self.ranked if s.score >= self.floor]

    def answers(self, span: Span) -> bool:
        return any(s.span == span for s in self.answering)

    @property
    def grounded(self) -> bool:
        return bool(self.spans)


def sentence_frequency(words_of_sentences: list[list[str]]) -> Counter[str]:
    """How many sentences hold each term: the selector's IDF, which a refresh updates (`Counter.subtract`/`update`
    with the changed sentences' term sets) instead of counting again."""
    return Counter(t for words in words_of_sentences for t in set(words))


class SpanSelector:
    def __init__(self, snapshot: Snapshot, weights: Weights | None = None, frequency: Counter[str] | None = None):
        """`frequency`: how many sentences hold each term (`sentence_frequency`), counted here when not given."""
        self.w = weights or Weights()
        self.texts = snapshot.texts
        self.sentences = snapshot.sentences
        self.vectors = snapshot.sentence_vectors
        self._labels: dict[str, list[Span]] = {}  # source → its speakers' labels, for the last questions' transcripts
        self._read: dict[int, frozenset[str]] = {}  # row → its terms, for the last questions (a plain dict: an
        # lru_cache over a bound method would tie this selector, and its snapshot, into a cycle only gc frees)
        # Document frequency over sentences, counted once; each sentence's words are read again when a question
        # retrieves it (a few dozen a question): a word set per sentence held ~0.8 GB at 100k chunks.
        self.frequency = frequency if frequency is not None else sentence_frequency(sentence_terms(snapshot))
        self.total = max(1, len(self.sentences))

    def quote(self, span: Span) -> str:
        return self.texts.get(span.source, "")[span.start:span.end]

    def terms(self, row: int) -> frozenset[str]:
        """The sentence's terms, read when a question retrieves it and kept for the next few questions."""
        found = self._read.get(row)
        if found is None:
            if len(self._read) >= TERM_CACHE:
                self._read.clear()
            found = self._read[row] = frozenset(terms(self.quote(self.sentences.span(row))))
        return found

    def run(self, retrieved: Retrieved) -> Selection:
        evidence = self.evidence(retrieved)
        question, weights = evidence.question, evidence.overlap
        scored = sorted(self._candidates(evidence), key=lambda item: -item[1])
        ranked = [ScoredSpan(self.sentences[row].span, score) for row, score in scored]
        if not scored or scored[0][1] < self.w.threshold or self.asks_nothing(evidence):
            return Selection(retrieved, [], ranked, floor=self.w.threshold)
        best_row, best_score = scored[0]
        chosen = [ScoredSpan(self._trim(best_row, question, weights), best_score)]
        for row, score in scored[1:3]:
            span = self._trim(row, question, weights)
            if score >= self.w.second_ratio * best_score and self._fits(chosen, span):
                chosen.append(ScoredSpan(span, score))
        if question.expect is Expect.PERSON and not holds(self.quote(chosen[0].span), question, near=False):
            speaker = self.speaker(best_row, set(terms(self.quote(chosen[0].span))), question)
            if speaker is not None and self._fits(chosen, speaker):
                chosen.append(ScoredSpan(speaker, best_score))
        return Selection(retrieved, sorted(chosen, key=lambda s: (s.span.source, s.span.start)), ranked,
                         floor=self.w.threshold)

    def evidence(self, retrieved: Retrieved) -> Evidence:
        """Every sentence of the retrieved chunks with what both selectors weigh: meaning, shared words, rank."""
        question = self._focused(retrieved)
        overlap = Overlap(self._idf(question.terms), self._idf(terms(retrieved.query.context)), retrieved.expansions)
        chunk_score: dict[int, float] = {}
        top = max((score for _, score in retrieved.chunks), default=1.0)
        for chunk, score in retrieved.chunks:
            for span in chunk.sentences:
                row = self.sentences.row(span.source, span.start)
                if row is not None:
                    chunk_score[row] = max(chunk_score.get(row, 0.0), score / top)
        rows = np.fromiter(chunk_score, dtype=np.int64)
        dense = (self.vectors[rows].astype(np.float32) @ retrieved.vector).tolist() if len(rows) else []
        found = [Found(row, similarity, overlap.of(self.terms(row), self.terms_before(row)),
                       chunk_score[row], self.expected(row, question), *form(self.quote(self.sentences.span(row))),
                       replies=self.replies(row, overlap))
                 for row, similarity in zip(rows.tolist(), dense, strict=True)]
        return Evidence(retrieved, question, overlap, found, self._unmatched(overlap.question, retrieved.expansions))

    def missing(self, evidence: Evidence, row: int) -> float:
        """The weight of the rarest question word that neither the sentence, the sentences before, nor a like word
        there holds, over the rarest question word's weight. A near miss ("How much did the robot cost?" where the
        text names the robot, never a cost) leaves out one rare word."""
        weights = evidence.overlap.question
        if not weights:
            return 0.0
        expansions = evidence.retrieved.expansions
        held = self.terms(row) | self.terms_before(row)
        absent = [w for t, w in weights.items()
                  if t not in held and not any(near in held for near, _ in expansions.get(t, []))]
        return max(absent, default=0.0) / max(weights.values())

    def number_missing(self, evidence: Evidence, row: int) -> bool:
        """Whether the question gives a number (a year, a count) that neither the sentence nor the sentences before
        hold: "By how much will undernourishment rise by 2030?" over "By 2050, undernourishment would increase by
        49 percent", a near miss the words alone do not tell apart."""
        numbers = {t for t in evidence.question.terms if t[:1].isdigit()}
        return bool(numbers - (self.terms(row) | self.terms_before(row)))

    @staticmethod
    def asks_nothing(evidence: Evidence) -> bool:
        """A question with no word to look for ("???", "the of and", "Who is he?" with no conversation before it):
        the nearest sentences are no answer to it, however near."""
        return not terms(evidence.question.text) and not evidence.retrieved.query.context

    def absent(self, evidence: Evidence) -> list[str]:
        """The names the question asks about (capitalized runs, `qa.question.names`) that no indexed document holds
        a word of, nor a word at all like one: "Who finished the Quillon observatory?" over texts that never name a
        Quillon. Nothing the documents hold answers a question about something they never name. (The thing counted
        or named, "How much uranium…", was tried too: on the decision documents it turned away paraphrased
        answerable questions, "pitches" for "headline ideas", and caught no unanswerable one.)"""
        likeness = evidence.retrieved.likeness
        return [name for name in names(evidence.question.text)
                if (found := terms(name)) and not any(self.frequency.get(t) or likeness.get(t, 0.0) >= NAME_LIKENESS
                                                      for t in found)]

    def _unmatched(self, weights: dict[str, float], expansions: dict[str, list[tuple[str, float]]]) -> float:
        """How much of the question is about something no document names: "uranium" where nothing is like it."""
        total = sum(weights.values())
        absent = sum(w for t, w in weights.items() if not self.frequency.get(t) and not expansions.get(t))
        return absent / total if total else 0.0

    def _focused(self, retrieved: Retrieved) -> Question:
        """The question with its focus in the documents' words too: "troops" also looks for "soldiers".

        A focus the documents never use, nor anything like it ("uranium", "mayor"), stays: nothing answers it.
        """
        question = retrieved.query.question
        focus = set(question.focus)
        for term in question.focus:
            focus |= {near for near, _ in retrieved.expansions.get(term, [])}
        return replace(question, focus=frozenset(focus))

    def _idf(self, ts: list[str]) -> dict[str, float]:
        return {t: math.log(1 + self.total / (self.frequency.get(t) or 1)) for t in ts}

    def _candidates(self, evidence: Evidence) -> list[tuple[int, float]]:
        scored = []
        for found in evidence.found:
            expected = found.expected
            if expected is not None:
                scored.append((found.row, self.w.dense * found.dense + self.w.overlap * found.overlap
                               + self.w.expected * expected * found.overlap + self.w.chunk * found.chunk))
        return scored

    def expected(self, row: int, question: Question) -> float | None:
        """How well the sentence holds what the question asks for (1 best); None when it cannot answer.

        A count, a date or a place must be in the sentence itself, beside what it is about; a person may be in the
        sentence before (the speaker of a quote), which counts for less. It weighs as much as the sentence
        shares the question's words: a number in an unrelated sentence is no answer to "how many".
        """
        if question.expect is Expect.ANY:
            return 0.0
        if question.expect is not Expect.PERSON and question.focus and not question.focus & self.terms(row):
            return None
        here = holds(self.quote(self.sentences[row].span), question)
        if question.expect is not Expect.PERSON:
            return 1.0 if here else None
        if here:
            return here
        before = holds(self.previous(row), question)
        if question.focus and not before:
            return None  # "Who is the president of X?" wants a name beside "president", here or just before
        return 0.5 * before - 0.5

    def previous(self, row: int, count: int = 1) -> str:
        """The content sentences just before, in the same source: where a quote's speaker is often named."""
        return " ".join(self.quote(self.sentences.span(r)) for r in self.rows_before(row, count))

    def replies(self, row: int, overlap: Overlap) -> float:
        """How much of the question the sentence before shares when that one is itself a question: the sentence
        answering an interviewer's question that matches the user's shares few of its words."""
        before = self.rows_before(row, 1)
        if not before or not self.asks(before[0]):
            return 0.0
        return overlap.of(self.terms(before[0]))

    def asks(self, row: int) -> bool:
        """Whether the sentence is itself a question (`form`)."""
        return form(self.quote(self.sentences.span(row)))[0]

    def rows_before(self, row: int, count: int) -> list[int]:
        source = self.sentences.source[row]
        return [r for r in range(max(0, row - count), row) if self.sentences.source[r] == source]

    def terms_before(self, row: int) -> set[str]:
        """The terms of the CONTEXT_SENTENCES before, from the term cache (they are often retrieved themselves)."""
        return set().union(*(self.terms(r) for r in self.rows_before(row, CONTEXT_SENTENCES)))

    def _trim(self, row: int, question: Question, weights: Overlap) -> Span:
        """The shortest run of clauses that keeps the sentence's answer, when the sentence is long."""
        sentence: Sentence = self.sentences[row]
        text = self.quote(sentence.span)
        if len(text) <= self.w.max_chars:
            return sentence.span
        best: tuple[tuple[float, int, int], Span] | None = None
        for start, end in clause_windows(text, self.w.max_chars):
            piece = text[start:end]
            rank = (weights.of(set(terms(piece))) + 0.5 * holds(piece, question), len(piece), -start)
            if best is None or rank > best[0]:
                offset = sentence.span.start
                best = (rank, Span(sentence.span.source, offset + start, offset + end))
        return best[1] if best else sentence.span

    def speaker(self, row: int, answer_terms: set[str], question: Question) -> Span | None:
        """For a "who" answer that names no one ("The spokeswoman described…"): the shortest clause of the two
        sentences before that names someone and shares a word with it ("spokeswoman Anne-Claire Legendre")."""
        this = self.sentences[row].span
        for before in (row - 1, row - 2):
            if before < 0 or self.sentences[before].span.source != this.source:
                return None
            span = self.sentences[before].span
            text = self.quote(span)
            windows = [(len(text[a:b]), a, b) for a, b in clause_windows(text, SPEAKER_CHARS)
                       if set(terms(text[a:b])) & answer_terms and holds(text[a:b], question, near=False)]
            if windows:
                _, start, end = min(windows)
                return Span(span.source, span.start + start, span.start + end)
        return None

    def turn_speaker(self, row: int) -> Span | None:
        """In a transcript (a document whose paragraphs open with "Name: " at least MIN_TURN_LABELS times), the
        name of whoever speaks the sentence: the nearest label at or before it. None outside transcripts."""
        span = self.sentences.span(row)
        labels = self._labels.get(span.source)
        if labels is None:
            if len(self._labels) >= LABEL_CACHE:
                self._labels.clear()
            found = [Span(span.source, *m.span(1)) for m in _TURN_LABEL.finditer(self.texts.get(span.source, ""))]
            labels = self._labels[span.source] = found if len(found) >= MIN_TURN_LABELS else []
        before = [label for label in labels if label.start <= span.start]
        return before[-1] if before else None

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
    expansions: dict[str, list[tuple[str, float]]] = field(default_factory=dict)

    def of(self, sentence_terms: AbstractSet[str], before: AbstractSet[str] = frozenset()) -> float:
        """Words in the sentence count fully; words only in the sentence before (a speaker named there) half;
        a word the documents never use counts as much as its nearest document word is like it."""
        share = self._share(self.question, sentence_terms, before)
        if not self.context:
            return share
        return (share + CONTEXT_WEIGHT * self._share(self.context, sentence_terms, before)) / (1 + CONTEXT_WEIGHT)

    def _share(self, weights: dict[str, float], sentence_terms: AbstractSet[str], before: AbstractSet[str]) -> float:
        total = sum(weights.values())
        return sum(w * self._match(t, sentence_terms, before) for t, w in weights.items()) / total if total else 0.0

    def _match(self, term: str, sentence_terms: AbstractSet[str], before: AbstractSet[str]) -> float:
        if term in sentence_terms:
            return 1.0
        near = max((similarity for t, similarity in self.expansions.get(term, []) if t in sentence_terms),
                   default=0.0)
        return max(near, BEFORE_WEIGHT if term in before else 0.0)


def form(sentence: str) -> tuple[bool, bool]:
    """Whether a sentence asks a question, and whether it is a heading (no closing punctuation at all)."""
    end = sentence.rstrip().rstrip(_CLOSING_QUOTES)
    return end.endswith("?"), not end.endswith(_SENTENCE_ENDS)


def clause_windows(text: str, max_chars: int) -> list[tuple[int, int]]:
    """Every run of whole clauses of `text` up to `max_chars`, without the punctuation that joined them."""
    cuts = [0] + [m.end() for m in _CLAUSE_BREAK.finditer(text)] + [len(text)]
    windows = []
    for i in range(len(cuts) - 1):
        for j in range(i + 1, len(cuts)):
            start, end = _strip(text, cuts[i], cuts[j])
            if end - start > max_chars:
                break
            if end > start:
                windows.append((start, end))
    return windows


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    """A clause without the punctuation and spaces that joined it to its neighbours."""
    while start < end and text[start] in _JOINERS:
        start += 1
    while end > start and text[end - 1] in _JOINERS:
        end -= 1
    return start, end


def holds(text: str, question: Question, near: bool = True) -> float:
    """1.0 when `text` holds the kind of thing asked for next to what the question is about, else 0.0.

    "Next to" is a few words: a count beside the thing counted ("1,500 soldiers"), a date beside the event, a
    name in apposition to the role asked about ("minister, Catherine Colonna", "leader Gen. Abdourahmane
    Tchiani"). A name or number elsewhere in a long sentence usually answers another question. With
    `near=False` (a short generated answer) the kind of thing anywhere in the text is enough.
    """
    if question.expect is Expect.ANY:
        return 1.0
    tokens = normalize(text).split()
    if not tokens:
        return 0.0
    asked = set(words(question.text))
    anchors = _positions(tokens, question.focus or set(question.terms))
    if question.expect is Expect.NUMBER:
        found = [i for i, t in enumerate(tokens) if has_number([w for w in token_words(t) if w not in asked])]
    elif question.expect is Expect.TIME:
        found = [i for i, t in enumerate(tokens) if has_time([w for w in token_words(t) if w not in asked])]
    else:
        found = _name_positions(tokens, text, asked, skip_capitals=question.expect is Expect.PERSON)
    if not near:
        return float(bool(found))
    reach = VALUE_DISTANCE if question.expect in (Expect.NUMBER, Expect.TIME) else NAME_DISTANCE
    return float(any(abs(i - j) <= reach for i in found for j in anchors))


def _positions(tokens: list[str], wanted: AbstractSet[str]) -> list[int]:
    return [i for i, token in enumerate(tokens) if wanted & token_terms(token)] if wanted else []


def _name_positions(tokens: list[str], text: str, asked: set[str], skip_capitals: bool) -> list[int]:
    """Where names new to the question start; all-capital words (datelines, acronyms) are no person's name."""
    found = []
    for name in names(text):
        new = [w for w in name.split() if not (skip_capitals and w.isupper()) and not set(words(w)) <= asked]
        found += [i for i, token in enumerate(tokens) for w in new if token.strip("(\"'").startswith(w)]
    return found
