"""Builds retrieval chunks from whole sentences, each with its neighbours for context."""

from index.spans import Chunk, Sentence, Span, content_hash
from index.text import normalize


def content_sentences(sentences: list[Sentence]) -> list[Sentence]:
    return [s for s in sentences if not s.furniture]


def chunk_sentences(text: str, sentences: list[Sentence], size: int, overlap: int) -> list[Chunk]:
    """Windows of `size` consecutive content sentences, neighbours sharing `overlap` sentences.

    Windows cross paragraph breaks on purpose: a quote's speaker is often named in the paragraph before.
    """
    content = content_sentences(sentences)
    stride = max(1, size - overlap)
    starts = range(0, max(1, len(content) - overlap), stride) if len(content) > size else [0]
    return [_window(text, content[i:i + size]) for i in starts if content[i:i + size]]


def _window(text: str, window: list[Sentence]) -> Chunk:
    pieces = [s.span.text_in(text) for s in window]
    first, last = window[0].span, window[-1].span
    return Chunk(
        span=Span(first.source, first.start, last.end),
        paragraph=window[0].paragraph,
        sentences=tuple(s.span for s in window),
        text=normalize(" ".join(pieces)),
        content_hash=content_hash("\n".join(pieces)),
    )
