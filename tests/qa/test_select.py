"""Span selection on a small hand-built index: the cues of `read` against sentences that only echo the question,
abstention, clause windows, and exact offsets."""

import pytest

from index.text import terms
from qa.chain import CitedQA
from qa.question import Expect, read
from qa.select import Overlap, ScoredSpan, Selection, SpanSelector, Weights, clause_windows, form
from qa.settings import AnsweringSettings
from tests.conftest import small_index

BRIDGE = ("The Tern Bridge crosses the river Ouse at Hollow. "
          "The workers who built the bridge are remembered with a plaque on the east tower. "
          "About 2,300 workers built the bridge over six years. "
          "The bridge was designed to carry both trains and carts.\n\n"
          "Its designer was Ada Brunel, an engineer from Bristol. "
          "The opening of the bridge drew large crowds. "
          "The bridge was opened in May 1932 by the mayor.")
LONG = ("The harbour at Tern, which was dredged in 1950 and again in 1971, and which the fishermen still call the Old "
        "Pool, lies below the cliffs on the north side of the bay, where the water stays deep even at low tide, and "
        "today the harbour shelters 120 fishing boats, most of them painted blue, as the old custom of the town "
        "requires, and a single ferry to the islands.")
HARBOUR = LONG + " Gulls nest on the harbour wall, which the town rebuilt in 1990 after a winter storm."
SPEECH = "At the opening, Mary Quill praised the bridge. \u201cThis bridge will last a thousand years,\u201d she said."
TEXTS = {"bridge.txt": BRIDGE, "harbour.txt": HARBOUR, "speech.txt": SPEECH}
ANSWERED = ["How many workers built the bridge?", "When was the bridge opened?", "Who designed the bridge?",
            "How many fishing boats does the harbour shelter?", "Who said the bridge would last a thousand years?"]


@pytest.fixture(scope="module")
def qa(tmp_path_factory, embeddings) -> CitedQA:
    return CitedQA(small_index(tmp_path_factory, embeddings, TEXTS, "select"), AnsweringSettings(selector="rules"))


def select(qa: CitedQA, question: str, weights: Weights | None = None) -> Selection:
    return SpanSelector(qa.snapshot, weights).run(qa.retrieval.invoke({"question": question, "history": []}))


def quotes(qa: CitedQA, spans: list[ScoredSpan]) -> list[str]:
    return [s.span.text_in(qa.texts[s.span.source]) for s in spans]


@pytest.mark.parametrize(("question", "expect", "answer", "echo"), [
    ("How many workers built the bridge?", Expect.NUMBER, "About 2,300 workers built the bridge over six years.",
     "The workers who built the bridge are remembered with a plaque on the east tower."),
    ("When was the bridge opened?", Expect.TIME, "The bridge was opened in May 1932 by the mayor.",
     "The opening of the bridge drew large crowds."),
    ("Who designed the bridge?", Expect.PERSON, "Its designer was Ada Brunel, an engineer from Bristol.",
     "The bridge was designed to carry both trains and carts."),
])
def test_the_sentence_holding_the_asked_for_kind_outranks_one_that_only_echoes_the_question(
        qa, question, expect, answer, echo):
    """A count, a date or a name beside the question's words answers; the same words without one do not, even
    when the echo shares as many of the question's words (its overlap is at least the answer's)."""
    assert read(question).expect is expect
    retrieved = qa.retrieval.invoke({"question": question, "history": []})
    selector = SpanSelector(qa.snapshot)
    overlap = {selector.quote(selector.sentences[f.row].span): f.overlap for f in selector.evidence(retrieved).found}
    assert overlap[echo] >= overlap[answer]  # the premise: by shared words alone the echo would do as well
    selection = selector.run(retrieved)
    assert quotes(qa, selection.spans) == [answer]
    assert quotes(qa, selection.ranked)[0] == answer


