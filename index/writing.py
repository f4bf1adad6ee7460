"""Writing documents into the store: which rows each document needs (a plan), embedding only what is new, and the
order of writes that keeps a write cut short from ever being read (`Writer.write_sources`)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from langchain_core.embeddings import Embeddings

from index import chroma
from index.chroma import CHUNKS, SENTENCES, TERMS, Collections, delete_pages
from index.records import LOOKUP_BATCH, Records
from index.snapshot import EMPTY_DIMENSIONS
from index.spans import Chunk, Sentence, SourceText, span_id
from index.text import STOPWORDS, normalize, stem, words

WRITE_BATCH = 1000  # rows per Chroma add: few round trips to a server, well under its maximum batch (~5,000)
# Vectors kept by text for the rest of an indexing run (float32: 1.5 kB each, 75 MB at most): the same sentence in
# many files (wire copy, boilerplate, a re-sent report) goes through the model once.
VECTOR_CACHE = 50_000


@dataclass(frozen=True)
class SourcePlan:
    """The writes that bring one document's rows in the store up to date."""

    doc: SourceText
    new_chunks: dict[str, tuple[str, dict]]
    new_sentences: dict[str, tuple[str, dict]]
    stale_chunks: list[str]
    stale_sentences: list[str]
    chunks: int

    @property
    def to_embed(self) -> int:
        return len(self.new_chunks) + len(self.new_sentences)


