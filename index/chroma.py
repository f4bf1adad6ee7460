"""The connection to Chroma: the client (embedded or a server), the collections of one index opened once, paging
through a collection, and what an unreachable server looks like to the rest of citeqa (`StoreUnavailable`)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import count, islice
from urllib.parse import urlparse

import chromadb
import httpx
from chromadb.config import Settings as ChromaSettings

from index.errors import CiteqaError
from index.settings import IndexSettings

# Rows per Chroma read or delete: Chroma turns a request into one SQL statement, and SQLite refuses one with more than
# 32,766 variables (a 100k-chunk collection read whole failed with "too many SQL variables").
PAGE = 5_000
# chromadb's HTTP client waits forever (httpx timeout=None); a stalled server must fail the request instead. A
# vector search takes ~1 ms and a 64-row add well under a second here, so 10 s only catches a server that hangs.
STORE_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 1.0  # the health probe: a heartbeat answers in ~1 ms on loopback
# The vector index of each collection. Only chunks are searched by vector; sentences and vocabulary words are read
# by id or source, so their graph is the cheapest Chroma builds (it always builds one). Measured here (10,000 rows of
# 256 dims, embedded Chroma, 2 cores): 1,379 rows/s with Chroma's default graph, 2,588 with this one.
SEARCHED = {"hnsw": {"space": "cosine"}}
STORED_ONLY = {"hnsw": {"space": "cosine", "ef_construction": 8, "max_neighbors": 4}}
# The store holds everything every app server needs: besides the chunk, sentence and word rows, a row per document
# (its text, which offsets point into, and its version) and one header row (what the vectors were made with, and a
# generation token every write changes), so servers on any machines over one Chroma server answer alike.
CHUNKS, SENTENCES, TERMS, DOCUMENTS, HEADER = "chunks", "sentences", "terms", "documents", "header"
KINDS = {CHUNKS: SEARCHED, SENTENCES: STORED_ONLY, TERMS: STORED_ONLY, DOCUMENTS: STORED_ONLY, HEADER: STORED_ONLY}


class StoreUnavailable(CiteqaError, RuntimeError):
    """The Chroma server cannot be reached (down, restarting, stalled): a passing condition, not a bad request."""

    http_status, exit_code = 503, 3
    # A stopped Chroma server is back in ~0.6 s after `chroma run` and answers resume on the next request (measured
    # in tests/ui/test_faults.py); a client waiting 5 s does not hammer a store that is restarting.
    retry_after_s = 5


def unreachable(url: str | None, why: str) -> str:
    return (f"document store unavailable: the Chroma server at {url} is unreachable ({why}); start it, or unset "
            "CITEQA_CHROMA_URL for the embedded store")


def chroma_client(settings: IndexSettings) -> chromadb.ClientAPI:
    quiet = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        try:
            client = chromadb.HttpClient(host=url.hostname or "127.0.0.1", port=url.port or 8000,
                                         ssl=url.scheme == "https", settings=quiet)
        except ValueError as error:  # chromadb's "Could not connect to a Chroma server"
            raise StoreUnavailable(unreachable(settings.chroma_url, str(error))) from None
        # chromadb has no public setting for this: its HTTP session is private (check on upgrading chromadb).
        client._server._session.timeout = httpx.Timeout(STORE_TIMEOUT_S)
        return client
    return chromadb.PersistentClient(path=str(settings.data_dir / "chroma"), settings=quiet)


def collection_name(settings: IndexSettings, kind: str) -> str:
    return f"{settings.collection}_{kind}"


class Collections:
    """One index's collections, chromadb's own handles, opened once (a lookup is ~8 ms over HTTP): every row is
    written with its vector, so Chroma embeds nothing itself."""

    def __init__(self, settings: IndexSettings):
        self.settings = settings
        self.client = chroma_client(settings)
        self.reopen()

    def reopen(self) -> None:
        """Fresh handles. Another process's `citeqa index --rebuild` replaces the collections (new ids), and a
        handle on a replaced one fails every read: a reader re-opens before each snapshot."""
        self.handles = {kind: self.client.get_or_create_collection(collection_name(self.settings, kind),
                                                                   configuration=configuration,
                                                                   embedding_function=None)
                        for kind, configuration in KINDS.items()}

    def __getitem__(self, kind: str) -> chromadb.Collection:
        return self.handles[kind]

    def drop(self) -> None:
        """Every collection deleted and opened again, empty."""
        for kind in KINDS:
            self.client.delete_collection(collection_name(self.settings, kind))
        self.reopen()

    @contextmanager
    def reachable(self) -> Iterator[None]:
        """Store calls inside it raise StoreUnavailable, not a transport error, while a Chroma server cannot be
        reached: a passing condition every caller maps to "try again" (503, exit 3)."""
        try:
            yield
        except httpx.TransportError as error:
            raise StoreUnavailable(unreachable(self.settings.chroma_url, str(error) or type(error).__name__)) \
                from error

    def problem(self) -> str | None:
        """Why the store cannot answer now, or None: a heartbeat with a short timeout (embedded: always fine)."""
        if not self.settings.chroma_url:
            return None
        try:
            httpx.get(f"{self.settings.chroma_url.rstrip('/')}/api/v2/heartbeat",
                      timeout=PROBE_TIMEOUT_S).raise_for_status()
        except httpx.HTTPError as error:
            return f"the Chroma server at {self.settings.chroma_url} is unreachable ({error or type(error).__name__})"
        return None


def pages(collection: chromadb.Collection, include: list[str], where: dict | None = None) -> Iterator[dict]:
    """A whole collection's ids and `include`d fields, PAGE rows a request (one SQL statement each), two requests
    in flight: the server reads out one page while this process parses the one before (a 30k-chunk snapshot:
    15.1 -> 10.4 s). Rows added after the count wait for the next snapshot, which their write's manifest brings.
    With `where` (a few documents' rows), pages come one after another until a short one."""
    if where is not None:
        for offset in count(0, PAGE):
            page = collection.get(where=where, include=include, limit=PAGE, offset=offset)
            yield page
            if len(page["ids"]) < PAGE:
                return
    offsets = iter(range(0, collection.count(), PAGE))
    with ThreadPoolExecutor(2) as pool:
        pending = deque(pool.submit(collection.get, include=include, limit=PAGE, offset=offset)
                        for offset in islice(offsets, 2))
        while pending:
            page = pending.popleft().result()
            pending.extend(pool.submit(collection.get, include=include, limit=PAGE, offset=offset)
                           for offset in islice(offsets, 1))
            yield page


def in_pages(ids: list[str]) -> Iterator[list[str]]:
    """`ids` PAGE at a time: each page one request (one SQL statement)."""
    for i in range(0, len(ids), PAGE):
        yield ids[i:i + PAGE]


def delete_pages(collection: chromadb.Collection, ids: list[str]) -> None:
    for page in in_pages(ids):
        collection.delete(ids=page)
