"""Documents added and removed while the chain serves: read and checked first, written one request at a time,
then the chain is refreshed, so a question sees the documents before a write or after it, never half of one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from index.load import IngestError, check_upload, read_bytes
from index.pipeline import Added, Indexer, Progress
from index.spans import SourceText
from qa.chain import CitedQA

log = logging.getLogger(f"citeqa.{__name__}")


@dataclass(frozen=True)
class Upload:
    """A sent file: its name as sent, its size, and how to read its bytes (read only once name and size pass)."""

    name: str
    size: int
    read: Callable[[], bytes]


class DocumentLibrary:
    def __init__(self, qa: CitedQA, max_bytes: int):
        self.qa = qa
        self.indexer = Indexer(qa.store)
        self.max_bytes = max_bytes
        self._writing = threading.Lock()

    def read(self, upload: Upload) -> SourceText:
        """One file's text, or an `IngestError` naming it and the reason; writes nothing."""
        check_upload(upload.name, upload.size, self.max_bytes)
        return read_bytes(upload.read(), upload.name, upload.name)

    def read_all(self, uploads: Sequence[Upload]) -> list[SourceText]:
        """Every file's text, or one error for the whole set (the first bad file's kind, every bad file named)."""
        if not uploads:
            raise IngestError("no files: send one or more parts named 'file'")
        names = [u.name for u in uploads]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise IngestError(f"{', '.join(twice)}: sent twice in one upload; send each name once")
        docs, problems = [], []
        for upload in uploads:
            try:
                docs.append(self.read(upload))
            except IngestError as error:
                problems.append(error)
        if problems:
            first = problems[0]
            raise type(first)("nothing was indexed: " + "; ".join(str(p) for p in problems))
        return docs

    def add(self, docs: Sequence[SourceText], progress: Progress | None = None) -> list[Added]:
        """Indexes `docs` (replacing documents of the same name) and makes them answerable at once."""
        with self._writing, self.qa.store.reachable():
            added = self.indexer.add(docs, progress)
            self.qa.refresh()
        for doc in added:
            log.info("%s %s: %d characters, %d chunks", "replaced" if doc.replaced else "added", doc.source,
                     doc.chars, doc.chunks)
        return added

    def remove(self, source: str) -> bool:
        """Drops a document so it is no longer cited; False when none of that name is indexed."""
        with self._writing, self.qa.store.reachable():
            removed = self.indexer.remove(source)
            if removed:
                self.qa.refresh()
        if removed:
            log.info("removed %s", source)
        return removed
