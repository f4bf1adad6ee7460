"""Several workers over one Chroma server, and documents indexed by another process answered without a restart."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import SEEDS, free_port, running

CITEQA = str(Path(sys.executable).parent / "citeqa")
FRESH_WITHIN_S = 30  # generous on a busy 2-core machine: a look each second, then the index is re-read
NEW_DOC = ("The Quillon observatory on Mount Harrow was finished in 1911 by the engineer Ada Brunel. "
           "Its dome is 14 metres wide.\n")
NEW_QUESTION = {"question": "Who finished the Quillon observatory?"}


@pytest.fixture
def env(tmp_path, chroma_url) -> dict[str, str]:
    return {**os.environ, "CITEQA_DATA_DIR": str(tmp_path / "data"), "CITEQA_CHROMA_URL": chroma_url,
            "CITEQA_COLLECTION": f"w{os.urandom(4).hex()}"}


def index(env: dict[str, str], *paths: Path) -> None:
    done = subprocess.run([CITEQA, "index", *map(str, paths)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_workers_need_a_chroma_server(tmp_path):
    env = {**os.environ, "CITEQA_DATA_DIR": str(tmp_path / "data")}
    env.pop("CITEQA_CHROMA_URL", None)
    done = subprocess.run([CITEQA, "serve", "--workers", "2"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "needs a Chroma server (CITEQA_CHROMA_URL)" in done.stderr
    assert "Traceback" not in done.stderr


def ask(url: str, question: dict) -> dict:
    """On a new connection each time: the kernel spreads new connections over the workers."""
    with httpx.Client(timeout=60) as client:
        reply = client.post(f"{url}/ask", json=question)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_two_workers_answer_and_pick_up_documents_indexed_by_another_process(env, tmp_path):
    index(env, SEEDS)
    port, log = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}/api"
    command = [CITEQA, "serve", "--workers", "2", "--port", str(port)]
    with log.open("w") as stderr, running(command, f"{url}/health", 180, env=env, stderr=stderr):
        deadline = time.monotonic() + 60
        while log.read_text(encoding="utf-8").count(" ready") < 2:  # each worker logs when it takes requests
            assert time.monotonic() < deadline, log.read_text(encoding="utf-8")
            time.sleep(0.2)
        for _ in range(8):
            assert "1,500" in ask(url, {"question": "How many French soldiers are in Niger?"})["answer"]
        assert ask(url, NEW_QUESTION)["grounded"] is False

        folder = tmp_path / "more"
        folder.mkdir()
        (folder / "observatory.txt").write_text(NEW_DOC, encoding="utf-8")
        index(env, folder)  # another process; the servers are not told
        deadline, in_a_row = time.monotonic() + FRESH_WITHIN_S, 0
        while in_a_row < 8:  # eight grounded answers in a row: every worker answers from the new index
            assert time.monotonic() < deadline, "a worker still answered from the old index"
            body = ask(url, NEW_QUESTION)
            in_a_row = in_a_row + 1 if body["grounded"] else 0
            if body["grounded"]:
                assert body["citations"][0]["source"] == "observatory.txt" and "Ada Brunel" in body["answer"]
            else:
                time.sleep(0.2)
        sources = {s["source"] for s in httpx.get(f"{url}/sources", timeout=30).json()}
        assert sources == {"niger-junta-wagner.txt", "observatory.txt"}
    assert "the index changed on disk" in log.read_text(encoding="utf-8")


def answered_within(url: str, question: dict, grounded: bool) -> float:
    """Seconds until `url` answers `question` grounded (or not), asking every 0.2 s; fails past FRESH_WITHIN_S."""
    started = time.monotonic()
    while ask(url, question)["grounded"] is not grounded:
        assert time.monotonic() - started < FRESH_WITHIN_S, f"{url} never saw the change"
        time.sleep(0.2)
    return time.monotonic() - started


def test_two_servers_with_their_own_data_directories_share_one_chroma_server(env, tmp_path):
    """Two app servers as on two machines (each its own data directory; only the Chroma server is shared): an
    upload through one is answered by the other, and a delete through the other is gone from the first."""
    index(env, SEEDS)
    with contextlib.ExitStack() as servers:
        urls = []
        for name in ("one", "two"):
            port = free_port()
            urls.append(f"http://127.0.0.1:{port}/api")
            servers.enter_context(running([CITEQA, "serve", "--port", str(port)], f"{urls[-1]}/health", 180,
                                          env={**env, "CITEQA_DATA_DIR": str(tmp_path / name)}))
        one, two = urls
        assert "1,500" in ask(two, {"question": "How many French soldiers are in Niger?"})["answer"]
        assert ask(two, NEW_QUESTION)["grounded"] is False
        sent = httpx.post(f"{one}/documents", files=[("file", ("observatory.txt", NEW_DOC.encode()))], timeout=120)
        assert sent.status_code == 201
        answered_within(two, NEW_QUESTION, grounded=True)
        cited = ask(two, NEW_QUESTION)
        assert cited["citations"][0]["source"] == "observatory.txt" and "Ada Brunel" in cited["answer"]
        text = httpx.get(f"{two}/sources/observatory.txt", timeout=30).json()["text"]
        assert text[cited["citations"][0]["start"]:cited["citations"][0]["end"]] == cited["citations"][0]["quote"]
        assert httpx.delete(f"{two}/documents/observatory.txt", timeout=60).status_code == 204
        answered_within(one, NEW_QUESTION, grounded=False)
        assert {s["source"] for s in httpx.get(f"{one}/sources", timeout=30).json()} == {"niger-junta-wagner.txt"}
