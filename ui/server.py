"""One process: the REST API under /api, OpenAPI at /docs, and the Gradio chat at /."""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from importlib.metadata import version

import gradio as gr
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import SecretStr
from starlette.exceptions import HTTPException

from index.lock import DataDirLock
from index.store import StoreUnavailable, check_index
from qa.chain import CitedQA, build
from qa.documents import DocumentLibrary
from qa.feedback import FEEDBACK_FILE, FeedbackLog
from ui.api import MAX_FILES, MULTIPART_OVERHEAD, STORE_RETRY_AFTER_S, router
from ui.chat import CITE_CLICKS, CSS, build_chat
from ui.limits import BodyLimit
from ui.logs import configure
from ui.settings import ServerSettings, Settings

log = logging.getLogger(f"citeqa.{__name__}")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# How often a server looks for an index written by another process (one stat of the manifest): a document indexed
# elsewhere is answered from about this long after its write, plus the time to re-read the index.
FRESH_CHECK_S = 1.0


class IndexWatcher:
    """Re-reads the index when another process changed it, on a thread of its own: requests never wait for it, and
    each one answers from the whole old index or the whole new one (`CitedQA.refresh` swaps them whole)."""

    def __init__(self, qa: CitedQA, every: float = FRESH_CHECK_S):
        self.qa, self.every = qa, every
        self.failure: str | None = None  # why the last look failed; answers come from the last good state meanwhile
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="citeqa-index-watcher")

    def _run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                if self.qa.refresh_if_changed():
                    log.info("the index changed on disk: answering from %d documents now", len(self.qa.texts))
                if self.failure:
                    log.info("the index was re-read: no longer stale")
                self.failure = None
            except StoreUnavailable as error:  # an outage, which health reports as "degraded": tried again next look
                log.debug("could not look at the index: %s", error)
            except Exception as error:  # the store answers but the changed index cannot be read: answers are stale
                if not self.failure:
                    log.warning("could not re-read the changed index (trying again every %.0f s): %s", self.every,
                                error)
                self.failure = f"could not re-read the changed index: {error}"

    def __enter__(self) -> IndexWatcher:
        self.thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)


def create_app(qa: CitedQA, server: ServerSettings, ready: str | None = None) -> FastAPI:
    """The whole app over one answering chain; `ready` is logged once the server takes requests."""
    library = DocumentLibrary(qa, server.max_upload_bytes)
    watcher = IndexWatcher(qa)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        with watcher:
            if ready:
                log.info("%s", ready)
            yield

    # /docs and /redoc load Swagger UI and ReDoc from files fastapi-offline ships, never from a CDN.
    app = FastAPIOffline(title="citeqa", version=version("citeqa"), docs_url="/docs", redoc_url="/redoc",
                         lifespan=lifespan, static_url="/api-docs-assets",
                         description="Answers questions about the indexed documents with verbatim citations.")
    feedback = FeedbackLog(qa.store.settings.data_dir / FEEDBACK_FILE)
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

    @app.exception_handler(StoreUnavailable)
    async def store_503(_: Request, error: StoreUnavailable) -> JSONResponse:
        """Any route's store call while the store is unreachable: the client may retry (upload, delete, sources)."""
        return JSONResponse({"detail": f"document store unavailable: {error}"}, status_code=503,
                            headers={"Retry-After": str(STORE_RETRY_AFTER_S)})

    @app.exception_handler(HTTPException)
    async def undecodable_422(request: Request, error: HTTPException) -> JSONResponse:
        """FastAPI answers a body that is not UTF-8 with a bare 400; to a client it is one more body that is not
        JSON (found by tests/ui/test_fuzz.py)."""
        if error.status_code == 400 and isinstance(error.__cause__, UnicodeDecodeError):
            return JSONResponse({"detail": "request body is not valid JSON (not UTF-8)"}, status_code=422)
        return await http_exception_handler(request, error)

    key = server.api_key
    return gr.mount_gradio_app(app, build_chat(qa, library, feedback), path="", css=CSS, js=CITE_CLICKS,
                               footer_links=["api"],
                               auth=chat_login(key) if key else None, max_file_size=library.max_bytes,
                               auth_message="Enter the API key (CITEQA_API_KEY) as the password; any user name.")


def chat_login(key: SecretStr) -> Callable[[str, str], bool]:
    """The chat asks once per browser for the same key the API takes: any user name, the key as password."""
    return lambda _user, password: hmac.compare_digest(password.encode("utf-8"), key.get_secret_value().encode())


class WorkersNeedAServer(ValueError):
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
        # (2 workers × 2 threads on 2 cores gave no more answers/s than 1 worker in `make bench`).
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
        check_index(settings.index)  # a missing or incompatible index is refused here, once, not in every worker
        log.info("citeqa starting %d workers at %s (chat), %s/api (REST), %s/docs (OpenAPI)", workers, url, url, url)
        uvicorn.run("ui.server:worker_app", factory=True, workers=workers, host=server.host, port=server.port,
                    log_level="warning")
        return
    # The embedded store has one owner: this server holds its data directory until it stops (index/lock.py).
    with nullcontext() if settings.index.chroma_url else DataDirLock(settings.index.data_dir, url):
        app = create_app(build(settings), server, ready=f"citeqa ready at {url} (chat), {url}/api (REST), "
                                                        f"{url}/docs (OpenAPI)")
        uvicorn.run(app, host=server.host, port=server.port, log_level="warning")


def worker_app() -> FastAPI:
    """One worker of `citeqa serve --workers N`: uvicorn calls this in each worker process, which reads the same
    CITEQA_ settings; the workers share the Chroma server and the data dir, and each watches the index."""
    configure(serving=True)
    settings = Settings()
    return create_app(build(settings), settings.server, ready=f"worker {os.getpid()} ready")
