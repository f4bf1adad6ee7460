"""Several workers over one Chroma server, and documents indexed by another process answered without a restart."""

from __future__ import annotations

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
