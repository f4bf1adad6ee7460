"""What the answerer reads from an index, held as numpy columns rather than Python objects.

At 100k chunks the object form (a `Sentence` with its `Span` per sentence, a `Chunk` with its search text per
chunk, each with its own ints and strings) was most of a serving process's 3 GB. Columns cost tens of bytes a row;
the few rows a question touches are read back as the data model's `Sentence` and `Chunk`.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from index.spans import Chunk, Sentence, Span
from index.text import normalize

EMPTY_DIMENSIONS = 384  # the shape of "no vectors yet"; any real vectors bring their own
# Sentence vectors in half precision: half the memory, and a cosine moves by less than 0.001 (unit vectors of 256 or
# 384 dimensions; float16 keeps 11 bits). Only the few rows of a question's chunks are multiplied, after conversion.
SENTENCE_VECTOR_TYPE = np.float16
ID_TYPE = "S40"  # a chunk id: 40 hex digits of sha1 (`stable_id`)


def _keys(source: np.ndarray, start: np.ndarray) -> np.ndarray:
    """One sortable int64 per (source number, start): sources are numbered in name order, starts fit 32 bits."""
    return (source.astype(np.int64) << 32) | start.astype(np.int64)


class SentenceTable(Sequence[Sentence]):
    """Content sentences in (source, start) order, as columns: ~28 bytes a sentence."""

    def __init__(self, sources: list[str], source: np.ndarray, start: np.ndarray, end: np.ndarray,
                 paragraph: np.ndarray):
        self.sources = sources  # names, sorted: `source` holds positions in this list
        self.number = {name: i for i, name in enumerate(sources)}
        self.source = source.astype(np.int32)
        self.start, self.end = start.astype(np.int64), end.astype(np.int64)
        self.paragraph = paragraph.astype(np.int32)
        self.keys = _keys(self.source, self.start)
        if len(self.keys) > 1 and not bool(np.all(self.keys[1:] > self.keys[:-1])):
            raise ValueError("sentences must come in (source, start) order, each once")

    def __len__(self) -> int:
        return len(self.start)

    def __getitem__(self, row: int) -> Sentence:  # type: ignore[override]  # rows one at a time, no slices
        return Sentence(self.span(row), int(self.paragraph[row]))

    def __eq__(self, other: object) -> bool:
        """The same sentences, however their sources are numbered."""
        return isinstance(other, SentenceTable) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # equal by value, and mutable arrays inside

    def span(self, row: int) -> Span:
        return Span(self.sources[self.source[row]], int(self.start[row]), int(self.end[row]))

    def row(self, source: str, start: int) -> int | None:
        """The row of the sentence of `source` starting at `start`, if there is one."""
        number = self.number.get(source)
        if number is None:
            return None
        key = (number << 32) | start
        at = int(np.searchsorted(self.keys, key))
        return at if at < len(self.keys) and self.keys[at] == key else None

    def rows(self, sources: list[str], source: np.ndarray, start: np.ndarray) -> np.ndarray:
        """`row` for many sentences at once (one binary search over the keys): each (source number in `sources`,
        start)'s row, or -1 where this table has no such sentence."""
        renumber = np.asarray([self.number.get(name, -1) for name in sources] or [-1], dtype=np.int64)
        numbers = renumber[source]
        if not len(self.keys):
            return np.full(len(numbers), -1, dtype=np.int64)
        keys = _keys(numbers, start)
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.where((numbers >= 0) & (self.keys[at] == keys), at, -1)


def runs(per_row: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """A list per row flattened: (offsets, values), row i's values at `offsets[i]:offsets[i + 1]` (a CSR layout)."""
    first = np.cumsum([0, *map(len, per_row)], dtype=np.int64)
    return first, np.fromiter((v for run in per_row for v in run), np.int64, first[-1])


class ChunkTable(Sequence[Chunk]):
    """Chunks in (source, start) order, as columns, with their sentences' bounds flattened (a CSR layout);
    a `Chunk` is rebuilt, search text included, from the document's text when asked for."""

    def __init__(self, texts: dict[str, str], sources: list[str], ids: list[str] | np.ndarray, source: np.ndarray,
                 start: np.ndarray, end: np.ndarray, paragraph: np.ndarray, hashes: list[str] | np.ndarray,
                 first: np.ndarray, sentence_starts: np.ndarray, sentence_ends: np.ndarray):
        """`first[row]:first[row + 1]` are the row's sentences in the flat `sentence_starts` / `sentence_ends`
        (`runs` makes the three from a list per chunk)."""
        self.texts, self.sources = texts, sources
        self.ids = np.asarray(ids, dtype=ID_TYPE).reshape(-1)
        self.by_id = np.argsort(self.ids, kind="stable")
        self.source, self.paragraph = source.astype(np.int32), paragraph.astype(np.int32)
        self.start, self.end = start.astype(np.int64), end.astype(np.int64)
        self.hashes = np.asarray(hashes, dtype="S16").reshape(-1)
        self.first = first.astype(np.int64)
        self.sentence_starts, self.sentence_ends = sentence_starts.astype(np.int64), sentence_ends.astype(np.int64)

    def __len__(self) -> int:
        return len(self.start)

    def __getitem__(self, row: int) -> Chunk:  # type: ignore[override]  # rows one at a time, no slices
        source = self.sources[self.source[row]]
        sentences = self.sentence_spans(row)
        text = self.texts.get(source, "")
        return Chunk(Span(source, int(self.start[row]), int(self.end[row])), int(self.paragraph[row]), sentences,
                     normalize(" ".join(s.text_in(text) for s in sentences)), self.hashes[row].decode())

    def sentence_spans(self, row: int) -> tuple[Span, ...]:
        source, run = self.sources[self.source[row]], slice(self.first[row], self.first[row + 1])
        return tuple(Span(source, int(s), int(e)) for s, e in zip(self.sentence_starts[run].tolist(),
                                                                   self.sentence_ends[run].tolist(), strict=True))

    def row(self, chunk_id: str) -> int | None:
        """The row of the chunk with this id, if the snapshot holds it."""
        key = chunk_id.encode()
        at = int(np.searchsorted(self.ids, key, sorter=self.by_id))
        return int(self.by_id[at]) if at < len(self.ids) and self.ids[self.by_id[at]] == key else None

    def count_by_source(self) -> dict[str, int]:
        counts = np.bincount(self.source, minlength=len(self.sources))
        return {name: int(n) for name, n in zip(self.sources, counts.tolist(), strict=True) if n}


@dataclass
class Snapshot:
    """Everything the answerer reads, loaded once: texts, chunks, content sentences and their vectors."""

    texts: dict[str, str]
    chunks: ChunkTable
    sentences: SentenceTable
    sentence_vectors: np.ndarray  # one row per sentence, SENTENCE_VECTOR_TYPE
    vocabulary: list[str] = field(default_factory=list)
    vocabulary_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, EMPTY_DIMENSIONS),
                                                                                    dtype=np.float32))


