"""The answering chain, wired in one place: parse → retrieve → select spans → compose → verify (LCEL)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda

from index.embed import load_embeddings, model_name
from index.pipeline import Indexer
from index.settings import Settings
from index.store import IndexStore
from qa.compose import compose
from qa.history import follow_up_context, turns
from qa.model import Answer
from qa.question import read
from qa.retrieve import HybridRetriever, Query
from qa.select import SpanSelector, Weights
from qa.verify import verify

log = logging.getLogger(__name__)


class QuestionError(ValueError):
    """A question the chain cannot take (empty, too long)."""


class CitedQA:
    """Answers questions from one loaded index; build it once, ask many times (thread-safe reads)."""

    def __init__(self, store: IndexStore, settings: Settings, weights: Weights | None = None):
        self.settings = settings
        self.store = store
        self.snapshot = store.snapshot()
        self.texts = self.snapshot.texts
        retriever = HybridRetriever(store, self.snapshot, store.embeddings, settings.top_k)
        selector = SpanSelector(self.snapshot, weights)
        self.retrieval: Runnable = RunnableLambda(self._query, name="parse") | RunnableLambda(
            retriever.run, name="retrieve")
        self.answering: Runnable = (RunnableLambda(selector.run, name="select_spans")
                                    | RunnableLambda(lambda s: compose(s, self.texts), name="compose")
                                    | RunnableLambda(lambda a: verify(a, self.texts), name="verify"))
        self.chain: Runnable = self.retrieval | self.answering

    def _query(self, request: dict[str, Any]) -> Query:
        question = str(request.get("question") or "").strip()
        if not question:
            raise QuestionError("question is empty")
        if len(question) > self.settings.max_question_chars:
            raise QuestionError(f"question is longer than {self.settings.max_question_chars} characters")
        history = turns(request.get("history"))
        return Query(read(question), follow_up_context(question, history))

    def invoke(self, question: str, history: list | None = None) -> Answer:
        started = time.perf_counter()
        retrieved = self.retrieval.invoke({"question": question, "history": history or []})
        retrieved_at = time.perf_counter()
        answer: Answer = self.answering.invoke(retrieved)
        done = time.perf_counter()
        answer.timing_ms = {"retrieve": round((retrieved_at - started) * 1000, 2),
                            "answer": round((done - retrieved_at) * 1000, 2),
                            "total": round((done - started) * 1000, 2)}
        return answer

    def stream(self, question: str, history: list | None = None) -> Iterator[str | Answer]:
        """Answer text in word-sized deltas, then the finished `Answer`."""
        answer = self.invoke(question, history)
        yield from text_deltas(answer.answer)
        yield answer

    def sources(self) -> list[dict[str, Any]]:
        counts: dict[str, int] = {}
        for chunk in self.snapshot.chunks:
            counts[chunk.span.source] = counts.get(chunk.span.source, 0) + 1
        return [{"source": s, "chars": len(self.texts[s]), "chunks": counts[s]} for s in sorted(counts)]


def text_deltas(text: str) -> list[str]:
    """Word-sized pieces that join back to `text` exactly: how an extractive answer streams."""
    return re.findall(r"\S+\s*|^\s+", text)


def open_store(settings: Settings) -> IndexStore:
    path = settings.embedding_model
    return IndexStore(settings, load_embeddings(path), model_name(path))


def build(settings: Settings) -> CitedQA:
    """The chain over the stored index; refuses an index made with other settings."""
    store = open_store(settings)
    Indexer(store).check()
    return CitedQA(store, settings)
