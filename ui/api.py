"""The REST API under /api, exactly as in the contract: ask, ask/stream, health, sources."""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator
from starlette.types import Receive, Scope, Send

from index.store import StoreUnavailable
from qa.chain import CitedQA, QuestionError
from qa.history import HistoryError
from qa.model import Answer
from ui.limits import SHED_RETRY_AFTER_S, InFlight

MAX_QUESTION_CHARS = 2000
# A stopped Chroma server is back in ~0.6 s after `chroma run` and answers resume on the next request (measured
# in tests/ui/test_faults.py); a client waiting 5 s does not hammer a store that is restarting.
STORE_RETRY_AFTER_S = 5
REFUSALS = {413: {"description": "Request body over the limit, refused before parsing"},
            503: {"description": "The store is unreachable or too many answers are in flight; see Retry-After"}}


class TextPart(BaseModel):
    type: Literal["text"] = "text"
    text: StrictStr


class HistoryTurn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["user", "assistant"]
    content: StrictStr | list[TextPart]


class AskRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"question": "How many French soldiers are in Niger?", "history": []}]})
    question: StrictStr = Field(max_length=MAX_QUESTION_CHARS, description="The question, 1 to 2,000 characters.")
    history: list[HistoryTurn] = Field(default_factory=list, max_length=100, description="Earlier turns, oldest first.")

    @field_validator("question")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("question is empty or only white space")
        return value


class SourceOut(BaseModel):
    source: str
    chars: int
    chunks: int


class SourceText(BaseModel):
    source: str
    text: str


class AnswerStream(StreamingResponse):
    """Server-sent events of one answer. However the response ends (finished, client gone) the answer is closed,
    which stops a generation at its next token and frees the model and the answer's place in flight."""

    def __init__(self, parts: Generator[str | Answer, None, None]):
        super().__init__(events(parts), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self.parts = parts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.parts.close()


def router(qa: CitedQA) -> APIRouter:
    api = APIRouter()
    in_flight = InFlight(qa.settings.max_in_flight)

    def enter() -> None:
        """A place among the answers in flight, or a fast 503 (checked on the event loop, before any thread)."""
        if not in_flight.enter():
            raise HTTPException(503, f"busy: {in_flight.limit} answers are already in flight; retry shortly",
                                headers={"Retry-After": str(SHED_RETRY_AFTER_S)})

    def started(request: AskRequest) -> Generator[str | Answer, None, None]:
        """The answer's parts, begun: bad input fails here as a 422 and an unreachable store as a 503, before any
        response has started. The answer's place in flight is given back when the parts end or are closed."""
        parts = held(qa.stream(request.question, [turn.model_dump() for turn in request.history]), in_flight.leave)
        try:
            next(parts)
        except (QuestionError, HistoryError) as error:
            raise HTTPException(422, str(error)) from None
        except StoreUnavailable as error:
            raise HTTPException(503, f"document store unavailable: {error}",
                                headers={"Retry-After": str(STORE_RETRY_AFTER_S)}) from None
        return parts

    def answered(request: AskRequest) -> dict:
        *_, answer = started(request)
        return answer.to_dict()

    @api.post("/ask", response_model=Answer, responses=REFUSALS, summary="Answer a question with verbatim citations")
    async def ask(request: AskRequest) -> dict:
        enter()
        return await run_in_threadpool(answered, request)

    @api.post("/ask/stream", response_class=StreamingResponse, responses=REFUSALS,
              summary="Server-sent events: `delta` events with answer text as it is made, then one `answer` event "
                      "with the checked /api/ask reply (authoritative: a generated answer that fails the support "
                      "check is replaced by the extractive one)")
    async def ask_stream(request: AskRequest) -> StreamingResponse:
        enter()
        return AnswerStream(await run_in_threadpool(started, request))

    @api.get("/health", summary="Readiness and index size; 503 while a dependency is down", response_model=None,
             responses={503: {"description": '`{"status": "degraded", "reason": str}`'}})
    def health() -> dict | JSONResponse:
        problem = qa.store.problem()
        if problem:
            return JSONResponse({"status": "degraded", "reason": problem}, status_code=503,
                                headers={"Retry-After": str(STORE_RETRY_AFTER_S)})
        sources = qa.sources()
        return {"status": "ok", "documents": len(sources), "chunks": sum(s["chunks"] for s in sources),
                "mode": qa.mode}

    @api.get("/health/live", summary="Liveness: the process answers (200 even while a dependency is down)")
    def live() -> dict:
        return {"status": "alive"}

    @api.get("/sources", response_model=list[SourceOut], summary="The indexed documents")
    def sources() -> list[dict]:
        return qa.sources()

    @api.get("/sources/{source:path}", response_model=SourceText, summary="A document's text (what offsets count)")
    def source_text(source: Annotated[str, Path(description="as listed by /api/sources")]) -> dict:
        if source not in qa.texts:
            raise HTTPException(404, f"no indexed document named {source!r}")
        return {"source": source, "text": qa.texts[source]}

    return api


def held(parts: Generator[str | Answer, None, None], leave: Callable[[], None]) -> Generator[str | Answer | None]:
    """`parts` behind one priming `next` (which yields None once the first part is made), then `parts` itself;
    `leave` runs exactly once however they end: finished, failed, or closed by a client that went away."""
    try:
        first = next(parts)
        yield None
        yield first
        yield from parts
    finally:
        parts.close()
        leave()


def events(parts: Iterator[str | Answer]) -> Iterator[str]:
    """SSE frames: a `delta` per piece of text, then one `answer` with the full contract JSON."""
    for part in parts:
        if isinstance(part, Answer):
            yield f"event: answer\ndata: {json.dumps(part.to_dict(), ensure_ascii=False)}\n\n"
        else:
            yield f"event: delta\ndata: {json.dumps({'text': part}, ensure_ascii=False)}\n\n"
