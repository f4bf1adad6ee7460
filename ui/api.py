"""The REST API under /api, exactly as in the contract: ask, ask/stream, health, sources, documents, feedback."""

from __future__ import annotations

import hmac
import json
import sqlite3
from collections.abc import Callable, Generator, Iterator
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictStr, field_validator
from starlette.datastructures import UploadFile
from starlette.types import Receive, Scope, Send

from index.chroma import StoreUnavailable
from qa.answer import Answer
from qa.chain import CitedQA
from qa.settings import MAX_QUESTION_CHARS
from service.feedback import FeedbackLog, Judgement, mark
from service.health import health as service_health
from service.library import DocumentLibrary, Upload
from ui.limits import SHED_RETRY_AFTER_S, InFlight
from ui.settings import ServerSettings

MAX_FILES = 20  # files in one upload: a handful of reports; a whole folder is what `citeqa index` is for
MULTIPART_OVERHEAD = 2**20  # boundaries and part headers of MAX_FILES parts take a few kB; 1 MB is generous
# Module level: FastAPI resolves the (postponed) annotations that name it from this module's globals.
BEARER = HTTPBearer(auto_error=False, description="the server's CITEQA_API_KEY")
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"},
                            "description": ".txt, .md, .html, .htm, .pdf (with a text layer) or .docx"}}}}}}}
MAX_NOTE_CHARS = 2000  # a note is a sentence or two; as long as a question
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


class MarkedSpan(BaseModel):
    source: StrictStr = Field(description="as listed by /api/sources")
    start: int = Field(ge=0, description="Python string offset where the right passage starts")
    end: int = Field(ge=1, description="offset where it ends (exclusive)")


class FeedbackRequest(AskRequest):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"question": "How many French soldiers are in Niger?", "history": [],
         "reply": {"answer": "1,500 — “France has 1,500 soldiers in Niger” [1]", "grounded": True, "citations": [
             {"id": 1, "source": "niger-junta-wagner.txt", "start": 5418, "end": 5452,
              "quote": "France has 1,500 soldiers in Niger", "score": 0.83}]},
         "verdict": "up", "correct": None, "note": ""}]})
    reply: Answer = Field(description="The /api/ask reply being judged.")
    verdict: Literal["up", "down"] = Field(description="up: the answer was right; down: it was not.")
    correct: MarkedSpan | None = Field(None, description="The passage that does answer, when the user marked one.")
    note: StrictStr = Field("", max_length=MAX_NOTE_CHARS, description="Free text; a down verdict whose note says "
                            "the documents do not answer becomes an expected abstention on export.")


class FeedbackOut(BaseModel):
    id: str


class SourceOut(BaseModel):
    source: str
    chars: int
    chunks: int


class SourceTextOut(BaseModel):
    source: str
    text: str


