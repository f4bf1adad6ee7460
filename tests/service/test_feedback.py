"""Judgements kept in SQLite and turned into gold questions, on small hand-built replies."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service import feedback
from service.feedback import NOT_ANSWERED, NOT_ANSWERED_NOTES, FeedbackLog, Judgement, Recorded, gold_case, mark

TEXT = "The board met on Tuesday. It approved 42 new cranes for the harbour."
TEXTS = {"port.txt": TEXT}
CRANES = TEXT.index("42 new cranes")
QUOTE = {"id": 1, "source": "port.txt", "start": TEXT.index("It approved"), "end": len(TEXT),
         "quote": TEXT[TEXT.index("It approved"):], "score": 0.9}
GROUNDED = {"answer": f"42 — {QUOTE['quote']} [1]", "grounded": True, "citations": [QUOTE], "mode": "extractive",
            "timing_ms": {}, "short_answer": {"text": "42", "source": "port.txt", "start": CRANES,
                                              "end": CRANES + 2}}
ABSTAINED = {"answer": "The indexed documents do not say.", "grounded": False, "citations": [], "mode": "extractive",
             "timing_ms": {}, "short_answer": None}


def recorded(judgement: Judgement) -> Recorded:
    return Recorded("0123456789abcdef", "2026-12-07T00:00:00+00:00", judgement)


@pytest.mark.parametrize(("pattern", "example"), NOT_ANSWERED_NOTES)
def test_each_not_answered_wording_matches_its_example(pattern, example):
    assert re.search(pattern, example, re.IGNORECASE) and NOT_ANSWERED.search(example)


@pytest.mark.parametrize("note", ["wrong number", "it was 41", "", "the documents say 41"])
def test_a_note_that_only_disagrees_is_not_read_as_not_answered(note):
    assert not NOT_ANSWERED.search(note)


def test_a_marked_passage_is_the_gold_answer_whatever_the_verdict():
    start = TEXT.index("Tuesday")
    case = gold_case(recorded(Judgement("When did the board meet?", GROUNDED, "down",
                                        correct=mark("port.txt", start, start + 7, TEXTS))))
    assert (case["doc"], case["answers"], case["evidence_spans"]) == ("port.txt", ["Tuesday"], [[start, start + 7]])


def test_an_up_on_a_grounded_reply_keeps_its_short_answer_and_its_quotes():
    case = gold_case(recorded(Judgement("How many cranes?", GROUNDED, "up")))
    assert (case["answers"], case["evidence_spans"]) == (["42"], [[QUOTE["start"], QUOTE["end"]]])
    assert case["id"] == "feedback-0123456789ab" and case["kind"] == "feedback"


def test_an_up_on_an_abstention_and_a_down_saying_not_answered_expect_abstention():
    for judgement in (Judgement("Who chairs it?", ABSTAINED, "up"),
                      Judgement("Who chairs it?", GROUNDED, "down", note="It is not in the documents.")):
        case = gold_case(recorded(judgement))
        assert (case["answers"], case["evidence_spans"], case["unanswerable"]) == ([], [], True)


def test_a_down_that_says_nothing_of_what_is_right_is_not_exported():
    assert gold_case(recorded(Judgement("How many cranes?", GROUNDED, "down", note="wrong number"))) is None


def test_the_log_keeps_every_judgement_across_reopening(tmp_path):
    path = tmp_path / "data" / "feedback.sqlite3"
    assert FeedbackLog(path).recorded() == [] and not path.exists()  # nothing judged: no file made
    history = [{"role": "user", "content": "Who met?"}, {"role": "assistant", "content": "The board."}]
    first = FeedbackLog(path).add(Judgement("How many cranes?", GROUNDED, "up", history))
    second = FeedbackLog(path).add(Judgement("Who chairs it?", GROUNDED, "down", note="wrong",
                                             correct=mark("port.txt", 0, 9, TEXTS)))
    entries = FeedbackLog(path).recorded()
    assert [e.id for e in entries] == [first, second] and first != second
    assert entries[0].judgement == Judgement("How many cranes?", GROUNDED, "up", history)
    assert entries[1].judgement.correct == mark("port.txt", 0, 9, TEXTS)
    assert feedback.stats_line(entries) == "judged 2: up 1 down 1 (down 50%); passages marked 1; gold questions 2"


@given(st.integers(-5, len(TEXT) + 5), st.integers(-5, len(TEXT) + 5), st.sampled_from(["port.txt", "gone.txt"]))
def test_mark_takes_exactly_the_non_empty_spans_of_indexed_documents(start, end, source):
    marked = mark(source, start, end, TEXTS)
    real = source in TEXTS and 0 <= start < end <= len(TEXT) and TEXT[start:end].strip()
    assert (marked is not None) == bool(real)
    if marked:
        assert TEXTS[marked.source][marked.start:marked.end] == marked.text
