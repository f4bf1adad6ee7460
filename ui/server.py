"""One process: the REST API under /api, OpenAPI at /docs, and the Gradio chat at /."""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version

import gradio as gr
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import SecretStr
from starlette.exceptions import HTTPException

from qa.chain import CitedQA, build
from qa.documents import DocumentLibrary
from ui.api import MAX_FILES, MULTIPART_OVERHEAD, router
from ui.chat import CSS, build_chat
from ui.limits import BodyLimit
from ui.settings import ServerSettings, Settings

log = logging.getLogger(f"citeqa.{__name__}")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def create_app(qa: CitedQA, server: ServerSettings, ready: str | None = None) -> FastAPI:
    """The whole app over one answering chain; `ready` is logged once the server takes requests."""
    library = DocumentLibrary(qa, server.max_upload_bytes)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if ready:
            log.info("%s", ready)
        yield

    app = FastAPI(title="citeqa", version=version("citeqa"), docs_url="/docs", lifespan=lifespan,
                  description="Answers questions about the indexed documents with verbatim citations.")
    app.include_router(router(qa, library, server), prefix="/api")
    # Uploads: the route's own Content-Length check (with its clearer message) comes first; this bound, twice
    # that, stops a body that runs past the length it declared.
    app.add_middleware(BodyLimit, default=server.max_body_kb * 1024,
                       routes={"/api/documents": 2 * (library.max_bytes * MAX_FILES + MULTIPART_OVERHEAD)})

    @app.exception_handler(RequestValidationError)
    async def readable_422(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = ["request body is not valid JSON" if e["type"] == "json_invalid" else
                    f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
                    for e in error.errors()]
        return JSONResponse({"detail": "; ".join(problems) or "invalid request"}, status_code=422)

    @app.exception_handler(HTTPException)
    async def undecodable_422(request: Request, error: HTTPException) -> JSONResponse:
        """FastAPI answers a body that is not UTF-8 with a bare 400; to a client it is one more body that is not
        JSON (found by tests/ui/test_fuzz.py)."""
        if error.status_code == 400 and isinstance(error.__cause__, UnicodeDecodeError):
            return JSONResponse({"detail": "request body is not valid JSON (not UTF-8)"}, status_code=422)
        return await http_exception_handler(request, error)

    key = server.api_key
    return gr.mount_gradio_app(app, build_chat(qa, library), path="", css=CSS, footer_links=["api"],
                               auth=chat_login(key) if key else None, max_file_size=library.max_bytes,
                               auth_message="Enter the API key (CITEQA_API_KEY) as the password; any user name.")


def chat_login(key: SecretStr) -> Callable[[str, str], bool]:
    """The chat asks once per browser for the same key the API takes: any user name, the key as password."""
    return lambda _user, password: hmac.compare_digest(password.encode("utf-8"), key.get_secret_value().encode())


def serve(settings: Settings) -> None:
    """Loads the model and the index once, then serves until interrupted."""
    logging.getLogger("citeqa").setLevel(logging.INFO)  # why an answer fell back is logged at INFO
    server = settings.server
    url = f"http://{server.host}:{server.port}"
    app = create_app(build(settings), server, ready=f"citeqa ready at {url} (chat), {url}/api (REST), "
                                                    f"{url}/docs (OpenAPI)")
    if server.api_key is None and server.host not in LOOPBACK:
        log.warning("serving on %s with no CITEQA_API_KEY: anyone who can reach it can upload and delete "
                    "documents", server.host)
    uvicorn.run(app, host=server.host, port=server.port, log_level="warning")
