"""The `citeqa` command: index, ask, eval, train, feedback, serve."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from lab.split import PARTS
from ui.logs import configure
from ui.settings import Settings

log = logging.getLogger(f"citeqa.{__name__}")

EXAMPLES = """examples:
  citeqa index                       index seeds/ (only what changed)
  citeqa index docs/ --prune         index docs/, dropping files that are gone
  citeqa ask "How many French soldiers are in Niger?"
  citeqa ask "What did he say about Tchiani?" --history chat.json --json
  citeqa eval ../shared/eval/qa-dev.jsonl --docs seeds
  citeqa eval ../shared/train/gum/qa-*.jsonl --docs ../shared/train/gum/docs --split measure --by genre
  citeqa train                       rebuild the shipped reader from ../shared/train
  citeqa feedback export judged.jsonl && citeqa eval judged.jsonl
  citeqa serve --port 7860
  CITEQA_CHROMA_URL=http://127.0.0.1:8000 citeqa serve --workers 2   (over `chroma run`)

settings (environment): CITEQA_DATA_DIR, CITEQA_CHROMA_URL, CITEQA_HOST, CITEQA_PORT, CITEQA_ANSWERER,
  CITEQA_API_KEY, CITEQA_MAX_UPLOAD_MB, CITEQA_SELECTOR (rules or learned)"""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="citeqa", description="Answers questions about documents, citing the "
                                  "exact passages the answer came from.", epilog=EXAMPLES,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("-v", "--verbose", action="store_true", help="log what happens (to stderr)")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    index = commands.add_parser("index", help="index .txt, .md, .html, .pdf and .docx files (default: seeds/)")
    index.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders to index")
    index.add_argument("--rebuild", action="store_true", help="drop the whole index and build it anew")
    index.add_argument("--prune", action="store_true", help="drop indexed files that are not among PATHs")

    ask = commands.add_parser("ask", help="answer one question from the index")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print the /api/ask reply as JSON")
    ask.add_argument("--history", type=Path, metavar="FILE",
                     help='earlier turns as JSON: [{"role": "user"|"assistant", "content": "..."}]')

    evaluate = commands.add_parser("eval", help="score a gold question file (JSON lines)")
    evaluate.add_argument("qa_files", type=Path, nargs="+", metavar="QA.jsonl",
                          help="gold question files (one or more, scored together)")
    evaluate.add_argument("--docs", type=Path, metavar="DIR",
                          help="index DIR into a separate evaluation store first (default: the current index)")
    evaluate.add_argument("--doc", action="append", metavar="NAME",
                          help="only the questions about this document (repeatable), e.g. a measuring split")
    evaluate.add_argument("--split", choices=PARTS, metavar="PART",
                          help="only the questions about documents of this part of the fixed training split: "
                          f"{', '.join(PARTS)} (`citeqa train`'s; measure is never tuned on)")
    evaluate.add_argument("--by", choices=("kind", "genre", "doc"),
                          help="also print a line per question kind, per genre or per document")
    evaluate.add_argument("--show", action="store_true", help="print every answer")

    learn = commands.add_parser(
        "train", help="train the answer reader from labelled questions (hours on 2 cores; minutes with a GPU)",
        description="Builds the reader (a MiniLM cross-encoder with a short-answer head) from SQuAD-style "
        "questions, fits the decision around it (first stage, ranker, when to abstain) across genres, and prints "
        "per-genre figures on documents it never saw. `--reader-from qa/reader` refits the decision alone (~10 "
        "minutes on 2 cores).")
    learn.add_argument("--data", type=Path, default=Path("../shared/train"), metavar="DIR",
                       help="docs/ with qa.jsonl / qa-v1.jsonl, and gum/ (default: ../shared/train)")
    learn.add_argument("--out", type=Path, default=None, metavar="DIR",
                       help="where the reader goes (default: the shipped one, qa/reader)")
    learn.add_argument("--questions", type=int,
                       help="SQuAD learning questions sampled (default: all of them; GUM's are always all taken)")
    learn.add_argument("--seed", type=int, help="random seed (default: the recipe's)")
    learn.add_argument("--lessons-only", type=Path, metavar="FILE",
                       help="write the learning lessons to FILE (.jsonl.gz) and stop: fine-tune them elsewhere "
                       "(a GPU) with `python -m lab.finetune FILE --base DIR --out DIR`")
    learn.add_argument("--reader-from", type=Path, metavar="DIR",
                       help="take the reader `python -m lab.finetune` wrote in DIR; calibrate and measure it")

    feedback = commands.add_parser(
        "feedback", help="the answers users judged (👍/👎 in the chat, POST /api/feedback)",
        description="Judged answers are kept in the data directory. `export` writes them as a gold question file "
        "that `citeqa eval` runs (a marked passage is the answer; a 👎 with neither a marked passage nor a note "
        "that the documents do not answer is listed, not exported); `stats` counts them.")
    feedback_commands = feedback.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    export = feedback_commands.add_parser("export", help="write the judged answers as a gold file (JSON lines)")
    export.add_argument("file", type=Path, metavar="FILE", help="where the gold file goes (`-` for standard output)")
    feedback_commands.add_parser("stats", help="counts per verdict and the share of 👎")

    serve = commands.add_parser("serve", help="start the chat and the REST API")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1, CITEQA_HOST)")
    serve.add_argument("--port", type=int, help="port (default 7860, CITEQA_PORT)")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="worker processes (default 1); more than 1 needs a Chroma server (CITEQA_CHROMA_URL)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure(verbose=args.verbose, serving=args.command == "serve")
    try:
        settings = Settings()
    except ValueError as error:
        return fail(f"bad setting: {error}")
    handler = {"index": run_index, "ask": run_ask, "eval": run_eval, "train": run_train,
               "serve": run_serve, "feedback": run_feedback}[args.command]
    from index.errors import CiteqaError

    try:
        return handler(args, settings)
    except CiteqaError as error:  # every refusal, with its exit status (index/errors.py)
        return fail(str(error), code=error.exit_code)
    except KeyboardInterrupt:
        return 130


def fail(message: str, code: int = 2) -> int:
    print(f"citeqa: error: {message}", file=sys.stderr)
    return code


def run_index(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from index.load import IngestError
    from index.lock import DataDirHeld, holder
    from index.pipeline import Indexer
    from index.store import open_store

    server = None if settings.index.chroma_url else holder(settings.index.data_dir)
    if server is not None:
        if args.rebuild:
            return fail(f"{DataDirHeld(settings.index.data_dir, server)} (a rebuild needs the directory to itself)")
        return index_through(server.url, args, settings)

    bars: list[tqdm] = []

    def progress(total: int):
        bar = tqdm(total=total, desc="embedding", unit="piece", disable=total == 0, file=sys.stderr)
        bars.append(bar)
        return bar.update

    try:
        summary = Indexer(open_store(settings.index)).run(args.paths or [settings.index.seeds_dir],
                                                          rebuild=args.rebuild, prune=args.prune, progress=progress)
    except IngestError as error:  # the batch's context beside each file's reason
        return fail(f"nothing was indexed:\n{error}")
    finally:
        for bar in bars:
            bar.close()
    print(summary.line())
    return 0


def index_through(url: str, args: argparse.Namespace, settings: Settings) -> int:
    """`citeqa index` while a server holds the data directory: the files go through it as uploads, so the server
    that answers is the one that writes (and answers from them at once)."""
    from index.load import IngestError
    from ui.remote import send_documents

    print(f"a citeqa server at {url} holds {settings.index.data_dir}: sending the files through it",
          file=sys.stderr)
    try:
        sent = send_documents(url, args.paths or [settings.index.seeds_dir], settings.server.api_key,
                              prune=args.prune, say=lambda line: print(line, file=sys.stderr))
    except IngestError as error:  # the batch's context beside each file's reason
        return fail(f"nothing was indexed:\n{error}")
    print(sent.line())
    return 0


def run_ask(args: argparse.Namespace, settings: Settings) -> int:
    from service.build import build

    try:
        history = json.loads(args.history.read_text(encoding="utf-8")) if args.history else []
    except (OSError, json.JSONDecodeError) as error:
        return fail(f"cannot read --history {args.history}: {error}")
    answer = build(settings).invoke(args.question, history)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print(answer.answer)
    for c in answer.citations:
        print(f"\n[{c.id}] {c.source} {c.start}-{c.end} (score {c.score:.2f})\n    “{c.quote}”")
    return 0


def run_eval(args: argparse.Namespace, settings: Settings) -> int:
    from index.pipeline import Indexer
    from index.store import open_store
    from lab.evaluate import load_cases, score, separate_store
    from lab.split import genre_of, parts_of
    from service.build import build

    try:
        cases = [c for path in args.qa_files for c in load_cases(path)]
        parts = parts_of([str(c.get("doc", "")) for c in cases]) if args.split else {}
        cases = [{**c, "genre": c.get("genre") or genre_of(str(c.get("doc", "")))} for c in cases
                 if (not args.doc or c.get("doc") in args.doc)
                 and (not args.split or parts.get(Path(str(c.get("doc", ""))).name) == args.split)]
        if not cases:
            return fail("no questions left to score (check --doc / --split)")
        if args.docs:
            settings = separate_store(settings, args.docs)
            store = open_store(settings.index)
            log.info("%s", Indexer(store).run([args.docs], prune=True).line())
            qa = build(settings, store)
        else:
            qa = build(settings)
    except (OSError, ValueError) as error:  # an unreadable or malformed questions file (refusals reach main)
        return fail(str(error))
    report, answers, groups = score(qa, cases, qa.texts, by=args.by)
    if args.show:
        for case, answer in answers:
            print(json.dumps({"id": case.get("id"), "question": case["question"], "reply": answer.to_dict()},
                             ensure_ascii=False))
    for miss in report.misses:
        print(f"miss {miss}")
    for value, group in groups.items():
        print(f"{args.by} {value}: {group.summary()}")
    print(report.summary())
    return 1 if report.not_verbatim else 0


def run_train(args: argparse.Namespace, settings: Settings) -> int:
    from importlib.util import find_spec

    if find_spec("sklearn") is None:  # checked first: training would otherwise stop after its longest step
        return fail("citeqa train needs the train extra (scikit-learn): pip install -e '.[train]' (make setup has it)")
    from lab.finetune import Recipe
    from lab.train import TrainConfig, train
    from qa.reader import READER_DIR

    if not ((args.data / "docs").is_dir() or (args.data / "gum" / "docs").is_dir()):
        return fail(f"no training data in {args.data}: it needs docs/ with qa.jsonl, or gum/ (see ../shared/train)")
    if args.reader_from and not (args.reader_from / "model.onnx").is_file():
        return fail(f"no model.onnx in {args.reader_from}: `python -m lab.finetune` writes one")
    chosen = {k: v for k, v in {"questions": args.questions, "lessons_only": args.lessons_only,
                                "reader_from": args.reader_from}.items() if v is not None}
    if args.seed is not None:
        chosen["recipe"] = Recipe(seed=args.seed)
    try:
        train(TrainConfig(args.data, args.out or READER_DIR, **chosen), settings,
              say=lambda line: print(line, file=sys.stderr, flush=True))
    except (OSError, ValueError) as error:
        return fail(str(error))
    if not args.lessons_only:
        print(f"reader written to {args.out or READER_DIR}")
    return 0


def run_feedback(args: argparse.Namespace, settings: Settings) -> int:
    import sqlite3

    from index.text import counted
    from service.feedback import FEEDBACK_FILE, FeedbackLog, gold_case, stats_line

    log_file = settings.index.data_dir / FEEDBACK_FILE
    try:
        entries = FeedbackLog(log_file).recorded()
    except sqlite3.Error as error:
        return fail(f"cannot read the feedback in {log_file}: {error}")
    if args.feedback_command == "stats":
        print(stats_line(entries))
        return 0
    cases, unexported = [], []
    for entry in entries:
        case = gold_case(entry)
        (cases if case else unexported).append(case or entry)
    lines = "".join(json.dumps(case, ensure_ascii=False) + "\n" for case in cases)
    try:
        if str(args.file) == "-":
            sys.stdout.write(lines)
        else:
            args.file.write_text(lines, encoding="utf-8")
    except OSError as error:
        return fail(f"cannot write {args.file}: {error}")
    for entry in unexported:
        print(f"not exported (👎 with no passage marked and no note that the documents do not answer): "
              f"{entry.id[:12]} {entry.judgement.question!r}", file=sys.stderr)
    where = "" if str(args.file) == "-" else f" to {args.file}"
    print(f"exported {counted(len(cases), 'gold question')}{where}; {len(unexported)} not exported; run: citeqa eval "
          f"{args.file if where else 'FILE'}", file=sys.stderr)
    return 0


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    from ui.server import serve

    if args.workers < 1:
        return fail(f"--workers must be 1 or more, not {args.workers}")
    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    serve(settings.model_copy(update={"server": settings.server.model_copy(update=overrides)}), args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
