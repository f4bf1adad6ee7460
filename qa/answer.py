"""What a question becomes: cited spans, and an answer made only of what they say."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

from index.spans import Span

NOT_IN_DOCUMENTS = "The indexed documents do not say."
MAX_UNKNOWN_NAMED = 3  # words an abstention names as used by no document ("quinoa", "flour"); more is a list


@dataclass(frozen=True, slots=True)
class Turn:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Citation:
    id: int
    source: str
    start: int
    end: int
    quote: str
    score: float

    @property
    def span(self) -> Span:
        return Span(self.source, self.start, self.end)


@dataclass(frozen=True, slots=True)
class ShortAnswer:
    """The shortest exact words that answer (a number, a name, a date), inside one of the cited quotes."""

    text: str
    source: str
    start: int
    end: int

    @classmethod
    def of(cls, span: Span, texts: dict[str, str]) -> ShortAnswer:
        return cls(span.text_in(texts.get(span.source, "")), span.source, span.start, span.end)

    def inside(self, citations: list[Citation]) -> bool:
        return any(Span(self.source, self.start, self.end).within(c.span) for c in citations)


@dataclass
class Answer:
    answer: str
    grounded: bool
    citations: list[Citation] = field(default_factory=list)
    mode: str = "extractive"
    timing_ms: dict[str, float] = field(default_factory=dict)
    short_answer: ShortAnswer | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, reply: dict) -> Answer:
        """The answer back from its `to_dict` form (the /api/ask JSON)."""
        short = reply.get("short_answer")
        return cls(reply["answer"], reply["grounded"], [Citation(**c) for c in reply.get("citations", [])],
                   reply.get("mode", "extractive"), dict(reply.get("timing_ms", {})),
                   ShortAnswer(**short) if short else None)

    @classmethod
    def abstain(cls, mode: str = "extractive", unknown: Sequence[str] = ()) -> Answer:
        """The documents do not say; naming the question's words that no document uses, when there are some."""
        named = [f"\u201c{w}\u201d" for w in unknown[:MAX_UNKNOWN_NAMED]]
        listing = f"{', '.join(named[:-1])} or {named[-1]}" if len(named) > 1 else "".join(named)
        return cls(f"{NOT_IN_DOCUMENTS} No document mentions {listing}." if named else NOT_IN_DOCUMENTS,
                   grounded=False, mode=mode)
