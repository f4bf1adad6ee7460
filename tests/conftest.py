"""Shared fixtures: the real embedding model, the seed article indexed once, a real Chroma server."""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from index.embed import embeddings_for, model_name
from index.pipeline import Indexer
from index.settings import IndexSettings
from index.store import IndexStore
from qa.chain import CitedQA
from qa.settings import AnsweringSettings

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
ARTICLE = SEEDS / "niger-junta-wagner.txt"
SHARED_EVAL = ROOT.parent / "shared" / "eval" / "qa-dev.jsonl"


class Dropped(logging.Handler):
    """Collects what `verify` drops (it logs every citation or short answer that is not verbatim)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def nothing_dropped_by_verify(request) -> Iterator[None]:
    """Every answer made in a test process must come out of the chain verbatim: `verify` is the last check, not
    the filter that makes tests pass. Only the tests of `verify` itself make it drop things on purpose."""
    dropped, logger = Dropped(), logging.getLogger("citeqa.qa.verify")
    logger.addHandler(dropped)
    try:
        yield
    finally:
        logger.removeHandler(dropped)
    if request.node.path.name != "test_verify.py":
        assert not dropped.records, [r.getMessage() for r in dropped.records]


def rows_only(collection, rows: dict[str, tuple[str, dict]]) -> None:
    """Writes rows into a collection and nothing else (no copy, no manifest): a write cut short."""
    texts = [text for text, _ in rows.values()]
    collection.add(ids=list(rows), embeddings=embeddings_for(IndexSettings()).embed_documents(texts), documents=texts,
                   metadatas=[meta for _, meta in rows.values()])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {seconds} s")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, and SIGKILL after 20 s: a server waiting on a browser's open event stream must not hang the tests."""
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(20)


@contextmanager
def running(command: list[str], ready_url: str, seconds: float, **popen) -> Iterator[subprocess.Popen]:
    """A real server process, waited for until `ready_url` answers, stopped afterwards."""
    popen = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, **popen}
    process = subprocess.Popen(command, **popen)
    try:
        wait_for(ready_url, process, seconds)
        yield process
    finally:
        stop(process)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Whatever lives under tests/system/ is a system test (`-m "not system"` runs the rest)."""
    for item in items:
        if Path(item.path).parent.name == "system":
            item.add_marker(pytest.mark.system)


@pytest.fixture(scope="session")
def embeddings():
    return embeddings_for(IndexSettings())


@pytest.fixture(scope="session")
def chroma_url(tmp_path_factory) -> Iterator[str]:
    """A real `chroma run` server on a free loopback port, stopped after the session."""
    port = free_port()
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or "chroma"
    command = [chroma, "run", "--path", str(tmp_path_factory.mktemp("chroma-server")), "--host", "127.0.0.1",
               "--port", str(port)]
    with running(command, f"http://127.0.0.1:{port}/api/v2/heartbeat", 120):  # seconds, on a busy machine
        yield f"http://127.0.0.1:{port}"


class ChromaServer:
    """A `chroma run` process that a test can stop and start again on the same port and data folder."""

    def __init__(self, path: Path, port: int):
        chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or "chroma"
        self.command = [chroma, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)]
        self.url, self.process = f"http://127.0.0.1:{port}", None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(f"{self.url}/api/v2/heartbeat", self.process, 120)  # seconds, on a busy machine
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            stop(self.process)


@pytest.fixture
def chroma_server(tmp_path) -> Iterator[ChromaServer]:
    """A Chroma server of this test's own, to break on purpose."""
    server = ChromaServer(tmp_path / "chroma-server", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["embedded", "server"])
def settings(request, tmp_path) -> IndexSettings:
    """Settings for a fresh index, once with the embedded store and once with a Chroma server."""
    url = request.getfixturevalue("chroma_url") if request.param == "server" else None
    return IndexSettings(data_dir=tmp_path / "data", chroma_url=url, collection=f"t{os.urandom(4).hex()}")


@pytest.fixture
def store(settings, embeddings) -> IndexStore:
    return IndexStore(settings, embeddings, model_name(None))


def small_index(tmp_path_factory, embeddings, texts: dict[str, str], name: str) -> IndexStore:
    """A fresh embedded store holding `texts` (file name → text): the hand-built index of a unit test module."""
    folder = tmp_path_factory.mktemp(f"{name}-docs")
    for file, text in texts.items():
        (folder / file).write_text(text, encoding="utf-8")
    store = IndexStore(IndexSettings(data_dir=tmp_path_factory.mktemp(f"{name}-index")), embeddings, model_name(None))
    Indexer(store).run([folder])
    return store


@pytest.fixture(scope="session")
def seed_store(tmp_path_factory, embeddings) -> IndexStore:
    """The seed article, indexed once for the whole session."""
    store = IndexStore(IndexSettings(data_dir=tmp_path_factory.mktemp("seed-index")), embeddings, model_name(None))
    Indexer(store).run([SEEDS])
    return store


@pytest.fixture(scope="session")
def seed_qa(seed_store) -> CitedQA:
    """The chain over the seed article with the rule-based selector (tests of the rules' own cues)."""
    return CitedQA(seed_store, AnsweringSettings(selector="rules"))


@pytest.fixture(scope="session")
def seed_learned_qa(seed_store) -> CitedQA:
    """The same chain with the learned selector (the default: the shipped reader and decision)."""
    return CitedQA(seed_store, AnsweringSettings(selector="learned"))


class SlowChat(BaseChatModel):
    """A chat model that says `reply` a word at a time: silent for `first` s, then `gap` s between words.
    `wake` cuts every wait short; `said` counts the words it produced and `closed` is set when its stream ends."""

    reply: str = "France has 1,500 soldiers in Niger [1]. " * 100
    first: float = 0.0
    gap: float = 0.0
    wake: threading.Event = Field(default_factory=threading.Event)
    closed: threading.Event = Field(default_factory=threading.Event)
    said: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "slow-fake"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.reply))])

    def _stream(self, messages, stop=None, run_manager=None, **kwargs) -> Iterator[ChatGenerationChunk]:
        try:
            self.wake.wait(self.first)
            for word in re.findall(r"\S+\s*", self.reply):
                self.said.append(word)
                yield ChatGenerationChunk(message=AIMessageChunk(content=word))
                self.wake.wait(self.gap)
        finally:
            self.closed.set()

