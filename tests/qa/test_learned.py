"""The learned selector on a small hand-built index, with a stand-in reader whose verdicts the test sets."""

import pytest

from index.spans import Span
from qa.chain import CitedQA
from qa.learned import ANSWERABLE_FEATURES, MAX_QUOTE_CHARS, LearnedSelector, quote_around
from qa.reader import Candidate, Reading
from qa.settings import AnsweringSettings
from tests.conftest import small_index

TEXT = ("The bridge opened in May 1932 after six years of work. It is 40 km long and carries a railway.\n\n"
        "Its designer was Ada Brunel, an engineer from Bristol. She later built the harbour at Tern.")
CARD = {"read": 4, "first_stage": {"weights": [1.0, 1.0, 0.5], "bias": 0.0},
        "ranker": {"weights": [0.0, 1.0, 0.0], "bias": 0.0},  # rank by the stand-in's relevance alone
        "answerable": {"weights": [1.0] + [0.0] * (len(ANSWERABLE_FEATURES) - 1),  # the best rank alone
                       "bias": 0.0, "threshold": 0.5}}


class StandIn:
    """Finds `answer` in a candidate and calls that one relevant (logit +4), every other one not (-4)."""

    card = CARD

    def __init__(self, answer: str):
        self.answer, self.questions = answer, []

    def read(self, question: str, candidates: list[Candidate]) -> list[Reading]:
        self.questions.append(question)
        found = [c.sentence.find(self.answer) if self.answer else -1 for c in candidates]
        return [Reading(4.0 if at >= 0 else -4.0, 1.0, max(at, 0), max(at, 0) + len(self.answer)) for at in found]


@pytest.fixture(scope="module")
def small_qa(tmp_path_factory, embeddings) -> CitedQA:
    store = small_index(tmp_path_factory, embeddings, {"bridge.txt": TEXT}, "bridge")
    return CitedQA(store, AnsweringSettings(selector="rules"))


def select(small_qa: CitedQA, reader: StandIn, question: str, history: list | None = None):
    selector = LearnedSelector(small_qa_table(small_qa), reader)
    return selector.run(small_qa.retrieval.invoke({"question": question, "history": history or []}))


def small_qa_table(small_qa: CitedQA):
    from qa.select import SpanSelector

    return SpanSelector(small_qa.snapshot)


def test_the_relevant_sentence_is_cited_and_its_span_is_the_short_answer(small_qa):
    selection = select(small_qa, StandIn("Ada Brunel"), "Who designed the bridge?")
    assert selection.grounded and len(selection.spans) == 1
    quote = selection.spans[0].span
    assert TEXT[quote.start:quote.end] == "Its designer was Ada Brunel, an engineer from Bristol."
    assert TEXT[selection.short.start:selection.short.end] == "Ada Brunel"
    assert selection.ranked[0].span == quote


def test_no_relevant_sentence_means_abstaining(small_qa):
    selection = select(small_qa, StandIn(""), "What is the toll for cars?")
    assert not selection.grounded and selection.short is None and selection.ranked


def test_a_follow_up_is_read_with_the_turn_it_leans_on(small_qa):
    reader = StandIn("Tern")
    history = [{"role": "user", "content": "Who designed the bridge?"},
               {"role": "assistant", "content": "Ada Brunel [1]"}]
    select(small_qa, reader, "What else did she build?", history)
    assert reader.questions[-1].startswith("What else did she build? Who designed the bridge?")


def test_a_long_sentence_is_cut_to_the_clauses_around_the_short_answer():
    text = ", ".join(f"clause number {i} says little" for i in range(20)) + ", and the answer is 42, as stated."
    sentence = Span("a.txt", 0, len(text))
    at = text.index("42")
    quote = quote_around(text, sentence, Span("a.txt", at, at + 2))
    assert quote.start <= at and at + 2 <= quote.end and quote.end - quote.start <= MAX_QUOTE_CHARS
    assert quote_around("Short.", Span("a.txt", 0, 6), Span("a.txt", 0, 5)) == Span("a.txt", 0, 6)
