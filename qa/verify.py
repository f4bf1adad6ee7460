"""Re-reads every citation from its source; a citation that does not match is dropped and logged."""

from __future__ import annotations

import logging
import re

from qa.model import Answer

log = logging.getLogger(__name__)


def verify(answer: Answer, texts: dict[str, str]) -> Answer:
    kept = []
    for citation in answer.citations:
        text = texts.get(citation.source)
        if text is not None and text[citation.start:citation.end] == citation.quote and citation.quote:
            kept.append(citation)
        else:
            log.error("dropped a citation that is not verbatim: %s [%d, %d)", citation.source, citation.start,
                      citation.end)
    if len(kept) == len(answer.citations):
        return answer
    if not kept:
        return Answer.abstain(answer.mode)
    dropped = {c.id for c in answer.citations} - {c.id for c in kept}
    text = re.sub(r"[^\[\]]*?\[(\d+)\]", lambda m: "" if int(m.group(1)) in dropped else m.group(0),
                  answer.answer).strip()
    return Answer(text, answer.grounded, kept, answer.mode, answer.timing_ms)
