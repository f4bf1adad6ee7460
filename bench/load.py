"""Load on a running `citeqa serve`: N clients each asking in a loop; answers/s, latency, and what was shed.

    python bench/load.py --url http://127.0.0.1:7860 --clients 64 --seconds 20
    python bench/load.py --clients 1 --questions ../shared/train/qa.jsonl --doc squad_Construction.txt

Each client sends its next question when the last is answered. A 503 (shed, or the store down) is counted and the
client waits as long as its Retry-After says, as a well-behaved client would; any other status is an error.
Latency percentiles are over the answered (200) requests. Loopback only: it is meant for a server on this machine.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

QUESTIONS = ["How many French soldiers are in Niger?", "Who is the leader of Niger's junta?",
             "When did Wagner come into Mali?", "What is the population of Niger?",
             "Who is France's foreign affairs minister?", "How many American military personnel are in Niger?"]


@dataclass
class Result:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    bad_refusals: int = 0  # 503s without Retry-After or a JSON detail
    errors: Counter = field(default_factory=Counter)  # no HTTP reply at all (connection refused, reset)

    @property
    def shed(self) -> int:
        return self.statuses[503]

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")

    def line(self, clients: int) -> str:
        return (f"clients {clients}: {len(self.latencies) / self.seconds:.1f} answers/s, "
                f"p50 {self.percentile(0.5) * 1000:.0f} ms, p99 {self.percentile(0.99) * 1000:.0f} ms, "
                f"shed {self.shed}, statuses {dict(sorted(self.statuses.items()))}, bad 503s {self.bad_refusals}, "
                f"errors {dict(self.errors)}")


def run(url: str, clients: int, seconds: float | None = None, requests: int | None = None,
        honour_retry_after: bool = True, keep_alive: bool = True, questions: list[str] | None = None) -> Result:
    """`clients` threads asking until `seconds` pass or each has sent `requests` questions. Without `keep_alive`
    each request has a connection of its own (no race with the server closing an idle one)."""
    result, lock = Result(0.0), threading.Lock()
    stop_at = time.monotonic() + seconds if seconds else float("inf")
    asked = questions or QUESTIONS

    def client(number: int) -> None:
        headers = {} if keep_alive else {"Connection": "close"}
        with httpx.Client(base_url=url, timeout=120, headers=headers) as http:
            sent = 0
            while time.monotonic() < stop_at and (requests is None or sent < requests):
                question = asked[(number + sent) % len(asked)]
                started = time.monotonic()
                try:
                    reply = http.post("/api/ask", json={"question": question})
                except httpx.TransportError as error:
                    with lock:
                        result.errors[type(error).__name__] += 1
                    sent += 1
                    continue
                took, sent = time.monotonic() - started, sent + 1
                retry = reply.headers.get("retry-after", "")
                with lock:
                    result.statuses[reply.status_code] += 1
                    if reply.status_code == 200:
                        result.latencies.append(took)
                    elif reply.status_code == 503 and not (retry.isdigit() and reply.json().get("detail")):
                        result.bad_refusals += 1
                if reply.status_code == 503 and honour_retry_after and retry.isdigit():
                    time.sleep(min(int(retry), max(0.0, stop_at - time.monotonic())))

    result.seconds = together(client, clients)
    return result


def together(work: Callable[[int], None], count: int) -> float:
    """`work(0)` … `work(count - 1)` on threads of their own, all at once; the seconds until the last one ends."""
    threads = [threading.Thread(target=work, args=(n,)) for n in range(count)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860")
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--questions", type=Path, metavar="QA.jsonl",
                        help="ask these questions (a gold file, as citeqa eval reads) instead of six about the seed")
    parser.add_argument("--doc", action="append", metavar="NAME", help="only the file's questions about NAME")
    args = parser.parse_args()
    asked = None
    if args.questions:
        cases = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
        asked = [c["question"] for c in cases if not args.doc or c.get("doc") in args.doc]
        if not asked:
            parser.error(f"no questions in {args.questions}" + (f" about {', '.join(args.doc)}" if args.doc else ""))
    httpx.get(f"{args.url}/api/health", timeout=10).raise_for_status()
    for clients in args.clients:
        result = run(args.url, clients, seconds=args.seconds, questions=asked)
        print(result.line(clients), flush=True)


if __name__ == "__main__":
    main()
