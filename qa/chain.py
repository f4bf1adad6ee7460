"""The answering chain, wired in one place: parse → retrieve → select spans → compose → verify (LCEL); every
answer goes through it, and a language model, when there is one, answers from what it selected."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from langchain_core.runnables import Runnable, RunnableGenerator, RunnableLambda

from index.errors import CiteqaError
from index.snapshot import Snapshot, merged, return_freed_memory, stacked
from index.store import IndexStore
from qa.answer import Answer
from qa.compose import compose
from qa.generate import GroundedGenerator
from qa.history import follow_up_context, previous_answer, turns
from qa.keywords import KeywordIndex
from qa.learned import LearnedSelector
from qa.question import read
from qa.reader import READER_DIR, load_reader
from qa.retrieve import HybridRetriever, Query, chunk_terms, keyword_index, sentence_terms
from qa.select import Selection, SpanSelector, Weights, sentence_frequency
from qa.settings import MAX_QUESTION_CHARS, AnsweringSettings
from qa.verify import verify

log = logging.getLogger(f"citeqa.{__name__}")
# Past this share of changed sources a refresh reads the whole index again: merging keeps every unchanged row, so
# with most rows new it costs what a whole read does.
FULL_REREAD_SHARE = 0.5


class QuestionError(CiteqaError, ValueError):
    """A question the chain cannot take (empty, too long)."""

    http_status = 422


@dataclass(frozen=True)
class Derived:
    """The parts of the chain built from one snapshot of the index; a request uses one of these throughout."""

    generation: str | None  # the store's generation token read just before the snapshot was taken
    versions: dict[str, str]  # each source's sha256 in the manifest read just before the snapshot
    snapshot: Snapshot
    words: list[list[str]]  # each sentence's terms, kept so that a refresh tokenizes only changed documents
    frequency: Counter[str]  # how many sentences hold each term (the selector's IDF), updated by a refresh
    keywords: KeywordIndex  # the chunks' keyword index, edited by a refresh
    retrieval: Runnable  # request → Retrieved: parse | retrieve
    drafting: Runnable  # request → Draft: parse | retrieve | select | compose (what the lab and tests look into)
    chain: Runnable  # request → its parts, streamed: drafting | generate | verify (`CitedQA.stream`)


def changed_sources(previous: Derived | None, versions: dict[str, str]) -> set[str] | None:
    """The sources to read again, given the manifest's versions now: changed, added and removed ones; None when
    reading everything is as cheap (no previous state, or more than FULL_REREAD_SHARE of the sources changed)."""
    if previous is None:
        return None
    changed = {source for source, version in versions.items() if previous.versions.get(source) != version}
    changed |= (set(previous.versions) | set(previous.snapshot.texts)) - set(versions)
    return None if len(changed) > FULL_REREAD_SHARE * max(1, len(versions)) else changed


def updated_frequency(previous: Derived, origin: np.ndarray, fresh: list[list[str]]) -> Counter[str]:
    """The previous sentence frequencies less the sentences a merge dropped, plus the fresh ones (`origin` as
    `merged` gives it)."""
    frequency = previous.frequency.copy()
    dropped = np.setdiff1d(np.arange(len(previous.words)), origin[origin >= 0], assume_unique=True)
    frequency.subtract(t for row in dropped.tolist() for t in set(previous.words[row]))
    frequency.update(t for words in fresh for t in set(words))
    return frequency


class CitedQA:
    """Answers questions from one loaded index; build it once, ask many times (thread-safe reads).

    The extractive answer is always computed (tens of milliseconds); with a generator, the language model answers
    from the same ranked sentences and the extractive answer is what it falls back to.
    """

    def __init__(self, store: IndexStore, settings: AnsweringSettings, weights: Weights | None = None,
                 generator: GroundedGenerator | None = None):
        self.settings = settings
        self.store = store
        self.weights = weights
        self.generator = generator
        self._refreshing = threading.Lock()
        self._state = self._derive()

    def _derive(self, previous: Derived | None = None) -> Derived:
        """Everything built from one snapshot of the index; `refresh` swaps it whole. With a `previous` state, only
        the documents whose version changed are read again and merged into its snapshot."""
        # Both before the snapshot: a write (or a document written) during it is seen again next time.
        generation = self.store.records.generation()
        manifest = self.store.records.manifest()
        recorded = manifest.sources if manifest else {}
        versions = {source: str(entry.get("sha256")) for source, entry in recorded.items()}
        changed = changed_sources(previous, versions)
        if previous is None or changed is None:
            snapshot = self.store.snapshot()
            words = sentence_terms(snapshot)
            frequency, keywords = sentence_frequency(words), keyword_index(snapshot, words)
        else:
            partial = self.store.snapshot(changed, known_words=previous.snapshot.vocabulary)
            snapshot, origin, chunk_origin = merged(previous.snapshot, partial, changed)
            fresh = sentence_terms(partial)
            carried = previous.words + fresh
            words = [carried[i] for i in stacked(origin, len(previous.words)).tolist()]
            frequency = updated_frequency(previous, origin, fresh)
            keywords = previous.keywords.merged(chunk_origin, chunk_terms(partial, fresh))
            log.info("re-read %d changed documents (%d sentences) of %d", len(changed), len(fresh), len(snapshot.texts))
        texts = snapshot.texts
        retriever = HybridRetriever(self.store, snapshot, self.store.embeddings, self.settings.top_k, keywords)
        table = SpanSelector(snapshot, self.weights, frequency)
        selector = (LearnedSelector(table, load_reader(self.settings.reader_dir or READER_DIR,
                                                              self.store.settings.cores))
                    if self.settings.selector == "learned" else table)

        def reply(drafts: Iterator[Draft]) -> Iterator[str | Answer]:
            """The answer's text as it is made, then its verified `Answer`: the language model's when one is set
            (it falls back to the draft), else the draft's own words. Generating and verifying are one step: LCEL
            drains a first generator step when a second one after it is closed (a client that went away)."""
            for draft in drafts:
                parts = (self.generator.stream(draft.selection, list(draft.selection.retrieved.query.history),
                                               draft.answer, texts) if self.generator
                         else [*text_deltas(draft.answer.answer), draft.answer])
                for part in parts:
                    if isinstance(part, Answer):
                        part = verify(part, texts)
                        part.timing_ms = {"retrieve": ms(draft.selection.retrieved.seconds)}
                    yield part

        retrieval = RunnableLambda(parsed, name="parse") | RunnableLambda(retriever.run, name="retrieve")
        drafting = (retrieval | RunnableLambda(selector.run, name="select_spans")
                    | RunnableLambda(lambda selection: Draft(selection, compose(selection, texts)), name="compose"))
        chain = drafting | RunnableGenerator(reply, name="generate_and_verify")
        return_freed_memory()
        return Derived(generation, versions, snapshot, words, frequency, keywords, retrieval, drafting, chain)

    def refresh(self) -> None:
        """Re-reads the index after a write. A question already being answered finishes on the state it started
        with; the next one sees the new documents. Refreshes run one at a time, so the last write always wins."""
        with self._refreshing, self.store.reachable():
            self.store.reopen()  # the collections may be new ones: another process rebuilt the index
            self._state = self._derive(self._state)
            if self.generator:
                self.generator.texts = self._state.snapshot.texts
            return_freed_memory()  # the replaced snapshot's (what requests still on it hold goes later)

    def refresh_if_changed(self) -> bool:
        """Picks up what another process wrote (`citeqa index`, another worker); True when it re-read the index."""
        with self.store.reachable():
            if self.store.records.generation() == self._state.generation:
                return False
        self.refresh()
        return True

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
    def drafting(self) -> Runnable:
        return self._state.drafting

    @property
    def chain(self) -> Runnable:
        return self._state.chain

    @property
    def mode(self) -> str:
        """What answers come as: extractive, the generative answerer, or extractive-fallback while it is down."""
        if self.generator is None:
            return "extractive"
        return "extractive-fallback" if self.generator.model is None else self.generator.mode

    def invoke(self, question: str, history: list | None = None) -> Answer:
        *_, answer = self.stream(question, history)
        return answer

    def stream(self, question: str, history: list | None = None) -> Iterator[str | Answer]:
        """Answer text as it is made (word by word when extractive), then the finished, verified `Answer`: the one
        chain, streamed, with the time its parts took."""
        started = time.perf_counter()
        first_at, answer = None, None
        for part in self._state.chain.stream({"question": question, "history": history or []}):
            if isinstance(part, Answer):
                answer = part
                break
            first_at = first_at or time.perf_counter()
            yield part
        if answer is None:
            raise RuntimeError("the chain ended without an answer")
        done = time.perf_counter()
        retrieve = (answer.timing_ms or {}).get("retrieve", 0.0) / 1000
        answer.timing_ms = {"retrieve": ms(retrieve), "answer": ms(done - started - retrieve),
                            "total": ms(done - started)}
        if self.generator:
            answer.timing_ms["first_token"] = ms((first_at or done) - started)
        yield answer

    def sources(self) -> list[dict[str, Any]]:
        snapshot = self._state.snapshot
        counts = snapshot.chunks.count_by_source()
        return [{"source": s, "chars": len(snapshot.texts[s]), "chunks": counts[s]} for s in sorted(counts)]


@dataclass(frozen=True)
class Draft:
    """What was selected for a question, and the extractive answer composed from it (verified at the chain's end)."""

    selection: Selection
    answer: Answer


def parsed(request: dict[str, Any]) -> Query:
    """The chain's edge: the question and its history checked once, here (`QuestionError`, `HistoryError`)."""
    question = str(request.get("question") or "").strip()
    if not question:
        raise QuestionError("question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(f"question is longer than {MAX_QUESTION_CHARS} characters")
    history = turns(request.get("history"))
    return Query(read(question), follow_up_context(question, history), previous_answer(question, history),
                 tuple(history))


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def text_deltas(text: str) -> list[str]:
    """Word-sized pieces that join back to `text` exactly: how an extractive answer streams."""
    return re.findall(r"\S+\s*|^\s+", text)
