"""Questions about something no indexed document mentions, made from labelled ones.

The labelled unanswerable questions (SQuAD 2.0's, GUM's) are near misses, written to share the document's words
("How much did the robot cost?" where the text names the robot, never a cost). A user also asks about what the
documents never mention ("What is the price of quinoa flour?" over news about Niger), and a decision that only ever
saw near misses learns that a question whose rarest words the documents lack is a paraphrase: it answered 77-92% of
such questions on every genre (2026-12-07, out of fold on the decision documents; `docs/reader.md`). Such questions
are made here by swapping an answerable question's rarest words for words no document of its collection uses,
taken from another collection's documents ("How many pitches does The Onion go through at the start of each
week?" → "How many quantities does The Onion go through at the start of each inverted?"). Nothing is chosen by
hand: the rarest words are the ones the collection uses least, the new ones drawn at random with a fixed seed.

`python -m lab.absent QA.jsonl ... --docs DIR --other DIR` writes such questions for `citeqa eval` to score.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from index.text import STOPWORDS, normalize, stem, terms
from lab.split import PARTS, parts_of

# The question's rarest words swapped: its key terms. One left most of the question matching the document it came
# from; two are nearly always the words that say what it is about. Not tuned.
SWAPPED_WORDS = 2
MIN_WORD_CHARS = 5  # words drawn: content words, not "ion" or "ltd"
MIN_WORD_USES = 3  # ... written in lower case this often in the other collection: words, not typos or names
# Made questions per labelled unanswerable one in each genre: a third of a user's unanswerable questions are taken to
# be about something the documents never mention, the rest near misses (an assumption, not measured). Chosen while
# one model learned both kinds (out of fold on the decision documents, a half, 1.0 here, kept less of the near
# misses' abstention, 0.333 against 0.427, for more of the absent ones', 0.745 against 0.726); the "about" check that
# learns them now has a threshold of its own (`lab.train.ABOUT_FALSE_ABSTAIN`).
ABSENT_PER_UNANSWERABLE = 0.5
SEED = 13
KIND = "absent"  # the made questions' `kind` (`citeqa eval --by kind` prints them on a line of their own)
# A lower-case word standing alone: not "wouldn" of "wouldn't", nor "yan" of "Cheuk-yan".
_LOWER_WORD = re.compile(r"(?<![\w'\u2019-])[a-z][a-z]+\b(?![-'\u2019])")


def word_uses(texts: Iterable[str]) -> Counter[str]:
    """How often the texts use each term (`index.text.terms`: stems, as every comparison here makes them)."""
    return Counter(t for text in texts for t in terms(text))


def absent_words(other_texts: Iterable[str], uses: Counter[str]) -> list[str]:
    """Content words of `other_texts` whose stem the collection never uses, sorted (the order random draws come
    from). Only words written in lower case: common words, not names."""
    seen = Counter(w for text in other_texts for w in _LOWER_WORD.findall(normalize(text))
                   if len(w) >= MIN_WORD_CHARS and w not in STOPWORDS)
    return sorted(w for w, n in seen.items() if n >= MIN_WORD_USES and not uses.get(stem(w)))


def about_nothing(question: dict, pool: list[str], uses: Counter[str], rng: random.Random) -> dict | None:
    """The question with its SWAPPED_WORDS rarest lower-case content words replaced by words from `pool`, labelled
    unanswerable; None for a follow-up (its history is about the document) or a question with too few such words."""
    if question.get("history") or not pool:
        return None
    text = question["question"]
    content = [m for m in _LOWER_WORD.finditer(text) if m.group() not in STOPWORDS and len(m.group()) > 2]
    if len(content) < SWAPPED_WORDS:
        return None
    rarest = sorted(content, key=lambda m: (uses.get(stem(m.group()), 0), m.start()))[:SWAPPED_WORDS]
    for match in sorted(rarest, key=lambda m: -m.start()):  # from the end, so that earlier offsets hold
        text = text[: match.start()] + rng.choice(pool) + text[match.end():]
    return {**question, "id": f"{question.get('id', '')}-{KIND}", "question": text, "unanswerable": True,
            "answers": [], "answer_spans": [], "evidence": [], "kind": KIND, "made_from": question["question"]}


def absent_questions(answerable: list[dict], wanted: dict[str, int], texts: Iterable[str],
                     other_texts: Iterable[str], seed: int = SEED) -> list[dict]:
    """`wanted[genre]` made questions per genre, each from a different answerable question of that genre (`genre`,
    "" when untagged) drawn at random; `texts` are the collection's documents, `other_texts` another's."""
    uses = word_uses(texts)
    pool = absent_words(other_texts, uses)
    rng = random.Random(seed)
    made: list[dict] = []
    for genre, count in sorted(wanted.items()):
        sources = [q for q in answerable if q.get("genre", "") == genre]
        rng.shuffle(sources)
        variants = (about_nothing(q, pool, uses, rng) for q in sources)
        made += [v for v in variants if v is not None][:count]
    return made


def wanted_for(questions: list[dict], share: float = ABSENT_PER_UNANSWERABLE) -> dict[str, int]:
    """How many made questions each genre gets: `share` per labelled unanswerable question."""
    unanswerable = Counter(q.get("genre", "") for q in questions if q.get("unanswerable"))
    return {genre: round(share * unanswerable[genre]) for genre in {q.get("genre", "") for q in questions}}


def one_per_answerable(questions: list[dict]) -> dict[str, int]:
    """As many made questions in each genre as it has answerable ones: what the measuring figures score."""
    return dict(Counter(q.get("genre", "") for q in questions if not q.get("unanswerable")))


def texts_of(folder: Path) -> list[str]:
    return [path.read_text(encoding="utf-8", errors="replace") for path in sorted(folder.rglob("*.txt"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.absent", description=(
        "Write questions about something no document mentions, made from the answerable questions of gold files "
        "(one per answerable question), for `citeqa eval` to score: every one of them should abstain."))
    parser.add_argument("qa", nargs="+", type=Path, metavar="QA.jsonl", help="gold question files")
    parser.add_argument("--docs", type=Path, required=True, help="the documents the questions are about")
    parser.add_argument("--other", type=Path, required=True,
                        help="other documents, whose words (never used in --docs) replace the questions' rarest")
    parser.add_argument("--doc", action="append", default=[], help="only questions about this document (repeatable)")
    parser.add_argument("--split", choices=PARTS, help="only questions about documents of this part of `citeqa "
                        "train`'s split (measure: never learned from nor tuned on)")
    args = parser.parse_args(argv)
    questions = [json.loads(line) for path in args.qa for line in path.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    parts = parts_of(sorted({q.get("doc", "") for q in questions}))
    questions = [q for q in questions if (not args.doc or q.get("doc") in args.doc)
                 and (not args.split or parts.get(q.get("doc", "")) == args.split)]
    answerable = [q for q in questions if not q.get("unanswerable") and (q.get("answers") or q.get("answer_spans"))]
    made = absent_questions(answerable, one_per_answerable(answerable), texts_of(args.docs), texts_of(args.other))
    for question in made:
        sys.stdout.write(json.dumps(question, ensure_ascii=False) + "\n")
    print(f"{len(made)} questions made from {len(answerable)} answerable ones", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
