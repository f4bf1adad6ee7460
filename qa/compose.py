"""Makes the answer text from the selected spans only, with `[n]` markers, and their citations: the short answer
first when there is one, then each quote once."""

from __future__ import annotations

from qa.answer import Answer, Citation, ShortAnswer
from qa.select import Selection

SHORT_JOINER = " \u2014 "  # "1,500 — France has 1,500 soldiers in Niger. [1]": the answer first, then where it stands


def compose(selection: Selection, texts: dict[str, str]) -> Answer:
    if not selection.grounded:
        return Answer.abstain(unknown=selection.retrieved.unknown)
    citations = [Citation(n, s.span.source, s.span.start, s.span.end, s.span.text_in(texts[s.span.source]),
                          round(s.score, 3)) for n, s in enumerate(selection.spans, start=1)]
    short = ShortAnswer.of(selection.short, texts) if selection.short else None
    quotes = " ".join(f"{as_answer(c.quote)} [{c.id}]" for c in citations)
    return Answer(f"{short.text}{SHORT_JOINER}{quotes}" if short else quotes, grounded=True, citations=citations,
                  short_answer=short)


def as_answer(quote: str) -> str:
    """A quote read as a statement: a trimmed clause gets its first letter capitalized, nothing else."""
    return quote[:1].upper() + quote[1:] if quote[:1].islower() else quote
