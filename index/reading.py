"""Reading the store back: the answerer's snapshot of the whole index (or of the documents that changed), built
from the rows whose content still matches their document's stored text, and the dense search over chunks."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass

import numpy as np

from index.chroma import CHUNKS, SENTENCES, TERMS, Collections, in_pages, pages
from index.records import Records
from index.snapshot import (
    EMPTY_DIMENSIONS,
    SENTENCE_VECTOR_TYPE,
    ChunkTable,
    SentenceTable,
    Snapshot,
    return_freed_memory,
    runs,
)
from index.spans import Span, content_hash, span_id

log = logging.getLogger(f"citeqa.{__name__}")


def dense_search(collections: Collections, vector: list[float], k: int) -> list[tuple[str, float]]:
    """(chunk id, cosine similarity), best first; StoreUnavailable while a Chroma server is unreachable.
    Only ids and distances are asked for: the answerer has the chunks' text and bounds in its snapshot, and
    Chroma reading 12 documents with their metadata was 4.1 ms of its CPU per question (with them) at 100k."""
    with collections.reachable():  # k past the collection's size gives what there is (no count first: a round trip)
        found = collections[CHUNKS].query(query_embeddings=[vector], n_results=k, include=["distances"])
    return [(chunk_id, 1.0 - distance) for chunk_id, distance in zip(found["ids"][0], found["distances"][0],
                                                                     strict=True)]


def read_snapshot(collections: Collections, records: Records, sources: Collection[str] | None = None,
                  known_words: Collection[str] = ()) -> Snapshot:
    """What the answerer reads: the whole index, or only `sources` and the vocabulary words not in
    `known_words`, for a refresh that re-reads just the documents that changed. Rows whose content does not
    match the stored copy's text (a write cut short, whose copy is written last, or rows left from a replaced
    version) are left out: never a partial document. Rows come PAGE at a time straight into columns: whole
    collections read as Python lists held ~1 GB at 100k.
    """

    def rows(kind: str, include: list[str]) -> Iterator[dict]:
        if sources is None:
            return pages(collections[kind], include)
        return pages(collections[kind], include, {"source": {"$in": sorted(sources)}}) if sources else iter(())

    chunks = [StoredChunk(row_id, meta["source"], meta["start"], meta["end"], meta["paragraph"],
                          meta["content_hash"], meta["sentence_starts"], meta["sentence_ends"])
              for page in rows(CHUNKS, ["metadatas"])
              for row_id, meta in zip(page["ids"], page["metadatas"], strict=True)]
    chunk_sources = {c.source for c in chunks}
    stored = records.texts(chunk_sources)
    texts = {source: stored.get(source, "") for source in chunk_sources}
    whole = sorted((c for c in chunks if c.matches(texts[c.source])), key=lambda c: (c.source, c.start))
    sentences: list[tuple[str, int, int, int]] = []
    vectors, read = [], 0
    for page in rows(SENTENCES, ["metadatas", "embeddings"]):
        kept = []
        for i, (row_id, meta) in enumerate(zip(page["ids"], page["metadatas"], strict=True)):
            span = Span(meta["source"], meta["start"], meta["end"])
            if span.source in texts and row_id == span_id(span, texts[span.source]):
                sentences.append((span.source, span.start, span.end, meta["paragraph"]))
                kept.append(i)
        if kept:
            vectors.append(np.asarray(page["embeddings"], dtype=np.float32)[kept].astype(SENTENCE_VECTOR_TYPE))
        read += len(page["ids"])
        return_freed_memory()  # each page's floats, before the next page's: the peak stays one page high
    if len(whole) < len(chunks) or len(sentences) < read:
        log.warning("left out %d chunks and %d sentences that do not match their document's stored text",
                    len(chunks) - len(whole), read - len(sentences))
    order = sorted(range(len(sentences)), key=lambda i: sentences[i][:2])
    dimensions = vectors[0].shape[1] if vectors else EMPTY_DIMENSIONS
    sentence_vectors = (np.concatenate(vectors)[order] if vectors
                        else np.zeros((0, dimensions), dtype=SENTENCE_VECTOR_TYPE))
    vocabulary, vocabulary_vectors = [], []
    for page in words(collections, set(known_words)):
        if page["ids"]:
            vocabulary += page["ids"]
            vocabulary_vectors.append(np.asarray(page["embeddings"], dtype=np.float32))
    if not vocabulary_vectors:  # the shape of "no words", as wide as the sentence vectors
        vocabulary_vectors.append(np.zeros((0, dimensions), dtype=np.float32))
    sources = sorted({c.source for c in whole})
    return Snapshot({source: texts[source] for source in sources}, chunk_table(texts, sources, whole),
                    sentence_table(sorted(texts), [sentences[i] for i in order]), sentence_vectors,
                    vocabulary, np.concatenate(vocabulary_vectors))


def words(collections: Collections, known: set[str]) -> Iterator[dict]:
    """Pages of vocabulary words with their vectors: all of them, or those not `known` (ids are read first,
    then only the new words' vectors: re-reading all of them was 1.2 of a 5 s refresh at 30k chunks)."""
    if not known:
        yield from pages(collections[TERMS], ["embeddings"])
        return
    new = [word for page in pages(collections[TERMS], []) for word in page["ids"] if word not in known]
    for page in in_pages(new):
        yield collections[TERMS].get(ids=page, include=["embeddings"])


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk row as Chroma holds it: what `snapshot` checks against the document's text before keeping it."""

    id: str
    source: str
    start: int
    end: int
    paragraph: int
    content_hash: str
    sentence_starts: list[int]
    sentence_ends: list[int]

    def matches(self, text: str) -> bool:
        """Whether its sentences still read, in `text`, what they read when the chunk was made."""
        return self.content_hash == content_hash("\n".join(
            text[s:e] for s, e in zip(self.sentence_starts, self.sentence_ends, strict=True)))


def chunk_table(texts: dict[str, str], sources: list[str], rows: list[StoredChunk]) -> ChunkTable:
    number = {name: i for i, name in enumerate(sources)}
    return ChunkTable(texts, sources, [r.id for r in rows], np.asarray([number[r.source] for r in rows], np.int32),
                      np.asarray([r.start for r in rows], np.int64), np.asarray([r.end for r in rows], np.int64),
                      np.asarray([r.paragraph for r in rows], np.int32), [r.content_hash for r in rows],
                      *runs([r.sentence_starts for r in rows]), runs([r.sentence_ends for r in rows])[1])


def sentence_table(sources: list[str], rows: list[tuple[str, int, int, int]]) -> SentenceTable:
    number = {name: i for i, name in enumerate(sources)}
    return SentenceTable(sources, np.asarray([number[r[0]] for r in rows], np.int32),
                         np.asarray([r[1] for r in rows], np.int64), np.asarray([r[2] for r in rows], np.int64),
                         np.asarray([r[3] for r in rows], np.int32))
