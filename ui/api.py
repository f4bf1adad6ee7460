"""The REST API under /api, exactly as in the contract: ask, ask/stream, health, sources."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from qa.chain import CitedQA, QuestionError
from qa.history import HistoryError
from qa.model import Answer

MAX_QUESTION_CHARS = 2000


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


def router(qa: CitedQA) -> APIRouter:
    api = APIRouter()

    def started(request: AskRequest) -> Iterator[str | Answer]:
        """The answer's parts, begun: bad input fails here as a 422, before any response has started."""
        parts = qa.stream(request.question, [turn.model_dump() for turn in request.history])
        try:
            first = next(parts)
        except (QuestionError, HistoryError) as error:
            raise HTTPException(422, str(error)) from None
        return itertools.chain([first], parts)

    @api.post("/ask", response_model=Answer, summary="Answer a question with verbatim citations")
    def ask(request: AskRequest) -> dict:
        *_, answer = started(request)
        return answer.to_dict()

    @api.post("/ask/stream", response_class=StreamingResponse,
              summary="Server-sent events: `delta` events with answer text as it is made, then one `answer` event "
                      "with the checked /api/ask reply (authoritative: a generated answer that fails the support "
                      "check is replaced by the extractive one)")
    def ask_stream(request: AskRequest) -> StreamingResponse:
        return StreamingResponse(events(started(request)), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @api.get("/health", summary="Readiness and index size")
    def health() -> dict:
        sources = qa.sources()
        return {"status": "ok", "documents": len(sources), "chunks": sum(s["chunks"] for s in sources),
                "mode": qa.mode}

    @api.get("/sources", response_model=list[SourceOut], summary="The indexed documents")
    def sources() -> list[dict]:
        return qa.sources()

    @api.get("/sources/{source:path}", response_model=SourceText, summary="A document's text (what offsets count)")
    def source_text(source: Annotated[str, Path(description="as listed by /api/sources")]) -> dict:
        if source not in qa.texts:
            raise HTTPException(404, f"no indexed document named {source!r}")
        return {"source": source, "text": qa.texts[source]}

    return api


def events(parts: Iterator[str | Answer]) -> Iterator[str]:
    """SSE frames: a `delta` per piece of text, then one `answer` with the full contract JSON."""
    for part in parts:
        if isinstance(part, Answer):
            yield f"event: answer\ndata: {json.dumps(part.to_dict(), ensure_ascii=False)}\n\n"
        else:
            yield f"event: delta\ndata: {json.dumps({'text': part}, ensure_ascii=False)}\n\n"