@pytest.mark.parametrize("question", [
    "What is the toll for cars?",  # a quantity of something the documents never mention
    "Who is the mayor of Hollow?",  # the role is mentioned ("by the mayor") but no one is named beside it
    "How many gulls are on the harbour wall?",  # the sentence's only number (1990) is far from the gulls
    "What do penguins eat?",  # nothing like it at all
])
def test_a_question_the_documents_do_not_answer_selects_nothing(qa, question):
    """Abstaining is an empty selection: nothing to cite, and no ranked sentence reaches the floor."""
    selection = select(qa, question)
    assert not selection.grounded and selection.spans == [] and selection.short is None
    assert all(s.score < selection.floor for s in selection.ranked)


def test_a_long_sentence_is_cut_to_clause_windows_that_keep_the_answer(qa):
    """A sentence over `max_chars` is cited as a run of its whole clauses, and that run holds the count."""
    selection = select(qa, "How many fishing boats does the harbour shelter?")
    (chosen,) = selection.spans
    sentence_start = HARBOUR.index(LONG)
    start, end = chosen.span.start - sentence_start, chosen.span.end - sentence_start
    assert (start, end) in clause_windows(LONG, Weights().max_chars)
    assert "120 fishing boats" in LONG[start:end] and end - start <= Weights().max_chars < len(LONG)


def test_clause_windows_are_every_run_of_whole_clauses_up_to_the_limit():
    """Runs of consecutive clauses, without the joining punctuation; a run over the limit is left out, and a
    single clause over it gives no window at all (the selector then cites the sentence whole)."""
    text = "One, two; three"
    assert [text[a:b] for a, b in clause_windows(text, 100)] == [
        "One", "One, two", "One, two; three", "two", "two; three", "three"]
    assert [text[a:b] for a, b in clause_windows(text, 8)] == ["One", "One, two", "two", "three"]
    assert clause_windows("No breaks here at all", 5) == []


def test_a_closing_quote_a_dash_a_bracket_and_said_also_end_a_clause():
    text = "\u201cIt will last,\u201d said Ada \u2014 the engineer (retired) agreed."
    pieces = {text[a:b] for a, b in clause_windows(text, len(text))}
    assert {"\u201cIt will last,\u201d", "said Ada", "the engineer", "(retired) agreed.", text} <= pieces


def test_a_smaller_max_chars_keeps_the_clause_with_the_name_beside_the_asked_word(qa):
    """With room for one clause only, the one naming someone next to "designer" is cited, not "an engineer from
    Bristol", which names a place and shares none of the question's words."""
    selection = select(qa, "Who designed the bridge?", Weights(max_chars=40))
    assert quotes(qa, selection.spans) == ["Its designer was Ada Brunel"]


def test_the_threshold_weight_decides_between_answering_and_abstaining(qa):
    """The same ranking abstains once the threshold is above its best score; `answers` follows the floor."""
    answered = select(qa, "Who designed the bridge?")
    best = answered.ranked[0]
    assert answered.grounded and answered.answers(best.span)
    raised = select(qa, "Who designed the bridge?", Weights(threshold=best.score + 0.01))
    assert not raised.grounded and raised.ranked == answered.ranked
    assert raised.floor == best.score + 0.01 and not raised.answers(best.span)


def test_a_quote_is_cited_with_its_speaker_named_in_the_sentence_before(qa):
    """'Who said…' answered by a quote that names no one also cites the clause before that names the speaker;
    the spans come in text order."""
    selection = select(qa, "Who said the bridge would last a thousand years?")
    assert quotes(qa, selection.spans) == ["Mary Quill praised the bridge.",
                                           "\u201cThis bridge will last a thousand years,\u201d she said."]


@pytest.mark.parametrize("question", ANSWERED)
def test_every_span_is_an_exact_slice_inside_one_sentence_of_one_source(qa, question):
    """Cited and ranked spans are non-empty, trimmed slices of an indexed text, each within a single sentence."""
    selection = select(qa, question)
    assert selection.grounded and qa.texts == TEXTS  # offsets into the stored copies are offsets into the files
    sentences = [s.span for s in qa.snapshot.sentences]
    for scored in selection.spans + selection.ranked:
        span = scored.span
        quote = TEXTS[span.source][span.start:span.end]
        assert quote and quote == quote.strip()
        assert any(s.source == span.source and s.start <= span.start and span.end <= s.end for s in sentences)


