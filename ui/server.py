"""One process: the REST API under /api, OpenAPI at /docs, and the Gradio chat at /."""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from importlib.metadata import version

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import SecretStr
from starlette.exceptions import HTTPException
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from index.errors import CiteqaError
from index.lock import DataDirLock
from index.records import check_index
from qa.chain import CitedQA
from service.build import build
from service.feedback import FEEDBACK_FILE, FeedbackLog
from service.library import DocumentLibrary
from service.watch import IndexWatcher
from ui.api import MAX_FILES, MULTIPART_OVERHEAD, router
from ui.limits import BodyLimit
from ui.logs import configure
from ui.settings import ServerSettings, Settings

log = logging.getLogger(f"citeqa.{__name__}")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Gradio keeps the Blocks being built in a class attribute (`gradio.context.Context.root_block`): two chats built at
# once on two threads would mix their parts (only tests build several apps in one process).
CHAT_BUILDS = threading.Lock()


class ChatState:
    """Whether the chat is mounted yet, and why it could not be if it failed (its pages answer 503 saying so)."""

    def __init__(self) -> None:
        self.loaded = asyncio.Event()
        self.failure: str | None = None


class ChatLoading:
    """Serves the API at once and holds every other request until the chat is mounted.

    Importing Gradio is about half of a cold start (2.4 of 4.5 s on the seed index, `python -X importtime`): the
    chat loads on a thread after the server takes requests, so a program's first answer does not wait for it, and a
    browser asking for the chat meanwhile waits for it instead of finding nothing there."""

    def __init__(self, app: ASGIApp, chat: ChatState, api_prefix: str = "/api"):
        self.app, self.chat, self.api_prefix = app, chat, api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not scope["path"].startswith(self.api_prefix):
            await self.chat.loaded.wait()
            if self.chat.failure and scope["type"] == "http":
                await JSONResponse({"detail": self.chat.failure}, status_code=503)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(qa: CitedQA, server: ServerSettings, announce: str | None = None) -> FastAPI:
    """The whole app over one answering chain: the REST API at once, the chat once Gradio has loaded (`ChatLoading`).
    With `announce` (who is serving: "citeqa", "worker 123"), each is logged with its URL as it takes requests."""
    url = f"http://{server.host}:{server.port}"
    library = DocumentLibrary(qa, server.max_upload_bytes)
    watcher = IndexWatcher(qa)
    feedback = FeedbackLog(qa.store.settings.data_dir / FEEDBACK_FILE)
    state = ChatState()

    async def serve_chat(stopping: asyncio.Event) -> None:
        """Builds the chat off the event loop, mounts it, and keeps its own lifespan (Gradio's queue) running."""
        try:
            chat = await asyncio.to_thread(chat_app, qa, library, feedback, server)
            mount = Mount("", app=chat)
            async with chat.router.lifespan_context(chat):
                app.router.routes.append(mount)  # after the API's routes: they match first
                state.loaded.set()
                if announce:
                    log.info("%s ready at %s (chat), %s/api (REST), %s/docs (OpenAPI)", announce, url, url, url)
                try:
                    await stopping.wait()
                finally:
                    app.router.routes.remove(mount)  # a later run of the app (tests) mounts its own
        except Exception as error:  # the API still answers; the chat's pages say why they cannot
            log.exception("the chat could not be loaded; the REST API still answers")
            state.failure = f"the chat could not be loaded: {error}"
            state.loaded.set()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stopping = asyncio.Event()
        state.loaded, state.failure = asyncio.Event(), None  # bound to this run's event loop
        with watcher:
            chat = asyncio.create_task(serve_chat(stopping))
            if announce:
                log.info("%s answering at %s/api (REST); the chat is loading", announce, url)
            try:
                yield
            finally:
                stopping.set()
                await chat

    # /docs and /redoc load Swagger UI and ReDoc from files fastapi-offline ships, never from a CDN.
    app = FastAPIOffline(title="citeqa", version=version("citeqa"), docs_url="/docs", redoc_url="/redoc",
                         lifespan=lifespan, static_url="/api-docs-assets",
                         description="Answers questions about the indexed documents with verbatim citations.")
    app.include_router(router(qa, library, feedback, server, stale=lambda: watcher.failure), prefix="/api")
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

    @app.exception_handler(CiteqaError)
    async def refused(_: Request, error: CiteqaError) -> JSONResponse:
        """Every refusal on every route, with the status its kind carries (index/errors.py): a store outage is a 503
        the client may retry, a file that cannot be indexed a 415, 413 or 422, a question that cannot be asked 422."""
        headers = {"Retry-After": str(error.retry_after_s)} if error.retry_after_s else None
        return JSONResponse({"detail": str(error)}, status_code=error.http_status, headers=headers)

    @app.exception_handler(HTTPException)
    async def undecodable_422(request: Request, error: HTTPException) -> JSONResponse:
        """FastAPI answers a body that is not UTF-8 with a bare 400; to a client it is one more body that is not
        JSON (found by tests/ui/test_fuzz.py)."""
        if error.status_code == 400 and isinstance(error.__cause__, UnicodeDecodeError):
            return JSONResponse({"detail": "request body is not valid JSON (not UTF-8)"}, status_code=422)
        return await http_exception_handler(request, error)

    app.add_middleware(ChatLoading, chat=state)
    return app


