"""The REST API under /api, exactly as in the contract: ask, ask/stream, health, sources, documents."""

from __future__ import annotations

import hmac
import itertools
import json
from collections.abc import Callable, Iterator
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictStr, field_validator
from starlette.datastructures import UploadFile

from index.load import IngestError, TooLarge, UnsupportedType
from qa.chain import CitedQA, QuestionError
from qa.documents import DocumentLibrary, Upload
from qa.history import HistoryError
from qa.model import Answer

MAX_QUESTION_CHARS = 2000
MAX_FILES = 20  # files in one upload: a handful of reports; a whole folder is what `citeqa index` is for
MULTIPART_OVERHEAD = 2**20  # boundaries and part headers of MAX_FILES parts take a few kB; 1 MB is generous
REFUSAL_STATUS: dict[type[IngestError], int] = {UnsupportedType: 415, TooLarge: 413}  # any other refusal: 422
# Module level: FastAPI resolves the (postponed) annotations that name it from this module's globals.
BEARER = HTTPBearer(auto_error=False, description="the server's CITEQA_API_KEY")
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"},
                            "description": ".txt, .md, .html, .htm, .pdf (with a text layer) or .docx"}}}}}}}


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


def bearer(key: SecretStr) -> Callable[..., None]:
    """A dependency that lets a request through only with `Authorization: Bearer <key>` (constant-time compare)."""

    def check(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> None:
        given = credentials.credentials.encode("utf-8") if credentials else b""
        if not hmac.compare_digest(given, key.get_secret_value().encode("utf-8")):
            raise HTTPException(401, "missing or wrong API key: send the header Authorization: Bearer <key>",
                                headers={"WWW-Authenticate": "Bearer"})

    return check


def refusal(error: IngestError) -> HTTPException:
    status = next((code for kind, code in REFUSAL_STATUS.items() if isinstance(error, kind)), 422)
    return HTTPException(status, str(error))


def router(qa: CitedQA, library: DocumentLibrary) -> APIRouter:
    """Every route; all but /health need the API key when the settings hold one."""
    key = qa.settings.api_key
    api = APIRouter()
    guarded = APIRouter(dependencies=[Depends(bearer(key))] if key else [])

    def started(request: AskRequest) -> Iterator[str | Answer]:
        """The answer's parts, begun: bad input fails here as a 422, before any response has started."""
        parts = qa.stream(request.question, [turn.model_dump() for turn in request.history])
        try:
            first = next(parts)
        except (QuestionError, HistoryError) as error:
            raise HTTPException(422, str(error)) from None
        return itertools.chain([first], parts)

    @guarded.post("/ask", response_model=Answer, summary="Answer a question with verbatim citations")
    def ask(request: AskRequest) -> dict:
        *_, answer = started(request)
        return answer.to_dict()

    @guarded.post("/ask/stream", response_class=StreamingResponse,
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

    @guarded.get("/sources", response_model=list[SourceOut], summary="The indexed documents")
    def sources() -> list[dict]:
        return qa.sources()

    @guarded.get("/sources/{source:path}", response_model=SourceText, summary="A document's text (what offsets count)")
    def source_text(source: Annotated[str, Path(description="as listed by /api/sources")]) -> dict:
        if source not in qa.texts:
            raise HTTPException(404, f"no indexed document named {source!r}")
        return {"source": source, "text": qa.texts[source]}

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
            try:
                docs = await run_in_threadpool(library.read_all, uploads)
            except IngestError as error:
                raise refusal(error) from None
        try:
            added = await run_in_threadpool(library.add, docs)
        except IngestError as error:
            raise refusal(error) from None
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

    api.include_router(guarded)
    return api


def events(parts: Iterator[str | Answer]) -> Iterator[str]:
    """SSE frames: a `delta` per piece of text, then one `answer` with the full contract JSON."""
    for part in parts:
        if isinstance(part, Answer):
            yield f"event: answer\ndata: {json.dumps(part.to_dict(), ensure_ascii=False)}\n\n"
        else:
            yield f"event: delta\ndata: {json.dumps({'text': part}, ensure_ascii=False)}\n\n"
