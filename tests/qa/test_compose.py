"""Composing the extractive answer: only cited quotes, numbered citations, abstention and the short answer, first
on hand-made selections over known texts, then on what both selectors choose from a small index."""

import re

import numpy as np
import pytest

from index.spans import Span
from index.store import IndexStore
from qa.answer import NOT_IN_DOCUMENTS, Answer
from qa.chain import CitedQA
from qa.compose import SHORT_JOINER, as_answer, compose
from qa.question import read
from qa.retrieve import Query, Retrieved
from qa.select import ScoredSpan, Selection
from qa.settings import AnsweringSettings
from qa.verify import verify
from tests.conftest import small_index

BRIDGE = ("The Tern Bridge opened in May 1932. It is 40 km long, and it carries a railway over the Ouse. "
          "Its designer was Ada Brunel, an engineer from Bristol.")
HARBOUR = ("The harbour at Tern, which was dredged in 1950 and again in 1971, and which the fishermen still call the "
           "Old Pool, lies below the cliffs on the north side of the bay, where the water stays deep even at low tide, "
           "and today the harbour shelters 120 fishing boats, most of them painted blue, as the old custom of the town "
           "requires, and a single ferry to the islands.")
MUSEUM = "The Hollow Museum of Clocks opened in October 1987. Its collection holds 412 clocks from four centuries."
TEXTS = {"bridge.txt": BRIDGE, "harbour.txt": HARBOUR, "museum.txt": MUSEUM}
MARKER = re.compile(r" \[(\d+)\]")


def span(source: str, phrase: str) -> Span:
    start = TEXTS[source].index(phrase)
    return Span(source, start, start + len(phrase))


def selected(*spans: Span, short: Span | None = None, score: float = 1.0) -> Selection:
    retrieved = Retrieved(Query(read("When did the Tern Bridge open?")), np.zeros(1, dtype=np.float32), [])
    return Selection(retrieved, [ScoredSpan(s, score) for s in spans], short=short)


