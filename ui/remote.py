"""The REST API from the client side: `citeqa index` on a data directory a running server holds sends the files
through that server (`POST /api/documents`, the upload path), since only the holder may write its store."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from index.errors import CiteqaError
from index.load import IngestError, discover
from index.text import counted
from ui.api import MAX_FILES

# One batch is at most MAX_FILES files that the server embeds before it replies: 20 long PDFs take minutes on 2 cores.
UPLOAD_TIMEOUT_S = 900


class ServerRefused(CiteqaError, RuntimeError):
    """The server could not be reached, or refused the files (the message says which and why)."""


@dataclass(frozen=True)
class Sent:
    url: str
    documents: list[dict]  # as the server reported each: source, chars, chunks
    removed: list[str]
    seconds: float

    def line(self) -> str:
        chunks = sum(d["chunks"] for d in self.documents)
        return (f"indexed {counted(len(self.documents), 'file')} through the server at {self.url}: "
                f"{counted(chunks, 'chunk')}, {len(self.removed)} removed in {self.seconds:.1f} s")


def send_documents(url: str, paths: Sequence[Path], api_key: SecretStr | None, prune: bool = False,
                   say: Callable[[str], None] = lambda _: None) -> Sent:
    """Uploads every file under `paths` in batches (an uploaded document is named by its file name); with `prune`,
    deletes the server's documents that are not among them."""
    started = time.monotonic()
    found = discover(paths)
    names = [path.name for path, _ in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise IngestError(f"{', '.join(twice)}: files in different folders share a name; a server names documents "
                          "by file name, so send them separately or stop the server and index the folder")
    headers = {"Authorization": f"Bearer {api_key.get_secret_value()}"} if api_key else {}
    documents, removed = [], []
    try:
        with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=UPLOAD_TIMEOUT_S) as client:
            for first in range(0, len(found), MAX_FILES):
                batch = found[first:first + MAX_FILES]
                reply = client.post("/api/documents", files=[("file", (path.name, path.read_bytes()))
                                                             for path, _ in batch])
                documents += checked(reply, 201)
                say(f"sent {first + len(batch)} of {len(found)} files")
            if prune:
                for source in sorted({d["source"] for d in checked(client.get("/api/sources"), 200)} - set(names)):
                    checked(client.delete(f"/api/documents/{quote(source)}"), 204)
                    removed.append(source)
    except httpx.HTTPError as error:
        raise ServerRefused(f"could not reach the citeqa server at {url}: {error or type(error).__name__}") from None
    return Sent(url, documents, removed, time.monotonic() - started)


def checked(reply: httpx.Response, status: int) -> list[dict]:
    """The reply's JSON list when it has the expected status; otherwise the server's reason."""
    if reply.status_code != status:
        try:
            detail = reply.json()["detail"]
        except (ValueError, KeyError, TypeError):
            detail = reply.text[:300]
        raise ServerRefused(f"the server refused ({reply.status_code}): {detail}")
    return reply.json() if status != 204 else []
