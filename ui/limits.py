"""Back-pressure: request bodies over a size limit are refused before parsing, and answers beyond a bounded number
in flight are refused at once (503) instead of waiting in an unbounded queue."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

log = logging.getLogger(f"citeqa.{__name__}")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# What a client is told to wait after a refusal: about one answer's time under full load (p50 0.6 s at 64 clients
# with 8 in flight on a busy 2-core machine, docs/reliability.md), rounded up to the header's whole seconds.
SHED_RETRY_AFTER_S = 1


class BodyTooLarge(Exception):
    """Raised into the app when a streamed body passes the limit; the middleware answers 413 instead."""


class BodyLimit:
    """ASGI middleware: 413 `{"detail"}` for a body over its route's limit, from Content-Length when the client
    declares one and by counting the bytes as they arrive when it does not (chunked), before the app parses it."""

    def __init__(self, app: ASGIApp, default: int, routes: dict[str, int]):
        self.app, self.default, self.routes = app, default, routes

    def limit(self, path: str) -> int:
        return next((limit for prefix, limit in self.routes.items() if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await refuse(send, limit)
            return
        seen, exceeded, started = 0, False, False

        async def counted() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise BodyTooLarge(f"request body over {limit} bytes")
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if exceeded:  # whatever the app makes of a body it could not finish reading, the client gets the 413
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await refuse(send, limit)


async def refuse(send: Send, limit: int) -> None:
    log.warning("refused a request body over %d bytes", limit)
    body = json.dumps({"detail": f"request body is larger than {limit // 1024} kB"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class InFlight:
    """At most `limit` answers computed at once in this worker; `enter` never waits, so a burst beyond it is
    answered with a fast 503 rather than queued behind work that would make every reply late."""

    def __init__(self, limit: int):
        self.limit = limit
        self._free = threading.BoundedSemaphore(limit)

    def enter(self) -> bool:
        return self._free.acquire(blocking=False)

    def leave(self) -> None:
        self._free.release()
