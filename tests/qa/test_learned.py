"""The learned selector on a small hand-built index, with a stand-in reader whose verdicts the test sets."""

import pytest

from index.spans import Span
from qa.chain import CitedQA
from qa.features import ANSWERABLE_FEATURES, FIRST_STAGE_FEATURES, RANKER_FEATURES, StaleReader
from qa.learned import MAX_QUOTE_CHARS, LearnedSelector, quote_around, said_before
from qa.reader import Candidate, Reading
from qa.settings import AnsweringSettings
from tests.conftest import small_index

TEXT = ("The bridge opened in May 1932 after six years of work. It is 40 km long and carries a railway.\n\n"
        "Its designer was Ada Brunel, an engineer from Bristol. She later built the harbour at Tern.")
CARD = {"read": 4, "first_stage": {"weights": [1.0, 1.0, 0.5] + [0.0] * (len(FIRST_STAGE_FEATURES) - 3), "bias": 0.0},
        "ranker": {"weights": [0.0, 1.0] + [0.0] * (len(RANKER_FEATURES) - 2), "bias": 0.0},  # the relevance alone
        "answerable": {"weights": [1.0] + [0.0] * (len(ANSWERABLE_FEATURES) - 1),  # the best rank alone
                       "bias": 0.0, "threshold": 0.5},
        "about": {"weights": [0.0] * len(ANSWERABLE_FEATURES), "bias": 0.0, "threshold": 0.0}}  # never off topic


class StandIn:
    """Finds `answer` in a candidate and calls that one relevant (logit +4), every other one not (-4); each of
    `also` found instead is relevant too, a little less (+3)."""

    def __init__(self, answer: str, card: dict = CARD, also: tuple[str, ...] = ()):
        self.answers, self.questions, self.card = [answer, *also] if answer else [], [], card

    def read(self, question: str, candidates: list[Candidate]) -> list[Reading]:
        self.questions.append(question)
        readings = []
        for c in candidates:
            rank, answer = next(((i, a) for i, a in enumerate(self.answers) if a in c.sentence), (None, ""))
            at = c.sentence.find(answer) if answer else 0
            readings.append(Reading(-4.0 if rank is None else 4.0 - min(rank, 1), 1.0, at, at + len(answer)))
        return readings


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


def test_a_question_about_nothing_the_documents_hold_abstains_however_relevant_the_best_sentence(small_qa):
    """An "about" check reading how much of the question no document names ("unmatched"): the reader still calls the
    designer's sentence relevant, yet "quinoa flour" is nowhere in the documents."""
    unmatched = ANSWERABLE_FEATURES.index("unmatched")
    about = {"weights": [-10.0 if i == unmatched else 0.0 for i in range(len(ANSWERABLE_FEATURES))], "bias": 5.0,
             "threshold": 0.5}
    reader = StandIn("Ada Brunel", {**CARD, "about": about})
    assert select(small_qa, reader, "Who designed the bridge?").grounded
    selection = select(small_qa, reader, "Who sells quinoa flour by the bridge?")
    assert not selection.grounded and selection.ranked  # read and ranked, then turned away
    history = [{"role": "user", "content": "Who designed the bridge?"},
               {"role": "assistant", "content": "Ada Brunel [1]"}]
    assert select(small_qa, reader, "And did she sell quinoa flour?", history).grounded  # the conversation's topic


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


def test_a_follow_up_is_not_answered_with_the_sentence_its_previous_answer_gave(small_qa):
    """Both sentences about the designer answer, the one already quoted best; the other one is given."""
    reader = StandIn("She later", also=("Ada Brunel",))
    question = "What did Ada Brunel, the designer, build?"
    first = select(small_qa, reader, question)
    said = TEXT[first.spans[0].span.start:first.spans[0].span.end]
    assert said == "She later built the harbour at Tern."
    history = [{"role": "user", "content": question}, {"role": "assistant", "content": f"{said} [1]"}]
    again = select(small_qa, reader, "What else did she build?", history)
    assert TEXT[again.spans[0].span.start:again.spans[0].span.end] == \
        "Its designer was Ada Brunel, an engineer from Bristol."
    alone = select(small_qa, StandIn("She later"), "What else did she build?", history)
    assert TEXT[alone.spans[0].span.start:alone.spans[0].span.end] == said  # nothing else answers: said again


@pytest.mark.parametrize(("sentence", "previous", "said"), [
    ("She later built the harbour at Tern.", "She later built the harbour at Tern. [1]", True),
    ("She later built the harbour at Tern.", "Tern \u2014 She later built the harbour at Tern. [1]", True),
    ("It is 40 km long and carries a railway.", "40 km \u2014 It is 40 km long [1]", False),  # a piece under 20 chars
    ("It is 40 km long, and it carries a railway over the Ouse.", "It carries a railway over the Ouse. [1]", True),
    ("Its designer was Ada Brunel.", "", False),
])
def test_a_sentence_counts_as_said_when_a_quoted_piece_of_the_previous_answer_is_in_it(sentence, previous, said):
    assert said_before(sentence, previous) is said


def test_a_card_written_for_other_features_is_refused_with_what_to_do(small_qa):
    stale = {**CARD, "first_stage": {"weights": [1.0, 1.0, 0.5], "bias": 0.0}}
    with pytest.raises(StaleReader, match="citeqa train"):
        LearnedSelector(small_qa_table(small_qa), StandIn("x", stale))


def test_a_why_question_quotes_the_run_of_consecutive_sentences_that_answer(small_qa):
    reader = StandIn("Its designer", also=("She later",))
    run = "Its designer was Ada Brunel, an engineer from Bristol. She later built the harbour at Tern."
    why = select(small_qa, reader, "Why is Ada Brunel remembered in Tern?")
    assert [TEXT[s.span.start:s.span.end] for s in why.spans] == [run]
    factoid = select(small_qa, reader, "What was the designer's name?")
    assert [TEXT[s.span.start:s.span.end] for s in factoid.spans] == [run.split(" She")[0]]  # never lengthened


def test_a_passage_never_runs_over_a_paragraph_break(small_qa):
    reader = StandIn("It is 40 km", also=("Its designer",))
    why = select(small_qa, reader, "Why was the bridge built so long?")
    assert [TEXT[s.span.start:s.span.end] for s in why.spans] == ["It is 40 km long and carries a railway."]


REPLY = "Ada Brunel: It will stand for a century, if the town paints it."
RHETORICAL = "Ada Brunel: Do you think the bridge at Tern will last? Why not? It is iron."


@pytest.mark.parametrize(("interview", "quoted"), [
    (f"Wikinews: Do you think the bridge at Tern will last?\n\n{REPLY}", REPLY),
    (f"Wikinews: Do you think the bridge at Tern will last? Or will it fall?\n\n{REPLY}", REPLY),  # asked twice
    (f"{RHETORICAL}\n\n{REPLY}", "Ada Brunel: Do you think the bridge at Tern will last?"),  # her own question
])
def test_an_interviewers_question_is_answered_by_the_reply_after_it(tmp_path_factory, embeddings, interview, quoted):
    store = small_index(tmp_path_factory, embeddings, {"interview.txt": interview}, "interview")
    qa = CitedQA(store, AnsweringSettings(selector="rules"))
    selector = LearnedSelector(small_qa_table(qa), StandIn("Do you think"))
    selection = selector.run(qa.retrieval.invoke({"question": "Does Brunel think the bridge at Tern will last?",
                                                  "history": []}))
    quote = selection.spans[-1].span
    assert interview[quote.start:quote.end] == quoted