def return_freed_memory() -> None:
    """Hands memory freed while reading an index back to the system. A snapshot parses every stored vector from
    JSON into Python floats; glibc keeps what they freed unless asked to trim (~400 MB at 30k chunks, measured), and
    a worker's RSS would stay that much higher for its whole life. Elsewhere than glibc this does nothing."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def merged(old: Snapshot, new: Snapshot, replaced: Collection[str]) -> tuple[Snapshot, np.ndarray, np.ndarray]:
    """`old` without the `replaced` sources, plus `new` (a snapshot of just those sources as they are now, and of
    the vocabulary words `old` lacks): what a whole snapshot would read, for the cost of the changed documents.
    Also returns where each of its sentences and each of its chunks came from, row i of `old` as i and row j of
    `new` as -1 - j, to carry per-row data (the words, the keyword index) across (`stacked`)."""
    gone = set(replaced) | set(new.texts)
    found = {source: text for source, text in old.texts.items() if source not in gone} | new.texts
    sources = sorted(found)
    texts = {source: found[source] for source in sources}
    number = {name: i for i, name in enumerate(sources)}

    def renumbered(names: list[str], column: np.ndarray, dropped: set[str]) -> np.ndarray:
        """A table's source numbers in the merged numbering; -1 for a source whose rows are not kept."""
        lookup = [-1 if name in dropped else number.get(name, -1) for name in names]
        return np.asarray(lookup or [-1], dtype=np.int32)[column]

    def placed(old_table: SentenceTable | ChunkTable, new_table: SentenceTable | ChunkTable) -> tuple[np.ndarray,
                                                                                                   np.ndarray]:
        """The kept rows of both tables in (source, start) order: their merged source numbers, and origins."""
        old_source = renumbered(old_table.sources, old_table.source, gone)
        new_source = renumbered(new_table.sources, new_table.source, set())
        kept, added = np.flatnonzero(old_source >= 0), np.flatnonzero(new_source >= 0)
        source = np.concatenate([old_source[kept], new_source[added]])
        order = np.lexsort((np.concatenate([old_table.start[kept], new_table.start[added]]), source))
        return source[order], np.concatenate([kept, -1 - added])[order]

    source, sentence_origin = placed(old.sentences, new.sentences)
    take = stacked(sentence_origin, len(old.sentences))
    sentences = SentenceTable(sources, source, *(_joined(old.sentences, new.sentences, name, take)
                                                 for name in ("start", "end", "paragraph")))
    vectors = np.concatenate([old.sentence_vectors, new.sentence_vectors])[take]

    source, chunk_origin = placed(old.chunks, new.chunks)
    take = stacked(chunk_origin, len(old.chunks))
    # Each taken chunk's run of sentence bounds, found in the two tables' flat columns one after the other.
    first = np.concatenate([old.chunks.first, old.chunks.first[-1] + new.chunks.first[1:]])
    lengths = first[take + 1] - first[take]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.repeat(first[take] - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)

    def column(name: str, at: np.ndarray = take) -> np.ndarray:
        return _joined(old.chunks, new.chunks, name, at)

    chunks = ChunkTable(texts, sources, column("ids"), source, column("start"), column("end"), column("paragraph"),
                        column("hashes"), offsets, column("sentence_starts", flat), column("sentence_ends", flat))
    vocabulary_vectors = np.concatenate([old.vocabulary_vectors, new.vocabulary_vectors]) if len(new.vocabulary) \
        else old.vocabulary_vectors
    return (Snapshot(texts, chunks, sentences, vectors, old.vocabulary + new.vocabulary, vocabulary_vectors),
            sentence_origin, chunk_origin)


def stacked(origin: np.ndarray, old_rows: int) -> np.ndarray:
    """Origins as `merged` gives them (old row i as i, new row j as -1 - j) as positions in the old rows followed
    by the new ones: what carries a per-row column, list or matrix of both into the merged order."""
    return np.where(origin >= 0, origin, old_rows - 1 - origin)


def _joined(first: object, second: object, name: str, take: np.ndarray) -> np.ndarray:
    """Column `name` of two tables, the second's rows after the first's, taken at `take`."""
    return np.concatenate([getattr(first, name), getattr(second, name)])[take]