INTERVIEW = ("Wikinews: What got you interested in ants?\n\n"
             "Nick Bos: A studymate and I kept many animals. The ants were the most fun.\n\n"
             "They never stopped working, even at night.\n\n"
             "Wikinews: Where did you study?\n\n"
             "Nick Bos: In Copenhagen.")


@pytest.fixture(scope="module")
def transcript(tmp_path_factory, embeddings) -> SpanSelector:
    store = small_index(tmp_path_factory, embeddings, {"interview.txt": INTERVIEW, "bridge.txt": BRIDGE}, "turns")
    return SpanSelector(CitedQA(store, AnsweringSettings(selector="rules")).snapshot)


@pytest.mark.parametrize(("sentence", "speaker"), [
    ("They never stopped working, even at night.", "Nick Bos"),  # a later paragraph of Bos's turn
    ("The ants were the most fun.", "Nick Bos"),
    ("Where did you study?", "Wikinews"),
])
def test_in_a_transcript_each_sentence_is_said_by_the_nearest_turn_label_before_it(transcript, sentence, speaker):
    at = INTERVIEW.index(sentence)
    row = next(r for r in range(len(transcript.sentences)) if transcript.sentences.span(r).source == "interview.txt"
               and transcript.sentences.span(r).start <= at < transcript.sentences.span(r).end)
    label = transcript.turn_speaker(row)
    assert label is not None and INTERVIEW[label.start:label.end] == speaker


def test_outside_a_transcript_no_one_speaks_a_turn(transcript):
    row = transcript.sentences.row("bridge.txt", BRIDGE.index("Its designer"))
    assert transcript.turn_speaker(row) is None


@pytest.mark.parametrize(("sentence", "asks", "heading"), [
    ("Where did you study?", True, False),
    ("\u201cWill it last?\u201d", True, False),
    ("How The Onion writes an issue", False, True),
    ("Nick Bos: In Copenhagen.", False, False),
    ("\u201cIt will last,\u201d she said.", False, False),
])
def test_a_sentence_that_asks_or_heads_a_section_is_told_apart(sentence, asks, heading):
    assert form(sentence) == (asks, heading)


def test_a_reply_carries_how_much_of_the_question_the_question_before_it_shares(transcript):
    asked = Overlap({term: 1.0 for term in terms("Where did Nick Bos study?")}, {})

    def replies(sentence: str) -> float:
        return transcript.replies(transcript.sentences.row("interview.txt", INTERVIEW.index(sentence)), asked)

    question_before = asked.of(frozenset(terms("Wikinews: Where did you study?")))
    assert replies("Nick Bos: In Copenhagen.") == question_before > 0  # "study" of "Where did Nick Bos study?"
    assert replies("They never stopped working, even at night.") == 0.0  # after a statement
    assert replies("Wikinews: What got you interested in ants?") == 0.0  # the document's first sentence


@pytest.mark.parametrize(("question", "missing"), [
    ("Was the bridge opened in May 1935?", True),  # a year the sentence does not give: a near miss
    ("Was the bridge opened in May 1932?", False),
    ("How many of the 2,300 workers were paid?", True),  # "2,300" is in a sentence, not in this one
    ("When was the bridge opened?", False),  # no number asked about
])
def test_a_number_the_question_gives_and_the_sentence_does_not_is_missing(qa, question, missing):
    table = SpanSelector(qa.snapshot)
    evidence = table.evidence(qa.retrieval.invoke({"question": question, "history": []}))
    row = table.sentences.row("bridge.txt", BRIDGE.index("The bridge was opened in May 1932"))
    assert table.number_missing(evidence, row) is missing
