"""Whether a server can answer, as `/api/health` says it: ok, stale (answering from the last good state while a
changed index cannot be re-read) or degraded (the store is unreachable: nothing can be answered)."""

from __future__ import annotations

from typing import Any

from qa.chain import CitedQA


def health(qa: CitedQA, stale: str | None) -> dict[str, Any]:
    """`stale`: why the last refresh failed, if it did (`IndexWatcher.failure`)."""
    problem = qa.store.problem()
    if problem:
        return {"status": "degraded", "reason": problem}
    sources = qa.sources()
    size = {"documents": len(sources), "chunks": sum(s["chunks"] for s in sources), "mode": qa.mode}
    return {"status": "stale", "reason": stale, **size} if stale else {"status": "ok", **size}
