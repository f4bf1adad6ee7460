"""`make bench`: citeqa at 1k, 10k and 100k chunks over a real `chroma run` server, beside a tutorial-style peer.

    python bench/scale.py --sizes 1000 10000 100000 --embedding static --out bench/results-static.md

For each size it generates a corpus (deterministic: runs of consecutive sentences of ../shared/train/docs, each run
from a different starting point, so every chunk is distinct and the SQuAD questions about its article answerable),
indexes it with `citeqa index` into a fresh collection, and measures:
- indexing: chunks/s end to end (the bench corpus repeats sentences across files, which the index run embeds once;
  unique text is slower: see docs/scale.md), the index command's peak RSS;
- answering in process, citeqa's extractive chain and the peer (a dense top-1 LangChain retriever over the same
  Chroma chunks, the usual tutorial pipeline) on the same questions: p50/p95 latency, answers/s with 1 and 8 threads;
- over HTTP: `citeqa serve` start-up (to a healthy /api/health) and RSS after the questions, answers/s with 1 and 8
  clients, for 1 and 2 workers.
Latencies are client-side. Everything runs on this machine; nothing else should be running.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import run as load  # noqa: E402
from bench.load import together  # noqa: E402

BIN = Path(sys.executable).parent
RUN_SENTENCES = 40  # sentences per generated file: about 19 chunks of 4 sentences sharing 2
QUESTIONS = 200  # asked one at a time for the latency percentiles
LOAD_SECONDS = 10.0  # per answers/s figure
# Asked over HTTP before measuring, by 8 clients so that every worker answers some: in one run the 1k row's first
# server answered one client at p50 24.7 ms and the next (two workers, same questions) at 14.3 ms.
WARM_UP_SECONDS = 3.0
SEED = 13
# --embedding: the value of CITEQA_EMBEDDING_MODEL (None: unset, the default MiniLM)
EMBEDDINGS = {"minilm": None, "static": "static"}


@dataclass
class Row:
    size: int
    chunks: int = 0
    index_s: float = 0.0
    index_rss_mb: float = 0.0
    figures: dict[str, float] = field(default_factory=dict)


def generate(data: Path, target_chunks: int, folder: Path) -> list[str]:
    """Files of consecutive content sentences from the training articles; returns the articles' questions."""
    from index.segment import sentences

    rng = random.Random(SEED)
    articles = {}
    for path in sorted((data / "docs").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        articles[path.name] = [text[s.span.start:s.span.end] for s in sentences(text, path.name) if not s.furniture]
    names = sorted(n for n, found in articles.items() if len(found) > RUN_SENTENCES)
    folder.mkdir(parents=True)
    files = max(1, round(target_chunks / ((RUN_SENTENCES - 2) / 2)))
    for number in range(files):
        name = names[number % len(names)]
        found = articles[name]
        start = rng.randrange(0, len(found) - RUN_SENTENCES)
        (folder / f"{Path(name).stem}-{number:05d}.txt").write_text(
            "\n\n".join(found[start:start + RUN_SENTENCES]) + "\n", encoding="utf-8")
    questions = [json.loads(line) for line in (data / "qa.jsonl").read_text(encoding="utf-8").splitlines()]
    asked = [q["question"] for q in questions if q["doc"] in names and not q.get("unanswerable")]
    rng.shuffle(asked)
    return asked[:QUESTIONS]


def peak_rss_mb(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Runs a command; returns its wall seconds, its peak RSS (MB) and its stdout."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *command], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started, int(done.stderr.strip().splitlines()[-1]) / 1024, done.stdout


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn workers), from /proc."""
    total = 0.0
    for proc in [pid, *children(pid)]:
        for line in Path(f"/proc/{proc}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def children(pid: int) -> list[int]:
    try:
        found = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return found + [g for c in found for g in children(c)]


def timed(ask: Callable[[str], object], questions: list[str]) -> tuple[float, float]:
    latencies = []
    for question in questions:
        started = time.perf_counter()
        ask(question)
        latencies.append((time.perf_counter() - started) * 1000)
    ordered = sorted(latencies)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def throughput(ask: Callable[[str], object], questions: list[str], threads: int) -> float:
    """Answers per second with `threads` callers in this process, for LOAD_SECONDS."""
    done, stop_at, lock = [0], time.monotonic() + LOAD_SECONDS, threading.Lock()

    def caller(number: int) -> None:
        sent = number
        while time.monotonic() < stop_at:
            ask(questions[sent % len(questions)])
            sent += threads
            with lock:
                done[0] += 1

    seconds = together(caller, threads)  # first: `done[0] / together(...)` would read the count before any call
    return done[0] / seconds


def serving(env: dict[str, str], workers: int, port: int) -> subprocess.Popen:
    process = subprocess.Popen([str(BIN / "citeqa"), "serve", "--port", str(port), "--workers", str(workers)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("citeqa serve did not start")


def measure(size: int, data: Path, chroma_url: str, work: Path, say: Callable[[str], None]) -> Row:
    from langchain_chroma import Chroma
    from langchain_core.runnables import RunnableLambda

    from index.settings import IndexSettings
    from index.store import open_store
    from qa.chain import CitedQA
    from qa.settings import AnsweringSettings

    row = Row(size)
    corpus, data_dir = work / f"corpus-{size}", work / f"data-{size}"
    questions = generate(data, size, corpus)
    env = {**os.environ, "CITEQA_CHROMA_URL": chroma_url, "CITEQA_DATA_DIR": str(data_dir),
           "CITEQA_COLLECTION": f"bench{size}"}
    seconds, row.index_rss_mb, out = peak_rss_mb([str(BIN / "citeqa"), "index", str(corpus)], env)
    row.chunks = int(out.split(": ")[1].split(" chunks")[0])
    row.index_s = seconds
    say(f"{size}: {out.strip()} ({row.chunks / seconds:.1f} chunks/s, peak RSS {row.index_rss_mb:.0f} MB)")

    settings = IndexSettings(data_dir=data_dir, chroma_url=chroma_url, collection=f"bench{size}")
    store = open_store(settings)
    qa = CitedQA(store, AnsweringSettings())
    peer_store = Chroma(client=store.collections.client, collection_name=f"bench{size}_chunks",
                        embedding_function=store.embeddings)
    peer = peer_store.as_retriever(search_kwargs={"k": 1}) | RunnableLambda(
        lambda found: found[0].page_content if found else "not in the documents")
    for name, ask in (("citeqa", qa.invoke), ("peer", peer.invoke)):
        for question in questions[:5]:
            ask(question)
        row.figures[f"{name} p50 ms"], row.figures[f"{name} p95 ms"] = timed(ask, questions)
        for threads in (1, 8):
            row.figures[f"{name} answers/s {threads}"] = throughput(ask, questions, threads)
    say(f"{size}: in process {json.dumps({k: round(v, 1) for k, v in row.figures.items()})}")
    del qa

    for workers in (1, 2):
        port = free_port()
        started = time.perf_counter()
        process = serving(env, workers, port)
        row.figures[f"serve start s {workers} workers"] = time.perf_counter() - started
        try:
            url = f"http://127.0.0.1:{port}"
            load(url, 8, seconds=WARM_UP_SECONDS, questions=questions)
            for clients in (1, 8):
                result = load(url, clients, seconds=LOAD_SECONDS, questions=questions)
                row.figures[f"http answers/s {clients} clients {workers} workers"] = (
                    len(result.latencies) / result.seconds)
                row.figures[f"http p50 ms {clients} clients {workers} workers"] = result.percentile(0.5) * 1000
            row.figures[f"serve RSS MB {workers} workers"] = rss_mb(process.pid)
        finally:
            process.terminate()
            process.wait(30)
    served = {k: round(v, 1) for k, v in row.figures.items() if "http" in k or "RSS" in k}
    say(f"{size}: over HTTP {json.dumps(served)}")
    return row


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def table(rows: list[Row]) -> str:
    base = rows[0].figures
    lines = ["| chunks | index chunks/s | index peak RSS MB | citeqa p50 / p95 ms | peer p50 / p95 ms "
             "| citeqa / peer p50 | citeqa answers/s 1 · 8 threads | peer answers/s 1 · 8 "
             "| citeqa / peer answers/s (8) "
             "| p50 vs first size | HTTP answers/s 8 clients, 1 · 2 workers | serve RSS MB (1 worker) "
             "| serve start-up s (1 worker) |",
             "|" + "---|" * 13]
    for row in rows:
        f = row.figures
        lines.append(
            f"| {row.chunks:,} | {row.chunks / row.index_s:.1f} | {row.index_rss_mb:.0f} "
            f"| {f['citeqa p50 ms']:.1f} / {f['citeqa p95 ms']:.1f} | {f['peer p50 ms']:.1f} / {f['peer p95 ms']:.1f} "
            f"| {f['citeqa p50 ms'] / f['peer p50 ms']:.2f}x "
            f"| {f['citeqa answers/s 1']:.1f} · {f['citeqa answers/s 8']:.1f} "
            f"| {f['peer answers/s 1']:.1f} · {f['peer answers/s 8']:.1f} "
            f"| {f['citeqa answers/s 8'] / f['peer answers/s 8']:.2f}x "
            f"| {f['citeqa p50 ms'] / base['citeqa p50 ms']:.2f}x "
            f"| {f['http answers/s 8 clients 1 workers']:.1f} · {f['http answers/s 8 clients 2 workers']:.1f} "
            f"| {f['serve RSS MB 1 workers']:.0f} | {f['serve start s 1 workers']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000], metavar="CHUNKS")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "train")
    parser.add_argument("--embedding", choices=sorted(EMBEDDINGS), default="minilm",
                        help="the embedding model citeqa and the peer index and ask with (CITEQA_EMBEDDING_MODEL)")
    parser.add_argument("--out", type=Path, help="where to write the table (default: bench/results-EMBEDDING.md)")
    args = parser.parse_args()
    args.out = args.out or ROOT / "bench" / f"results-{args.embedding}.md"
    os.environ.pop("CITEQA_EMBEDDING_MODEL", None)
    if EMBEDDINGS[args.embedding]:
        os.environ["CITEQA_EMBEDDING_MODEL"] = EMBEDDINGS[args.embedding]
    if not (args.data / "docs").is_dir():
        sys.exit(f"bench: no corpus source in {args.data} (it needs docs/ and qa.jsonl, as ../shared/train)")
    work = Path(tempfile.mkdtemp(prefix="citeqa-bench-"))
    port = free_port()
    chroma = subprocess.Popen([str(BIN / "chroma"), "run", "--path", str(work / "chroma"), "--host", "127.0.0.1",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{url}/api/v2/heartbeat", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        rows: list[Row] = []
        for size in args.sizes:  # the table is written after each size: a long run cut short keeps what it measured
            rows.append(measure(size, args.data, url, work, say))
            report = (f"# citeqa bench ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs; `make bench`)\n\n"
                      f"Embedding: {args.embedding} (both citeqa and the peer). "
                      f"Extractive answerer, rules selector, one `chroma run` server; peer: dense top-1 LangChain "
                      f"retriever over the same Chroma chunks. {QUESTIONS} SQuAD questions about the corpus's "
                      f"articles; answers/s over {LOAD_SECONDS:.0f} s.\n\n{table(rows)}\n")
            args.out.write_text(report, encoding="utf-8")
    finally:
        chroma.terminate()
        chroma.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    print(report)


if __name__ == "__main__":
    main()
