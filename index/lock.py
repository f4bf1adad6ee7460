"""One owner per embedded store: a running server holds its data directory, so every write goes through it.

Chroma's embedded store keeps its vector index in the memory of the process that opened it; another process's writes
do not reach it (a document indexed beside a running server was never answered). The server holds an exclusive
`flock` on a lock file for as long as it runs; the file says who holds it (pid and URL) so that `citeqa index` can
send documents through that server and a second `citeqa serve` can name it. The operating system drops the lock
when the process dies, so a lock left by a crash is free: the next server takes it over and says so.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from index.errors import CiteqaError

log = logging.getLogger(f"citeqa.{__name__}")
LOCK_FILE = "server.lock"


@dataclass(frozen=True)
class Holder:
    """The server holding a data directory."""

    pid: int
    url: str


class DataDirHeld(CiteqaError, RuntimeError):
    """The data directory is held by a running server."""

    http_status = 409

    def __init__(self, data_dir: Path, holder: Holder | None):
        self.holder = holder
        who = f"the citeqa server at {holder.url} (pid {holder.pid})" if holder else "another citeqa server"
        super().__init__(f"{data_dir} is held by {who}; stop it first, or use another CITEQA_DATA_DIR")


def recorded(path: Path) -> Holder | None:
    """Who the lock file says holds it (whether or not they still do)."""
    try:
        return Holder(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def holder(data_dir: Path) -> Holder | None:
    """The live server holding `data_dir`, or None when none does (no lock file, or its holder is gone)."""
    path = data_dir / LOCK_FILE
    try:
        with path.open("rb") as probe:
            fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except FileNotFoundError:
        return None
    except BlockingIOError:
        return recorded(path) or Holder(0, "")
    return None


class DataDirLock:
    """Held while a server runs (a context manager); entering raises DataDirHeld when another server holds it."""

    def __init__(self, data_dir: Path, url: str):
        self.data_dir, self.url = data_dir, url
        self.path = data_dir / LOCK_FILE
        self.file: IO[str] | None = None

    def __enter__(self) -> DataDirLock:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        file = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            raise DataDirHeld(self.data_dir, recorded(self.path)) from None
        left = recorded(self.path)
        if left is not None:
            log.warning("taking over %s from a server that is gone (pid %d, %s)", self.data_dir, left.pid, left.url)
        file.seek(0)
        file.truncate()
        file.write(json.dumps(asdict(Holder(os.getpid(), self.url))))
        file.flush()
        os.fsync(file.fileno())
        self.file = file
        return self

    def __exit__(self, *_) -> None:
        if self.file is not None:
            self.path.unlink(missing_ok=True)  # before the lock is let go: a newcomer never reads a stale holder
            self.file.close()
            self.file = None