def pieces(answer: Answer) -> list[str]:
    """The answer text between its markers, checking the markers run [1], [2], … in order."""
    parts = MARKER.split(answer.answer)
    assert parts[-1] == "" and parts[1::2] == [str(n) for n in range(1, len(parts) // 2 + 1)]
    return [p.strip() for p in parts[0:-1:2]]


def test_the_answer_is_the_cited_quotes_each_followed_by_its_marker():
    answer = compose(selected(span("bridge.txt", "The Tern Bridge opened in May 1932."),
                              span("museum.txt", "The Hollow Museum of Clocks opened in October 1987.")), TEXTS)
    assert answer.answer == ("The Tern Bridge opened in May 1932. [1] "
                             "The Hollow Museum of Clocks opened in October 1987. [2]")
    assert answer.grounded and answer.mode == "extractive"


def test_citations_are_numbered_from_one_in_selection_order_with_exact_offsets():
    """Each citation carries its span's source and offsets, the exact slice there, and its score to 3 places."""
    spans = [span("bridge.txt", "Its designer was Ada Brunel"), span("museum.txt", "412 clocks"),
             span("bridge.txt", "The Tern Bridge opened in May 1932.")]
    answer = compose(selected(*spans, score=0.123456), TEXTS)
    assert [c.id for c in answer.citations] == [1, 2, 3]
    assert [c.span for c in answer.citations] == spans
    assert all(c.quote == TEXTS[c.source][c.start:c.end] and c.score == 0.123 for c in answer.citations)
    assert pieces(answer) == [as_answer(c.quote) for c in answer.citations]


@pytest.mark.parametrize(("quote", "read_as"), [
    ("it carries a railway over the Ouse.", "It carries a railway over the Ouse."),
    ("today the harbour shelters 120 fishing boats", "Today the harbour shelters 120 fishing boats"),
    ("The Tern Bridge opened in May 1932.", "The Tern Bridge opened in May 1932."),
    ("412 clocks from four centuries.", "412 clocks from four centuries."),
    ("\u201cIt will last,\u201d she said.", "\u201cIt will last,\u201d she said."),
])
def test_only_a_lower_case_first_letter_changes_when_a_quote_is_read_as_the_answer(quote, read_as):
    assert as_answer(quote) == read_as


def test_a_clause_cut_from_mid_sentence_reads_capitalized_but_is_cited_verbatim():
    clause = span("bridge.txt", "it carries a railway over the Ouse.")
    answer = compose(selected(clause), TEXTS)
    assert answer.answer == "It carries a railway over the Ouse. [1]"
    assert answer.citations[0].quote == "it carries a railway over the Ouse."


def test_an_empty_selection_abstains_even_with_ranked_candidates():
    """Sentences ranked below the floor are not an answer: the abstention says so and cites nothing."""
    below = selected()
    below.ranked = [ScoredSpan(span("bridge.txt", "The Tern Bridge opened in May 1932."), 0.1)]
    answer = compose(below, TEXTS)
    assert answer == Answer.abstain()
    assert not answer.grounded and answer.answer == NOT_IN_DOCUMENTS and answer.citations == []


@pytest.mark.parametrize(("question", "likeness", "expansions", "said"), [
    ("What does Quinoa flour cost in Tern?", {"quinoa": 0.3, "flour": 0.4}, {},
     " No document mentions \u201cQuinoa\u201d or \u201cflour\u201d."),  # as typed, in the question's order
    ("What does flour cost?", {"flour": 0.4, "cost": 0.8}, {"cost": [("price", 0.8)]},
     " No document mentions \u201cflour\u201d."),  # "cost" stands for the documents' "price"
    ("When did the Tern Bridge open?", {}, {}, ""),  # every word is the documents': nothing to name
])
def test_an_abstention_names_the_words_no_document_uses(question, likeness, expansions, said):
    retrieved = Retrieved(Query(read(question)), np.zeros(1, dtype=np.float32), [], expansions, likeness)
    answer = compose(Selection(retrieved, []), TEXTS)
    assert not answer.grounded and answer.citations == [] and answer.answer == NOT_IN_DOCUMENTS + said


def test_the_short_answer_is_the_exact_words_inside_its_citation():
    """The short answer keeps its span's offsets and text, lies inside a citation, and passes `verify` as is."""
    answer = compose(selected(span("bridge.txt", "The Tern Bridge opened in May 1932."),
                              short=span("bridge.txt", "May 1932")), TEXTS)
    short = answer.short_answer
    assert (short.text, short.source) == ("May 1932", "bridge.txt") and BRIDGE[short.start:short.end] == "May 1932"
    assert short.inside(answer.citations) and verify(answer, TEXTS) is answer
    assert compose(selected(span("bridge.txt", "May 1932")), TEXTS).short_answer is None


def test_an_answer_with_a_short_answer_leads_with_it_then_gives_each_quote_once():
    answer = compose(selected(span("bridge.txt", "The Tern Bridge opened in May 1932."),
                              short=span("bridge.txt", "May 1932")), TEXTS)
    assert answer.answer == "May 1932 \u2014 The Tern Bridge opened in May 1932. [1]"


@pytest.fixture(scope="module")
def store(tmp_path_factory, embeddings) -> IndexStore:
    return small_index(tmp_path_factory, embeddings, TEXTS, "compose")


@pytest.fixture(scope="module", params=["rules", "learned"])
def qa(request, store) -> CitedQA:
    return CitedQA(store, AnsweringSettings(selector=request.param))


@pytest.mark.parametrize("question", ["When did the Tern Bridge open?", "How many fishing boats does the harbour "
                                      "shelter?", "Who designed the bridge?", "How many clocks does the museum hold?"])
def test_what_either_selector_chooses_composes_into_a_verbatim_answer(qa, question):
    """From a real selection: the answer is its short answer (the learned reader marks one) and its quotes and
    nothing else, each citation is an exact slice of its text, the short answer lies inside a citation, and `verify`
    changes nothing."""
    answer = compose(qa.drafting.invoke({"question": question, "history": []}).selection, qa.texts)
    lead = answer.short_answer.text + SHORT_JOINER if answer.short_answer else ""
    assert answer.grounded and pieces(answer) == [lead + as_answer(c.quote) if c.id == 1 else as_answer(c.quote)
                                                  for c in answer.citations]
    assert all(c.quote == TEXTS[c.source][c.start:c.end] for c in answer.citations)
    assert answer.short_answer is not None or qa.settings.selector == "rules"
    assert answer.short_answer is None or answer.short_answer.inside(answer.citations)
    assert verify(answer, TEXTS) is answer
