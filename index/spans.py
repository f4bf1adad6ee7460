"""The data model every layer speaks: spans of a source text and the chunks built from them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open range `[start, end)` of code points in one source's text."""

    source: str
    start: int
    end: int

    def text_in(self, text: str) -> str:
        return text[self.start:self.end]

    def within(self, other: Span) -> bool:
        """Whether this span lies wholly inside `other` (same source)."""
        return self.source == other.source and other.start <= self.start and self.end <= other.end


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence of a source: where it is, its paragraph, and whether it is page furniture."""

    span: Span
    paragraph: int
    furniture: bool = False


@dataclass(frozen=True, slots=True)
class SourceText:
    """A loaded file: its name relative to the indexed folder and its full UTF-8 text."""

    source: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Chunk:
    """Neighbouring sentences retrieved together; `text` is the normalized search text, not a slice."""

    span: Span
    paragraph: int
    sentences: tuple[Span, ...]
    text: str
    content_hash: str = field(default="")

    @property
    def id(self) -> str:
        return stable_id(self.span, self.content_hash)


def stable_id(span: Span, content_hash: str) -> str:
    """Ids derive from where a piece is and what it says, so re-indexing unchanged text changes nothing."""
    key = f"{span.source}\0{span.start}\0{span.end}\0{content_hash}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def span_id(span: Span, text: str) -> str:
    """A sentence row's id: where it is in `text` and what it says there."""
    return stable_id(span, content_hash(span.text_in(text)))
