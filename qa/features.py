"""What the learned models read: the contract between answering (`qa.learned`) and training (`lab.train`).

Each model's features are named in the order of its weights in the reader's `reader.json`; `citeqa train` computes
them with these same functions, so a feature changed here is a model to refit (`Linear.from_card` refuses a card
written for other features).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index.errors import CiteqaError
from qa.question import Expect
from qa.reader import Candidate, Reading
from qa.retrieve import Retrieved
from qa.select import Evidence, Found, SpanSelector

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
# "missing number": the question gives a number the best sentence does not hold (`SpanSelector.number_missing`), from
# reading GUM's learning and calibration news misses ("…rise by 2030?" answered from "By 2050, …"); out of fold on the
# decision documents (2026-12-07) answerability AUC bio 0.916 -> 0.916, interview 0.777 -> 0.777, news 0.798 -> 0.830,
# voyage 0.840 -> 0.852, wikipedia 0.694 -> 0.704 (the sentence and the two before; `docs/reader.md`).
ANSWERABLE_FEATURES = ("best rank", "second rank", "best relevance", "best span", "best first stage",
                       "best overlap", "most overlap", "best dense", "unmatched", "best fits", "best ruled out",
                       "typed", "missing rarest", "missing number")


class StaleReader(CiteqaError, ValueError):
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
                       float(evidence.question.expect is not Expect.ANY), table.missing(evidence, shortlist[best].row),
                       float(table.number_missing(evidence, shortlist[best].row))],
                      dtype=np.float64)


def candidate(table: SpanSelector, row: int) -> Candidate:
    """What the reader reads for a sentence: its text and the sentence before it in the same source."""
    return Candidate(table.quote(table.sentences[row].span), table.previous(row))


def reader_question(retrieved: Retrieved) -> str:
    """The question, and for a follow-up the earlier turn it leans on ("What did he say?" → who "he" is)."""
    query = retrieved.query
    return f"{query.question.text} {query.context}".strip() if query.context else query.question.text
