"""Cold start: seconds from starting `citeqa serve` to its first answer over HTTP, and to its chat page, on a freshly
indexed folder.

    python bench/coldstart.py                      # seeds/, 3 starts
    python bench/coldstart.py --docs DIR --runs 5

Each run starts a new server process on the same index (indexed once, first) and asks one question every 0.05 s
until one is answered; the figure includes Python's start, every import, loading the index and models, and the
first answer. Then it asks for the chat page (`/`), which the server holds until the chat has loaded (Gradio loads
after the API takes requests). Loopback only.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

CITEQA = str(Path(sys.executable).parent / "citeqa")
QUESTION = {"question": "How many French soldiers are in Niger?"}
GIVE_UP_S = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_answer(env: dict[str, str]) -> tuple[float, float]:
    """Seconds to the first answer, and to the chat page."""
    port = free_port()
    started = time.monotonic()
    server = subprocess.Popen([CITEQA, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - started < GIVE_UP_S:
            try:
                if httpx.post(f"http://127.0.0.1:{port}/api/ask", json=QUESTION, timeout=30).status_code == 200:
                    answered = time.monotonic() - started
                    httpx.get(f"http://127.0.0.1:{port}/", timeout=GIVE_UP_S).raise_for_status()
                    return answered, time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"no answer within {GIVE_UP_S} s")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=Path, default=Path("seeds"), help="folder to index (default: seeds/)")
    parser.add_argument("--runs", type=int, default=3, help="server starts to time (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "CITEQA_DATA_DIR": data, "HF_HUB_OFFLINE": "1"}
        subprocess.run([CITEQA, "index", str(args.docs)], env=env, check=True, capture_output=True)
        answers, pages = zip(*(first_answer(env) for _ in range(args.runs)), strict=True)
    for what, times in (("first answer", answers), ("chat page", pages)):
        print(f"cold start to {what}: median {statistics.median(times):.2f} s "
              f"(runs: {', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
