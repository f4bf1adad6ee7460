"""Grounded generation: the support check on its own, then the real 0.5B model in process and over HTTP."""

from __future__ import annotations

import logging
import sys

import pytest

from qa.chain import CitedQA
from qa.generate import GroundedGenerator
from qa.llm import ModelUnavailable, chat_model, model_file
from qa.settings import AnsweringSettings, LLMSettings, Settings
from qa.verify import supported
from service.build import build
from tests.conftest import SlowChat, free_port, running

SOLDIERS = "France has 1,500 soldiers in Niger, though coup leaders say they have severed security agreements."


def test_supported_answers_only_restate_their_quotes():
    assert supported("France has 1,500 soldiers in Niger [1].", [SOLDIERS], "How many French soldiers?")
    assert not supported("France has 2,000 soldiers in Niger [1].", [SOLDIERS], "How many French soldiers?")
    assert not supported("Emmanuel Macron has 1,500 soldiers [1].", [SOLDIERS], "How many French soldiers?")
    assert not supported("The population is about twenty million people living mostly in rural areas [1].",
                         [SOLDIERS], "What is the population of Niger?")


def generator(seed_qa: CitedQA, model) -> GroundedGenerator:
    return GroundedGenerator(model, "local", timeout=60)


def test_check_keeps_cited_sentences_verbatim_and_drops_unknown_numbers(seed_qa):
    selection = seed_qa.drafting.invoke({"question": "How many French soldiers are in Niger?"}).selection
    shown = [s.span for s in selection.ranked[:6]]
    first = next(n for n, span in enumerate(shown, 1) if "1,500" in span.text_in(seed_qa.texts[span.source]))
    checker = GroundedGenerator.__new__(GroundedGenerator)
    checker.texts, checker.mode = seed_qa.texts, "local"
    answer = checker.check(f"France has 1,500 soldiers in Niger [{first}] [99].", shown, selection, seed_qa.texts)
    assert answer is not None and answer.mode == "local" and "[99]" not in answer.answer
    assert [c.id for c in answer.citations] == [first]
    assert all(seed_qa.texts[c.source][c.start:c.end] == c.quote for c in answer.citations)
    assert checker.check(f"France has 4,000 soldiers [{first}].", shown, selection, seed_qa.texts) is None
    assert checker.check("NOT IN DOCUMENTS", shown, selection, seed_qa.texts) is None
    # the model forgot the marker:
    attributed = checker.check("France has 1,500 soldiers.", shown, selection, seed_qa.texts)
    assert attributed is not None and [c.id for c in attributed.citations] == [first]
    assert attributed.answer == f"France has 1,500 soldiers. [{first}]"
    assert checker.check("Paris hosts the Olympic games.", shown, selection, seed_qa.texts) is None


def test_a_server_that_is_down_gives_the_extractive_answer(seed_qa):
    settings = Settings(answering=AnsweringSettings(answerer="openai"),
                        llm=LLMSettings(llm_url=f"http://127.0.0.1:{free_port()}/v1", llm_timeout=5))
    qa = CitedQA(seed_qa.store, settings.answering, generator=generator(seed_qa, chat_model(settings)))
    answer = qa.invoke("How many French soldiers are in Niger?")
    assert answer.mode == "extractive-fallback" and "1,500" in answer.answer and answer.citations
    assert qa.invoke("What is the population of Niger?").grounded is False


def test_missing_backends_are_explained(tmp_path):
    with pytest.raises(ModelUnavailable, match="CITEQA_LLM_URL"):
        chat_model(Settings(answering=AnsweringSettings(answerer="openai"), llm=LLMSettings(llm_url=None)))
    with pytest.raises(ModelUnavailable, match="no model file"):
        model_file(LLMSettings(local_model=str(tmp_path / "missing.gguf")), tmp_path)


def test_an_unavailable_model_leaves_answers_extractive(seed_qa, tmp_path, caplog):
    settings = Settings(index=seed_qa.store.settings, answering=AnsweringSettings(answerer="local"),
                        llm=LLMSettings(local_model=str(tmp_path / "x.gguf")))
    qa = build(settings)
    assert "unavailable" in caplog.text and qa.mode == "extractive-fallback"
    caplog.clear()
    answer = qa.invoke("How many French soldiers are in Niger?")
    assert answer.mode == "extractive-fallback" and "1,500" in answer.answer
    assert f"local answerer is unavailable (no model file {tmp_path / 'x.gguf'}" in caplog.text
    assert qa.invoke("What is the population of Niger?").mode == "extractive"  # nothing to fall back from


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> str:
    pytest.importorskip("llama_cpp", reason="the llm extra is not installed (make setup-llm)")
    return str(model_file(LLMSettings(local_model="qwen2.5-coder-0.5b"), tmp_path_factory.mktemp("models")))