def chat_app(qa: CitedQA, library: DocumentLibrary, feedback: FeedbackLog, server: ServerSettings) -> FastAPI:
    """The Gradio chat as an app of its own, to mount at the root (its import is what takes the time)."""
    import gradio as gr

    from ui.chat import CITE_CLICKS, CSS, build_chat

    key = server.api_key
    with CHAT_BUILDS:
        blocks = build_chat(qa, library, feedback)
    return gr.mount_gradio_app(FastAPI(), blocks, path="", css=CSS, js=CITE_CLICKS,
                               footer_links=["api"],
                               auth=chat_login(key) if key else None, max_file_size=library.max_bytes,
                               auth_message="Enter the API key (CITEQA_API_KEY) as the password; any user name.")


def chat_login(key: SecretStr) -> Callable[[str, str], bool]:
    """The chat asks once per browser for the same key the API takes: any user name, the key as password."""
    return lambda _user, password: hmac.compare_digest(password.encode("utf-8"), key.get_secret_value().encode())


class WorkersNeedAServer(CiteqaError, ValueError):
    """`--workers N` over the embedded store: its files take one process at a time."""


def serve(settings: Settings, workers: int = 1) -> None:
    """Loads the model and the index once per worker, then serves until interrupted."""
    server = settings.server
    if workers > 1 and not settings.index.chroma_url:
        raise WorkersNeedAServer(f"--workers {workers} needs a Chroma server (CITEQA_CHROMA_URL): the embedded store "
                                 "is single-process; run `chroma run --path DIR` and point CITEQA_CHROMA_URL at it")
    url = f"http://{server.host}:{server.port}"
    if server.api_key is None and server.host not in LOOPBACK:
        log.warning("serving on %s with no CITEQA_API_KEY: anyone who can reach it can upload and delete "
                    "documents", server.host)
    if workers > 1:
        # The workers' model threads share the cores: each worker with all of them would oversubscribe them
        # (2 workers × 2 threads on 2 cores gave no more answers/s than 1 worker in `make bench`). Workers read their
        # settings from the environment, so their share goes there, as the setting it is.
        os.environ["CITEQA_THREADS"] = str(max(1, settings.index.cores // workers))
        check_index(settings.index)  # a missing or incompatible index is refused here, once, not in every worker
        log.info("citeqa starting %d workers at %s (chat), %s/api (REST), %s/docs (OpenAPI)", workers, url, url, url)
        uvicorn.run("ui.server:worker_app", factory=True, workers=workers, host=server.host, port=server.port,
                    log_level="warning")
        return
    # The embedded store has one owner: this server holds its data directory until it stops (index/lock.py).
    with nullcontext() if settings.index.chroma_url else DataDirLock(settings.index.data_dir, url):
        app = create_app(build(settings), server, announce="citeqa")
        uvicorn.run(app, host=server.host, port=server.port, log_level="warning")


def worker_app() -> FastAPI:
    """One worker of `citeqa serve --workers N`: uvicorn calls this in each worker process, which reads the same
    CITEQA_ settings; the workers share the Chroma server and the data dir, and each watches the index."""
    configure(serving=True)
    settings = Settings()
    return create_app(build(settings), settings.server, announce=f"worker {os.getpid()}")
