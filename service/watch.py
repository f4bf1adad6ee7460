"""Noticing what other processes wrote: a running server re-reads the index when its generation changes."""

from __future__ import annotations

import logging
import threading

from index.chroma import StoreUnavailable
from qa.chain import CitedQA

log = logging.getLogger(f"citeqa.{__name__}")
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