@pytest.fixture(scope="module")
def local_qa(seed_qa, small_model) -> CitedQA:
    settings = Settings(answering=AnsweringSettings(answerer="local"), llm=LLMSettings(local_model=small_model))
    return CitedQA(seed_qa.store, settings.answering, generator=generator(seed_qa, chat_model(settings)))


@pytest.mark.parametrize(("question", "must_say"), [
    ("How many French soldiers are in Niger?", "1,500"),
    ("Who is France's foreign affairs minister?", "Colonna"),
])
def test_local_model_answers_with_verbatim_citations(local_qa, question, must_say):
    parts = list(local_qa.stream(question))
    *deltas, answer = parts
    assert answer.grounded and must_say in answer.answer and deltas
    assert answer.mode == "local"  # the model's own answer, not the extractive one it falls back to
    assert all(local_qa.texts[c.source][c.start:c.end] == c.quote for c in answer.citations)
    assert {"first_token", "total"} <= set(answer.timing_ms)


def test_local_model_is_not_asked_when_the_documents_do_not_say(local_qa):
    answer = local_qa.invoke("What is the population of Niger?")
    assert (answer.grounded, answer.citations, answer.mode) == (False, [], "extractive")


@pytest.fixture(scope="module")
def llama_server(small_model):
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", small_model, "--host", "127.0.0.1", "--port",
               str(port), "--n_ctx", "2048", "--n_threads", "2"]
    with running(command, f"http://127.0.0.1:{port}/v1/models", 120):
        yield f"http://127.0.0.1:{port}/v1"


def test_openai_compatible_server(seed_qa, llama_server, caplog):
    """The model is reached and answers in time; a small model may still fail the support check on a question
    (an answer then falls back, logged at INFO), but not on both."""
    settings = Settings(answering=AnsweringSettings(answerer="openai"),
                        llm=LLMSettings(llm_url=llama_server, llm_timeout=60))
    model = GroundedGenerator(chat_model(settings), "openai", timeout=60)
    qa = CitedQA(seed_qa.store, settings.answering, generator=model)
    answers = [qa.invoke(q) for q in ("How many French soldiers are in Niger?",
                                      "Who is France's foreign affairs minister?")]
    assert [a.grounded for a in answers] == [True, True] and "1,500" in answers[0].answer
    assert "openai" in [a.mode for a in answers], [a.answer for a in answers]
    assert not [r for r in caplog.records if r.name == "citeqa.qa.generate" and r.levelno >= logging.WARNING]


def test_concurrent_questions_share_the_local_model_safely(local_qa):
    from concurrent.futures import ThreadPoolExecutor

    questions = ["How many French soldiers are in Niger?", "When did Wagner come into Mali?"] * 2
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(local_qa.invoke, questions))
    assert all(a.grounded and a.citations for a in answers)
    assert all(local_qa.texts[c.source][c.start:c.end] == c.quote for a in answers for c in a.citations)


def slow_qa(seed_qa: CitedQA, model: SlowChat, timeout: float) -> CitedQA:
    return CitedQA(seed_qa.store, seed_qa.settings, generator=GroundedGenerator(model, "local",
                                                                                 timeout=timeout))


def test_a_model_silent_before_its_first_token_times_out_and_frees_the_model(seed_qa, caplog):
    model = SlowChat(first=60)
    qa = slow_qa(seed_qa, model, timeout=0.5)
    answer = qa.invoke("How many French soldiers are in Niger?")
    assert answer.mode == "extractive-fallback" and "1,500" in answer.answer
    assert answer.timing_ms["total"] < 10_000  # the deadline held although no token ever came
    assert "gave no answer within 0 s; answering extractively" in caplog.text
    model.wake.set()  # the stalled call returns: the worker sees it was given up and lets go of the model
    assert model.closed.wait(5) and qa.generator.turn.acquire(timeout=5)
    assert len(model.said) <= 1


def test_closing_the_answer_stops_generation_and_releases_the_model(seed_qa):
    model = SlowChat(gap=0.05)  # 600 words: 30 s if nobody stopped it
    qa = slow_qa(seed_qa, model, timeout=60)
    parts = qa.stream("How many French soldiers are in Niger?")
    assert next(parts) == "France "
    parts.close()  # what a client that disconnects from /api/ask/stream causes
    assert model.closed.wait(5), "the model kept generating for a reader that was gone"
    assert qa.generator.turn.acquire(timeout=5)
    assert len(model.said) < 10