def bearer(key: SecretStr) -> Callable[..., None]:
    """A dependency that lets a request through only with `Authorization: Bearer <key>` (constant-time compare)."""

    def check(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> None:
        given = credentials.credentials.encode("utf-8") if credentials else b""
        if not hmac.compare_digest(given, key.get_secret_value().encode("utf-8")):
            raise HTTPException(401, "missing or wrong API key: send the header Authorization: Bearer <key>",
                                headers={"WWW-Authenticate": "Bearer"})

    return check


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


def router(qa: CitedQA, library: DocumentLibrary, feedback: FeedbackLog, server: ServerSettings,
           stale: Callable[[], str | None] = lambda: None) -> APIRouter:
    """Every route; all but the health routes need the API key when the settings hold one. `stale` says why the
    last refresh of a changed index failed (answers then come from the last good state), or None."""
    key = server.api_key
    api = APIRouter()
    guarded = APIRouter(dependencies=[Depends(bearer(key))] if key else [])
    in_flight = InFlight(server.max_in_flight)

    def enter() -> None:
        """A place among the answers in flight, or a fast 503 (checked on the event loop, before any thread)."""
        if not in_flight.enter():
            raise HTTPException(503, f"busy: {in_flight.limit} answers are already in flight; retry shortly",
                                headers={"Retry-After": str(SHED_RETRY_AFTER_S)})

    def started(request: AskRequest) -> Generator[str | Answer, None, None]:
        """The answer's parts, begun: bad input fails here as a 422 and an unreachable store (`StoreUnavailable`,
        which the app answers with 503 on every route) before any response has started. The answer's place in
        flight is given back when the parts end or are closed."""
        parts = held(qa.stream(request.question, [turn.model_dump() for turn in request.history]), in_flight.leave)
        next(parts)  # a refusal (`CiteqaError`) is raised here and answered by the app's handler
        return parts

    def answered(request: AskRequest) -> dict:
        *_, answer = started(request)
        return answer.to_dict()

    @guarded.post("/ask", response_model=Answer, responses=REFUSALS,
                  summary="Answer a question with verbatim citations")
    async def ask(request: AskRequest) -> dict:
        enter()
        return await run_in_threadpool(answered, request)

    @guarded.post("/ask/stream", response_class=StreamingResponse, responses=REFUSALS,
                  summary="Server-sent events: `delta` events with answer text as it is made, then one `answer` "
                          "event with the checked /api/ask reply (authoritative: a generated answer that fails the "
                          "support check is replaced by the extractive one)")
    async def ask_stream(request: AskRequest) -> StreamingResponse:
        enter()
        return AnswerStream(await run_in_threadpool(started, request))

    @api.get("/health", summary="Readiness and index size; 503 while a dependency is down; `stale` (200) while "
             "the last refresh of a changed index failed and answers come from the last good state",
             response_model=None, responses={503: {"description": '`{"status": "degraded", "reason": str}`'}})
    def health() -> dict | JSONResponse:
        said = service_health(qa, stale())
        if said["status"] == "degraded":
            return JSONResponse(said, status_code=503, headers={"Retry-After": str(StoreUnavailable.retry_after_s)})
        return said

    @api.get("/health/live", summary="Liveness: the process answers (200 even while a dependency is down)")
    def live() -> dict:
        return {"status": "alive"}

    @guarded.get("/sources", response_model=list[SourceOut], summary="The indexed documents")
    def sources() -> list[dict]:
        return qa.sources()

    @guarded.get("/sources/{source:path}", response_model=SourceTextOut,
                 summary="A document's text (what offsets count)")
    def source_text(source: Annotated[str, Path(description="as listed by /api/sources")]) -> dict:
        text = qa.texts.get(source)  # one read of one state: a refresh in between cannot split it
        if text is None:
            raise HTTPException(404, f"no indexed document named {source!r}")
        return {"source": source, "text": text}

    @guarded.post("/documents", status_code=201, response_model=list[SourceOut], openapi_extra=UPLOAD_BODY,
                  summary="Upload documents (multipart parts named `file`): indexed and answerable at once. A "
                          "document of the same name is replaced (header X-Replaced lists those). One bad file "
                          "refuses the whole upload (413 too large, 415 unsupported type, 422 unreadable) and "
                          "nothing is written.")
    async def upload(request: Request, response: Response) -> list[dict]:
        length = request.headers.get("content-length", "")
        if not length.isdigit():
            raise HTTPException(411, "send the upload with a Content-Length header")
        limit = library.max_bytes * MAX_FILES + MULTIPART_OVERHEAD
        if int(length) > limit:
            raise HTTPException(413, f"the upload is {int(length) / 2**20:.1f} MB; one takes at most {MAX_FILES} "
                                     f"files of {library.max_bytes / 2**20:g} MB each")
        async with request.form(max_files=MAX_FILES, max_fields=MAX_FILES) as form:
            parts = form.getlist("file")
            if not all(isinstance(part, UploadFile) for part in parts):
                raise HTTPException(422, "each part named 'file' must be a file (with a filename)")
            uploads = [Upload(part.filename or "", part.size or 0, part.file.read) for part in parts]
            docs = await run_in_threadpool(library.read_all, uploads)
        added = await run_in_threadpool(library.add, docs)
        replaced = [quote(a.source) for a in added if a.replaced]
        if replaced:
            response.headers["X-Replaced"] = ", ".join(replaced)
        return [{"source": a.source, "chars": a.chars, "chunks": a.chunks} for a in added]

    @guarded.delete("/documents/{source:path}", status_code=204, response_class=Response,
                    summary="Remove a document: it is no longer cited")
    def delete(source: Annotated[str, Path(description="as listed by /api/sources")]) -> Response:
        if not library.remove(source):
            raise HTTPException(404, f"no indexed document named {source!r}")
        return Response(status_code=204)

    @guarded.post("/feedback", status_code=201, response_model=FeedbackOut,
                  summary="Judge an answer (up/down, optionally the passage that is right): kept durably, exported "
                          "as an evaluation set by `citeqa feedback export`; 422 when `correct` is not a span of "
                          "an indexed document")
    def judge(request: FeedbackRequest) -> dict:
        marked = None
        if request.correct:
            span = request.correct
            marked = mark(span.source, span.start, span.end, qa.texts)
            if marked is None:
                raise HTTPException(422, f"correct: {span.source!r} characters {span.start}-{span.end} is not a "
                                         "passage of an indexed document")
        judgement = Judgement(request.question, request.reply.to_dict(), request.verdict,
                              [turn.model_dump() for turn in request.history], marked, request.note)
        try:
            return {"id": feedback.add(judgement)}
        except sqlite3.Error as error:
            raise HTTPException(503, f"could not store the feedback: {error}",  # a locked file: as passing as an outage
                                headers={"Retry-After": str(StoreUnavailable.retry_after_s)}) from None

    api.include_router(guarded)
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
