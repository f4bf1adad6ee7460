"""Grounded generation: a language model answers from numbered sentences and cites them by number.

Citations are the sentences the model cites, so quotes are verbatim by construction. An answer whose names,
numbers or key words are not in its cited sentences is not shown as grounded: the extractive answer is given
instead, and so it is when the model fails, is slow, or cites nothing.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Iterator

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

from index.text import terms
from qa.answer import Answer, Citation, ShortAnswer, Turn
from qa.select import Selection, holds
from qa.verify import supported

log = logging.getLogger(f"citeqa.{__name__}")

NOT_FOUND = "NOT IN DOCUMENTS"
SYSTEM = ("Answer the question using only the numbered sentences. Reply in one short sentence that ends with "
          "the number of the sentence you used in square brackets. If the sentences do not answer the question, "
          f"reply exactly: {NOT_FOUND}\n\nExample:\n[1] The bridge opened in May.\n[2] It is 40 km long.\n"
          "Question: How long is the bridge?\nAnswer: The bridge is 40 km long [2].")
_MARKER = re.compile(r"\[(\d+)\]")
MAX_HISTORY_CHARS = 300
_DONE = object()  # the worker's last word on the queue: the model's stream ended


class GroundedGenerator:
    """`model` None: the configured model could not be loaded (`unavailable` says why); every grounded answer is
    then the extractive one, marked extractive-fallback, and the log says why each time."""

    def __init__(self, model: BaseChatModel | None, mode: str, timeout: float, sentences: int = 4,
                 unavailable: str = ""):
        self.mode, self.timeout, self.sentences = mode, timeout, sentences
        self.unavailable = unavailable
        # One llama.cpp context serves one generation at a time; a server backend takes requests in parallel.
        self.turn = threading.Lock() if mode == "local" else None
        self.prompt = ChatPromptTemplate.from_messages([("system", SYSTEM), MessagesPlaceholder("history"),
                                                        ("human", "{numbered}\n\nQuestion: {question}")])
        self.model = model

    def stream(self, selection: Selection, history: list[Turn], fallback: Answer,
               texts: dict[str, str]) -> Iterator[str | Answer]:
        """Model text as it comes, then the checked `Answer` (or `fallback`, marked as such); `texts` are the
        documents the selection was made from (the request's own snapshot)."""
        if not selection.grounded:
            yield fallback
            return
        if self.model is None:
            log.warning("%s answerer is unavailable (%s); answering extractively", self.mode, self.unavailable)
            yield self._fallback(fallback)
            return
        # Only sentences the selector scores as answering: the check refuses citations of any other, and a small
        # model shown a stray sentence quotes it (measured: "3" for the soldiers question, from "three sources").
        shown = [s.span for s in selection.answering][: self.sentences]
        numbered = "\n".join(f"[{n}] {span.text_in(texts[span.source])}" for n, span in enumerate(shown, 1))
        request = {"numbered": numbered, "question": selection.retrieved.query.question.text,
                   "history": recent(history)}
        text, deadline = "", time.monotonic() + self.timeout
        pieces: queue.Queue = queue.Queue()
        stop = threading.Event()
        threading.Thread(target=self._generate, args=(request, pieces, stop, deadline), daemon=True,
                         name="citeqa-generate").start()
        try:
            while (piece := pieces.get(timeout=max(0.0, deadline - time.monotonic()))) is not _DONE:
                if isinstance(piece, Exception):
                    raise piece
                text += piece
                yield piece
        except queue.Empty:
            log.warning("%s answerer gave no answer within %.0f s; answering extractively", self.mode,
                        self.timeout)
            yield self._fallback(fallback)
            return
        except Exception as error:  # a server down, a model crash: the user still gets an answer
            log.warning("%s answerer failed (%s); answering extractively", self.mode, error)
            yield self._fallback(fallback)
            return
        finally:  # done, timed out, or closed by a client that went away: the model stops at its next token
            stop.set()
        yield self.check(text, shown, selection, texts) or self._fallback(fallback)

    def _generate(self, request: dict, pieces: queue.Queue, stop: threading.Event, deadline: float) -> None:
        """The model's stream on a worker thread, so that a model silent before its first token still times out;
        it holds the llama.cpp context only while generating and gives it up at the first token after `stop`."""
        if self.turn and not self.turn.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return  # the model stayed busy past the deadline; the reader has already given up
        try:
            if stop.is_set():
                return
            # The model's own stream, not a `prompt | model` sequence: closing a sequence's stream drains the model.
            stream = self.model.stream(self.prompt.invoke(request))
            try:
                for chunk in stream:
                    if stop.is_set():
                        return
                    pieces.put(str(chunk.text))
            finally:
                stream.close()
            pieces.put(_DONE)
        except Exception as error:
            pieces.put(error)
        finally:
            if self.turn:
                self.turn.release()

    def check(self, text: str, shown: list, selection: Selection, texts: dict[str, str]) -> Answer | None:
        """The model's answer with its cited sentences, or None when it is not supported by them."""
        answer = text.strip()
        if NOT_FOUND.lower() in answer.lower():
            log.info("%s answerer found no answer where extraction did; answering extractively", self.mode)
            return None
        cited = sorted({int(n) for n in _MARKER.findall(answer) if 1 <= int(n) <= len(shown)})
        answer = re.sub(r"\s+([.,;])", r"\1", _MARKER.sub(lambda m: m.group(0) if int(m.group(1)) in cited else "",
                                                           answer)).strip()
        if not cited:
            cited = attributed(answer, shown, texts)
            answer = f"{answer} " + "".join(f"[{n}]" for n in cited)
        citations = [Citation(n, span.source, span.start, span.end, span.text_in(texts[span.source]),
                              ranked_score(selection, span)) for n, span in ((n, shown[n - 1]) for n in cited)]
        question = selection.retrieved.query.question
        if not all(selection.answers(shown[n - 1]) for n in cited):
            log.info("%s answer cites a sentence the selector does not score as answering; answering "
                     "extractively: %r", self.mode, answer[:200])
            return None
        if not citations or not supported(answer, [c.quote for c in citations], question.text):
            log.info("%s answer not supported by its citations; answering extractively: %r", self.mode,
                     answer[:200])
            return None
        if not holds(_MARKER.sub(" ", answer), question, near=False):
            log.info("%s answer lacks the %s asked for; answering extractively: %r", self.mode,
                     question.expect.value, answer[:200])
            return None
        short = ShortAnswer.of(selection.short, texts) if selection.short else None
        return Answer(answer, grounded=True, citations=citations, mode=self.mode,
                      short_answer=short if short and short.inside(citations) else None)

    def _fallback(self, fallback: Answer) -> Answer:
        fallback.mode = f"{fallback.mode}-fallback" if fallback.grounded else fallback.mode
        return fallback


def attributed(answer: str, shown: list, texts: dict[str, str]) -> list[int]:
    """Small models often forget the markers: cite the shown sentence that holds most of the answer's words."""
    wanted = set(terms(answer))
    overlap = [(len(wanted & set(terms(span.text_in(texts[span.source])))), -n) for n, span in enumerate(shown, 1)]
    best, negative = max(overlap, default=(0, 0))
    return [-negative] if best else []


def ranked_score(selection: Selection, span) -> float:
    return round(next((s.score for s in selection.ranked if s.span == span), 0.0), 3)


def recent(history: list[Turn]) -> list[tuple[str, str]]:
    """The last exchange, bounded: enough for "he" and "it" to mean something, small enough to stay fast."""
    last = history[-2:]
    return [("human" if t.role == "user" else "ai", t.content[:MAX_HISTORY_CHARS]) for t in last]