class Writer:
    """Writes of one index: rows with their vectors, each document's row last, removals and starting over."""

    def __init__(self, collections: Collections, records: Records, embeddings: Embeddings):
        self.collections, self.records, self.embeddings = collections, records, embeddings
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    def clear(self) -> None:
        """Start over: every collection (rows, documents, header), and an older layout's files."""
        self.collections.drop()
        self.records.clear_legacy()

    def stored_ids(self, sources: Sequence[str]) -> dict[str, tuple[set[str], set[str]]]:
        """Each source's stored chunk and sentence ids, asked for many sources at once (a round trip per
        LOOKUP_BATCH sources, not two per document: each costs ~8 ms over HTTP)."""
        found: dict[str, tuple[set[str], set[str]]] = {source: (set(), set()) for source in sources}
        for i in range(0, len(sources), LOOKUP_BATCH):
            where = {"source": {"$in": list(sources[i:i + LOOKUP_BATCH])}}
            for position, kind in enumerate((CHUNKS, SENTENCES)):
                rows = self.collections[kind].get(where=where, include=["metadatas"])
                for row_id, meta in zip(rows["ids"], rows["metadatas"], strict=True):
                    found[meta["source"]][position].add(row_id)
        return found

    def plans(self, docs: Sequence[tuple[SourceText, Sequence[Chunk], Sequence[Sentence]]]) -> list[SourcePlan]:
        """What writing each document takes: rows new to the store (to embed) and stored rows it no longer has."""
        stored = self.stored_ids([doc.source for doc, _, _ in docs])
        plans = []
        for doc, chunks, sentences in docs:
            old_chunks, old_sentences = stored[doc.source]
            chunk_rows = {c.id: (c.text, chunk_metadata(c)) for c in chunks}
            sentence_rows = {sentence_id(s, doc.text): (normalize(s.span.text_in(doc.text)), sentence_metadata(s))
                             for s in sentences}
            plans.append(SourcePlan(doc, {k: v for k, v in chunk_rows.items() if k not in old_chunks},
                                    {k: v for k, v in sentence_rows.items() if k not in old_sentences},
                                    sorted(old_chunks - chunk_rows.keys()),
                                    sorted(old_sentences - sentence_rows.keys()), len(chunk_rows)))
        return plans

    def write_sources(self, plans: Sequence[SourcePlan], on_embedded: Callable[[int], None]) -> None:
        """Make the store hold exactly the planned chunks and sentences for the documents, and their texts.

        The documents' rows go in together (a Chroma add costs ~0.1 s however few its rows: one per document made
        small files slow), then each document's own row (its text and version), last: a write cut short leaves rows
        no stored text matches, which `snapshot` leaves out, and the old version recorded, so it is written again.
        Only sentences go through the model: a chunk's vector is the normalized mean of its sentences' vectors
        (each sentence embedded once, not once alone and again in every chunk that holds it).
        """
        new_sentences = {k: v for plan in plans for k, v in plan.new_sentences.items()}
        new_chunks = {k: v for plan in plans for k, v in plan.new_chunks.items()}
        vectors = self._embed(new_sentences, on_embedded)
        by_row = dict(zip(new_sentences, vectors, strict=True))
        chunk_vectors = []
        for plan in plans:
            by_span = {(meta["start"], meta["end"]): by_row[row_id] for row_id, (_, meta) in plan.new_sentences.items()}
            by_span |= self._stored_sentence_vectors(plan, by_span)
            chunk_vectors += [mean_direction([by_span[span] for span in zip(meta["sentence_starts"],
                                                                             meta["sentence_ends"], strict=True)])
                              for _, meta in plan.new_chunks.values()]
        # Chunks and sentences are separate collections: two adds at once keep both cores busy in the Chroma server
        # (the 8k-chunk bench corpus: 38.5 -> 34.1 s, mean of two runs each; the server's CPU is the bound).
        with ThreadPoolExecutor(2) as pool:
            writes = [pool.submit(self._write, CHUNKS, new_chunks, chunk_vectors, keep_text=True),
                      pool.submit(self._write, SENTENCES, new_sentences, vectors, keep_text=False)]
            for write in writes:
                write.result()
        on_embedded(len(new_chunks))
        delete_pages(self.collections[CHUNKS], [row for plan in plans for row in plan.stale_chunks])
        delete_pages(self.collections[SENTENCES], [row for plan in plans for row in plan.stale_sentences])
        self.records.write_documents([(plan.doc, plan.chunks) for plan in plans])

    def new_words(self, docs: Sequence[tuple[SourceText, Sequence[Sentence]]]) -> list[str]:
        """Words of `docs` the vocabulary has no vector for yet (it only grows: a stale word matches nothing)."""
        found = sorted({w for doc, sentences in docs for s in sentences for w in words(s.span.text_in(doc.text))
                        if w.isalpha() and len(w) > 2 and w not in STOPWORDS})
        known = {row for page in chroma.in_pages(found)
                 for row in self.collections[TERMS].get(ids=page, include=[])["ids"]}
        return [w for w in found if w not in known]

    def add_words(self, new_words: list[str], on_embedded: Callable[[int], None]) -> None:
        rows = {w: (w, {"stem": stem(w)}) for w in new_words}
        self._write(TERMS, rows, self._embed(rows, on_embedded), keep_text=False)

    def remove_source(self, source: str) -> int:
        """The document's own row goes first: rows left by a removal cut short match no stored text (never
        answered), and the document is no longer recorded as indexed (indexing it again writes it whole)."""
        self.records.remove_document(source)
        old_chunks, old_sentences = self.stored_ids([source])[source]
        delete_pages(self.collections[CHUNKS], sorted(old_chunks))
        delete_pages(self.collections[SENTENCES], sorted(old_sentences))
        return len(old_chunks)

    def _embed(self, rows: dict[str, tuple[str, dict]], on_embedded: Callable[[int], None]) -> np.ndarray:
        """The rows' texts through the model, in batches (sentence-transformers sorts each by length); a text seen
        earlier in this run is not embedded again."""
        texts = [text for text, _ in rows.values()]
        unseen = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        for i in range(0, len(unseen), WRITE_BATCH):
            batch = unseen[i:i + WRITE_BATCH]
            for text, vector in zip(batch, self.embeddings.embed_documents(batch), strict=True):
                self._vectors[text] = np.asarray(vector, dtype=np.float32)
            on_embedded(len(batch))
        on_embedded(len(texts) - len(unseen))
        vectors = np.stack([self._vectors[t] for t in texts]) if texts else np.zeros((0, EMPTY_DIMENSIONS), np.float32)
        for text in texts:
            self._vectors.move_to_end(text)
        while len(self._vectors) > VECTOR_CACHE:
            self._vectors.popitem(last=False)
        return vectors

    def _stored_sentence_vectors(self, plan: SourcePlan, known: dict) -> dict[tuple[int, int], list[float]]:
        """Vectors of sentences a new chunk holds that are already stored (a changed document's unchanged ones)."""
        wanted = {span for _, meta in plan.new_chunks.values()
                  for span in zip(meta["sentence_starts"], meta["sentence_ends"], strict=True)} - known.keys()
        if not wanted:
            return {}
        stored = self.collections[SENTENCES].get(where={"source": plan.doc.source},
                                                 include=["metadatas", "embeddings"])
        return {(meta["start"], meta["end"]): vector for meta, vector in zip(stored["metadatas"],
                                                                              stored["embeddings"], strict=True)
                if (meta["start"], meta["end"]) in wanted}

    def _write(self, kind: str, rows: dict[str, tuple[str, dict]], vectors: Sequence | np.ndarray,
               keep_text: bool) -> None:
        """Adds the rows with their vectors. Only chunk texts are read back; a sentence's text is its document's
        (by offsets) and a word's is its id, and Chroma indexes every stored text for full-text search (a fifth of
        an add's cost here), so those are not stored twice."""
        collection = self.collections[kind]
        ids = list(rows)
        for i in range(0, len(ids), WRITE_BATCH):
            batch = ids[i:i + WRITE_BATCH]
            collection.add(ids=batch, embeddings=np.asarray(vectors[i:i + WRITE_BATCH], dtype=np.float32),
                           documents=[rows[k][0] for k in batch] if keep_text else None,
                           metadatas=[rows[k][1] for k in batch])


def mean_direction(vectors: list) -> np.ndarray:
    """The normalized mean of unit vectors: a passage's direction from its sentences' (cosine stays meaningful)."""
    mean = np.mean(np.asarray(vectors, dtype=np.float32), axis=0)
    return mean / (np.linalg.norm(mean) or 1.0)


def chunk_metadata(chunk: Chunk) -> dict:
    return {"source": chunk.span.source, "start": chunk.span.start, "end": chunk.span.end,
            "paragraph": chunk.paragraph, "content_hash": chunk.content_hash,
            "sentence_starts": [s.start for s in chunk.sentences],
            "sentence_ends": [s.end for s in chunk.sentences]}


def sentence_id(sentence: Sentence, text: str) -> str:
    return span_id(sentence.span, text)


def sentence_metadata(sentence: Sentence) -> dict:
    return {"source": sentence.span.source, "start": sentence.span.start, "end": sentence.span.end,
            "paragraph": sentence.paragraph}
