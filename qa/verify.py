"""Re-reads every citation from its source; a citation that does not match is dropped and logged."""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from index.text import terms, words
from qa.answer import Answer
from qa.question import names

log = logging.getLogger(f"citeqa.{__name__}")
SUPPORTED_SHARE = 0.75  # of a generated answer's words beyond the question that its citations must hold


def verify(answer: Answer, texts: dict[str, str]) -> Answer:
    """The answer with only verbatim citations, and its short answer only when verbatim and inside one of them."""
    kept = []
    for citation in answer.citations:
        text = texts.get(citation.source)
        if text is not None and text[citation.start:citation.end] == citation.quote and citation.quote:
            kept.append(citation)
        else:
            log.error("dropped a citation that is not verbatim: %s [%d, %d)", citation.source, citation.start,
                      citation.end)
    short = answer.short_answer
    if short is not None and not (short.text and texts.get(short.source, "")[short.start:short.end] == short.text
                                  and short.inside(kept)):
        log.error("dropped a short answer that is not verbatim inside a citation: %s [%d, %d)", short.source,
                  short.start, short.end)
        short = None
    if len(kept) == len(answer.citations):
        return answer if short is answer.short_answer else replace(answer, short_answer=short)
    if not kept:
        return Answer.abstain(answer.mode)
    dropped = {c.id for c in answer.citations} - {c.id for c in kept}
    text = re.sub(r"[^\[\]]*?\[(\d+)\]", lambda m: "" if int(m.group(1)) in dropped else m.group(0),
                  answer.answer).strip()
    return Answer(text, answer.grounded, kept, answer.mode, answer.timing_ms, short)


def supported(answer: str, quotes: list[str], question: str) -> bool:
    """Whether an answer's names, numbers and key words all stand in its cited quotes (or the question).

    A generated answer may paraphrase, but it may not add a fact: a number or a name that no cited sentence
    holds, or words beyond the question's own that the sentences mostly do not use. An answer that only
    restates the question says nothing and is not supported either.
    """
    body = re.sub(r"\[\d+\]", " ", answer)
    evidence = " ".join(quotes)
    known = set(words(evidence)) | set(words(question))
    facts = [w for w in words(body) if any(ch.isdigit() for ch in w)]
    facts += [w for name in names(body) for w in words(name)]
    if any(fact not in known for fact in facts):
        return False
    asked = set(terms(question))
    novel = [t for t in terms(body) if t not in asked]
    return bool(novel) and sum(t in set(terms(evidence)) for t in novel) / len(novel) >= SUPPORTED_SHARE
