"""The labelled data split by document, once and for all: what `citeqa train` learns from, calibrates on, and
measures on. Nothing is ever learned from or tuned on a measuring document.

Two collections (`../shared/train`): the SQuAD articles (`docs/`, `qa.jsonl`, `qa-v1.jsonl`), and GUM's news,
interviews, biographies and travel guides (`gum/docs/`, `gum/qa-<genre>.jsonl`), split within each genre so that
every genre has a measuring and a calibration part.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Part = Literal["measure", "calibrate", "learn"]
PARTS: tuple[Part, ...] = ("measure", "calibrate", "learn")

# SQuAD: the first eight SQuAD 2.0 articles in sha1(file name) order (no article was looked at), fixed long ago.
SQUAD_MEASURE = ("squad_European_Union_law.txt", "squad_Imperialism.txt", "squad_Construction.txt",
                 "squad_Ctenophora.txt", "squad_Civil_disobedience.txt")
SQUAD_CALIBRATE = ("squad_Sky__United_Kingdom_.txt", "squad_Amazon_rainforest.txt", "squad_Jacksonville__Florida.txt")
SQUAD_FILES = ("qa.jsonl", "qa-v1.jsonl")
GUM_FOLDER = "gum"
GUM_GENRES = ("news", "interview", "bio", "voyage")
# GUM, per genre in sha1(file name) order: 30% of the documents to measure (at least 3, so a genre's figure rests on
# ~36 questions), 20% to calibrate (at least 1), the rest to learn from. news 17 → 5/3/9, interview 14 → 4/3/7,
# bio 8 → 3/2/3, voyage 8 → 3/2/3.
GUM_MEASURE_SHARE, GUM_MEASURE_MIN = 0.3, 3
GUM_CALIBRATE_SHARE, GUM_CALIBRATE_MIN = 0.2, 1


@dataclass(frozen=True)
class Collection:
    """Documents indexed together, as a user would, and the questions about them."""

    name: str  # "squad" or "gum"
    docs: Path
    questions: list[dict]  # each with "genre" and "part" added


def digest(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def gum_parts(docs: list[str]) -> dict[str, Part]:
    """Each GUM document's part, within its genre (the file name's prefix)."""
    parts: dict[str, Part] = {}
    for genre in sorted({genre_of(d) for d in docs}):
        ordered = sorted((d for d in docs if genre_of(d) == genre), key=digest)
        measure = max(GUM_MEASURE_MIN, round(GUM_MEASURE_SHARE * len(ordered)))
        calibrate = max(GUM_CALIBRATE_MIN, round(GUM_CALIBRATE_SHARE * len(ordered)))
        for i, doc in enumerate(ordered):
            parts[doc] = "measure" if i < measure else "calibrate" if i < measure + calibrate else "learn"
    return parts


def squad_part(doc: str, measure: tuple[str, ...] = SQUAD_MEASURE,
               calibrate: tuple[str, ...] = SQUAD_CALIBRATE) -> Part:
    return "measure" if doc in measure else "calibrate" if doc in calibrate else "learn"


def genre_of(doc: str) -> str:
    """A GUM document's genre ("news-afghan.txt" → news); SQuAD articles are "wikipedia"."""
    name = Path(doc).name
    return "wikipedia" if name.startswith("squad_") else name.split("-", 1)[0]


def parts_of(docs: list[str]) -> dict[str, Part]:
    """The part of each labelled document named (SQuAD articles by the fixed lists, the rest as GUM's)."""
    names = sorted({Path(d).name for d in docs})
    parts = gum_parts([n for n in names if genre_of(n) != "wikipedia"])
    return {**parts, **{n: squad_part(n) for n in names if genre_of(n) == "wikipedia"}}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def collections(data: Path, measure: tuple[str, ...] = SQUAD_MEASURE,
                calibrate: tuple[str, ...] = SQUAD_CALIBRATE) -> list[Collection]:
    """The SQuAD and GUM collections found in `data`, every question tagged with its genre and part (`measure` and
    `calibrate` name the SQuAD-style articles of those parts)."""
    found = []
    squad = [q for name in SQUAD_FILES if (data / name).is_file() for q in read_jsonl(data / name)]
    if squad:
        found.append(Collection("squad", data / "docs", [{**q, "genre": "wikipedia",
                                                          "part": squad_part(q["doc"], measure, calibrate)}
                                                         for q in squad]))
    gum = data / GUM_FOLDER
    files = [gum / f"qa-{genre}.jsonl" for genre in GUM_GENRES if (gum / f"qa-{genre}.jsonl").is_file()]
    if files:
        parts = parts_of([p.name for p in (gum / "docs").glob("*.txt")])
        questions = [q for path in files for q in read_jsonl(path)]
        found.append(Collection("gum", gum / "docs", [{**q, "genre": genre_of(q["doc"]), "part": parts[q["doc"]]}
                                                       for q in questions]))
    if not found:
        raise FileNotFoundError(f"no labelled questions in {data} ({', '.join(SQUAD_FILES)} or {GUM_FOLDER}/)")
    return found
