"""Makes the answer text from the selected spans only, with `[n]` markers, and their citations."""

from __future__ import annotations

from qa.answer import Answer, Citation, ShortAnswer
from qa.select import Selection


def compose(selection: Selection, texts: dict[str, str]) -> Answer:
    if not selection.grounded:
        return Answer.abstain()
    citations = [Citation(n, s.span.source, s.span.start, s.span.end, s.span.text_in(texts[s.span.source]),
                          round(s.score, 3)) for n, s in enumerate(selection.spans, start=1)]
    return Answer(" ".join(f"{as_answer(c.quote)} [{c.id}]" for c in citations), grounded=True,
                  citations=citations, short_answer=ShortAnswer.of(selection.short, texts) if selection.short else None)


def as_answer(quote: str) -> str:
    """A quote read as a statement: a trimmed clause gets its first letter capitalized, nothing else."""
    return quote[:1].upper() + quote[1:] if quote[:1].islower() else quote
