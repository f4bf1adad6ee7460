"""The answering chain, wired in one place: parse → retrieve → select spans → compose → verify (LCEL)."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda

from index.embed import load_embeddings, model_name
from index.pipeline import Indexer
from index.settings import Settings
from index.store import IndexStore, Snapshot
from qa.compose import compose
from qa.generate import GroundedGenerator
from qa.history import follow_up_context, turns
from qa.learned import LearnedSelector
from qa.llm import ModelUnavailable, chat_model
from qa.model import Answer
from qa.question import read
from qa.reader import READER_DIR, load_reader
from qa.retrieve import HybridRetriever, Query
from qa.select import SpanSelector, Weights
from qa.verify import verify

log = logging.getLogger(__name__)


class QuestionError(ValueError):
    """A question the chain cannot take (empty, too long)."""


@dataclass(frozen=True)
class Derived:
    """The parts of the chain built from one snapshot of the index; a request uses one of these throughout."""

    snapshot: Snapshot
    retrieval: Runnable
    selection: Runnable
    extraction: Runnable


class CitedQA:
    """Answers questions from one loaded index; build it once, ask many times (thread-safe reads).

    The extractive answer is always computed (tens of milliseconds); with a generator, the language model answers
    from the same ranked sentences and the extractive answer is what it falls back to.
    """

    def __init__(self, store: IndexStore, settings: Settings, weights: Weights | None = None,
                 generator: GroundedGenerator | None = None):
        self.settings = settings
        self.store = store
        self.weights = weights
        self.generator = generator
        self._refreshing = threading.Lock()
        self._state = self._derive(store.snapshot())

    def _derive(self, snapshot: Snapshot) -> Derived:
        """Everything built from one snapshot of the index; `refresh` swaps it whole."""
        texts = snapshot.texts
        retriever = HybridRetriever(self.store, snapshot, self.store.embeddings, self.settings.top_k)
        retrieval: Runnable = RunnableLambda(self._query, name="parse") | RunnableLambda(retriever.run,
                                                                                         name="retrieve")
        table = SpanSelector(snapshot, self.weights)
        selector = (LearnedSelector(table, load_reader(self.settings.reader_dir or READER_DIR))
                    if self.settings.selector == "learned" else table)
        selection: Runnable = RunnableLambda(selector.run, name="select_spans")
        extraction: Runnable = (RunnableLambda(lambda s: compose(s, texts), name="compose")
                                | RunnableLambda(lambda a: verify(a, texts), name="verify"))
        return Derived(snapshot, retrieval, selection, extraction)

    def refresh(self) -> None:
        """Re-reads the index after a write. A question already being answered finishes on the state it started
        with; the next one sees the new documents. Refreshes run one at a time, so the last write always wins."""
        with self._refreshing:
            state = self._derive(self.store.snapshot())
            self._state = state
            if self.generator:
                self.generator.texts = state.texts

    @property
    def snapshot(self) -> Snapshot:
        return self._state.snapshot

    @property
    def texts(self) -> dict[str, str]:
        return self._state.snapshot.texts

    @property
    def retrieval(self) -> Runnable:
        return self._state.retrieval

    @property
    def selection(self) -> Runnable:
        return self._state.selection

    @property
    def chain(self) -> Runnable:
        state = self._state
        return state.retrieval | state.selection | state.extraction

    @property
    def mode(self) -> str:
        return self.generator.mode if self.generator else "extractive"

    def _query(self, request: dict[str, Any]) -> Query:
        question = str(request.get("question") or "").strip()
        if not question:
            raise QuestionError("question is empty")
        if len(question) > self.settings.max_question_chars:
            raise QuestionError(f"question is longer than {self.settings.max_question_chars} characters")
        return Query(read(question), follow_up_context(question, turns(request.get("history"))))

    def invoke(self, question: str, history: list | None = None) -> Answer:
        *_, answer = self.stream(question, history)
        return answer

    def stream(self, question: str, history: list | None = None) -> Iterator[str | Answer]:
        """Answer text as it is made (word by word when extractive), then the finished, verified `Answer`."""
        started = time.perf_counter()
        state = self._state
        retrieved = state.retrieval.invoke({"question": question, "history": history or []})
        retrieved_at = time.perf_counter()
        selection = state.selection.invoke(retrieved)
        extractive: Answer = state.extraction.invoke(selection)
        parts = (self.generator.stream(selection, turns(history), extractive) if self.generator
                 else [*text_deltas(extractive.answer), extractive])
        first_at = None
        for part in parts:
            if isinstance(part, Answer):
                answer = verify(part, state.snapshot.texts)
                break
            first_at = first_at or time.perf_counter()
            yield part
        done = time.perf_counter()
        answer.timing_ms = {"retrieve": ms(retrieved_at - started), "answer": ms(done - retrieved_at),
                            "total": ms(done - started)}
        if self.generator:
            answer.timing_ms["first_token"] = ms((first_at or done) - started)
        yield answer

    def sources(self) -> list[dict[str, Any]]:
        snapshot = self._state.snapshot
        counts: dict[str, int] = {}
        for chunk in snapshot.chunks:
            counts[chunk.span.source] = counts.get(chunk.span.source, 0) + 1
        return [{"source": s, "chars": len(snapshot.texts[s]), "chunks": counts[s]} for s in sorted(counts)]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def text_deltas(text: str) -> list[str]:
    """Word-sized pieces that join back to `text` exactly: how an extractive answer streams."""
    return re.findall(r"\S+\s*|^\s+", text)


def open_store(settings: Settings) -> IndexStore:
    path = settings.embedding_model
    return IndexStore(settings, load_embeddings(path), model_name(path))


def build(settings: Settings, store: IndexStore | None = None) -> CitedQA:
    """The chain over the stored index (by default the one the settings name); refuses an index made with other
    settings. A generative backend that cannot be loaded is logged and left out: answers stay extractive.
    """
    store = store or open_store(settings)
    Indexer(store).check()
    qa = CitedQA(store, settings)
    if settings.answerer != "extractive":
        try:
            qa.generator = GroundedGenerator(chat_model(settings), qa.texts, settings.answerer, settings.llm_timeout)
        except ModelUnavailable as error:
            log.error("the %s answerer is unavailable, answering extractively: %s", settings.answerer, error)
    return qa
