"""Judgements of answers (👍/👎, the passage that was right) kept durably, and turned into a gold file that
`citeqa eval` runs: every judgement a user makes is one more question the product can measure itself on."""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

FEEDBACK_FILE = "feedback.sqlite3"  # in the data directory, beside the index; survives restarts and rebuilds
# Workers of one server write to the same file: a writer waits this long for another's transaction (a few ms each)
# before giving up with an error rather than losing the judgement silently.
BUSY_TIMEOUT_S = 10.0
# A 👎 whose note says the documents hold no answer becomes an expected abstention; any other 👎 without a marked
# passage says only that the answer was wrong, not what is right, and is listed, not exported. One row per wording.
NOT_ANSWERED_NOTES: tuple[tuple[str, str], ...] = (
    (r"\bnot (?:in|answered (?:in|by)) (?:the|these|this|any) (?:documents?|texts?|articles?|sources?|files?)\b",
     "It is not in the documents."),
    (r"\b(?:documents?|texts?|articles?|sources?|files?) (?:do(?:es)?(?: not|n'?t)|never) "
     r"(?:say|answer|mention|cover|tell)", "The article doesn't say that."),
    (r"\bno answer\b", "There is no answer in these files."),
    (r"\bshould (?:have )?(?:abstained|abstain|said (?:it|they) (?:do(?:es)?n'?t|do(?:es)? not) (?:say|know))",
     "It should have abstained."),
)
NOT_ANSWERED = re.compile("|".join(f"(?:{pattern})" for pattern, _ in NOT_ANSWERED_NOTES), re.IGNORECASE)
SCHEMA = """CREATE TABLE IF NOT EXISTS feedback (
  id TEXT PRIMARY KEY, created TEXT NOT NULL, question TEXT NOT NULL, history TEXT NOT NULL, reply TEXT NOT NULL,
  verdict TEXT NOT NULL CHECK (verdict IN ('up', 'down')), source TEXT, start INTEGER, "end" INTEGER,
  passage TEXT, note TEXT NOT NULL)"""


@dataclass(frozen=True, slots=True)
class Marked:
    """The passage a user marked as the right one: exact offsets into an indexed document, and its text then."""

    source: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Judgement:
    question: str
    reply: dict  # the /api/ask reply that was judged
    verdict: Literal["up", "down"]
    history: list[dict] = field(default_factory=list)
    correct: Marked | None = None
    note: str = ""

    @property
    def says_not_answered(self) -> bool:
        return bool(NOT_ANSWERED.search(self.note))


@dataclass(frozen=True)
class Recorded:
    id: str
    created: str
    judgement: Judgement


def mark(source: str, start: int, end: int, texts: dict[str, str]) -> Marked | None:
    """The marked passage if (source, start, end) is a non-empty span of an indexed document, else None."""
    text = texts.get(source)
    if text is None or not 0 <= start < end <= len(text) or not text[start:end].strip():
        return None
    return Marked(source, start, end, text[start:end])


class FeedbackLog:
    """Judgements in one SQLite file; each is committed (and synced) before `add` returns its id."""

    def __init__(self, path: Path):
        self.path = path

    @contextmanager
    def _connected(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)) as connection:
            connection.execute("PRAGMA journal_mode=WAL")  # readers (stats, export) never block a writer
            connection.execute("PRAGMA synchronous=FULL")  # a judgement acknowledged with 201 survives a crash
            connection.execute(SCHEMA)
            with connection:
                yield connection

    def add(self, judgement: Judgement) -> str:
        identifier = uuid.uuid4().hex
        marked = judgement.correct
        with self._connected() as db:
            db.execute("INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (identifier, datetime.now(UTC).isoformat(timespec="seconds"), judgement.question,
                        json.dumps(judgement.history, ensure_ascii=False),
                        json.dumps(judgement.reply, ensure_ascii=False), judgement.verdict,
                        *((marked.source, marked.start, marked.end, marked.text) if marked else (None,) * 4),
                        judgement.note))
        return identifier

    def recorded(self) -> list[Recorded]:
        """Every judgement, oldest first (none when nothing was ever judged)."""
        if not self.path.exists():
            return []
        with self._connected() as db:
            rows = db.execute('SELECT id, created, question, history, reply, verdict, source, start, "end", '
                              "passage, note FROM feedback ORDER BY created, rowid").fetchall()
        return [Recorded(i, created, Judgement(question, json.loads(reply), verdict, json.loads(history),
                                               Marked(source, start, end, passage) if source is not None else None,
                                               note))
                for i, created, question, history, reply, verdict, source, start, end, passage, note in rows]


def gold_case(entry: Recorded) -> dict | None:
    """The judgement as a gold question in `citeqa eval`'s format, or None when it does not say what is right (a
    👎 with neither a marked passage nor a note that the documents do not answer).

    | judgement                                  | gold question                                        |
    |--------------------------------------------|------------------------------------------------------|
    | a marked passage (either verdict)          | answered by that passage: its text, its offsets      |
    | 👍 on a grounded reply                     | answered as it was: short answer or first quote      |
    | 👍 on "not in the documents"               | expected abstention                                  |
    | 👎, note "not in the documents"            | expected abstention                                  |
    | 👎 with neither                            | not exported (listed by `citeqa feedback export`)    |
    """
    judged, reply = entry.judgement, entry.judgement.reply
    case = {"id": f"feedback-{entry.id[:12]}", "kind": "feedback", "verdict": judged.verdict,
            "question": judged.question, "history": judged.history}
    if judged.correct:
        marked = judged.correct
        return {**case, "doc": marked.source, "answers": [marked.text], "evidence": [marked.text],
                "evidence_spans": [[marked.start, marked.end]]}
    citations = reply.get("citations") or []
    if judged.verdict == "up" and reply.get("grounded") and citations:
        source = citations[0]["source"]
        short = reply.get("short_answer")
        quotes = [c for c in citations if c["source"] == source]
        return {**case, "doc": source, "answers": [short["text"] if short else quotes[0]["quote"]],
                "evidence": [c["quote"] for c in quotes], "evidence_spans": [[c["start"], c["end"]] for c in quotes]}
    if (judged.verdict == "up" and not reply.get("grounded")) or judged.says_not_answered:
        return {**case, "answers": [], "evidence": [], "evidence_spans": [], "unanswerable": True}
    return None


def stats_line(entries: list[Recorded]) -> str:
    """Counts per verdict, the share of 👎, and how many judgements become gold questions."""
    verdicts = Counter(e.judgement.verdict for e in entries)
    marked = sum(e.judgement.correct is not None for e in entries)
    exportable = sum(gold_case(e) is not None for e in entries)
    down_share = verdicts["down"] / len(entries) if entries else 0.0
    return (f"judged {len(entries)}: up {verdicts['up']} down {verdicts['down']} (down {down_share:.0%}); "
            f"passages marked {marked}; gold questions {exportable}")
