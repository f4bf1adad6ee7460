"""Chroma holds the whole index: chunks and sentences with their vectors, vocabulary words, each document's text and
version, and a header (what the vectors were made with, and a generation token every write changes).

Chroma is the one store of record: the keyword index and the answerer's sentence table are rebuilt from it
(`IndexStore.snapshot`), so they cannot drift from it.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count, islice
from urllib.parse import urlparse

import chromadb
import httpx
import numpy as np
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError
from langchain_core.embeddings import Embeddings

from index.embed import embeddings_for, model_name
from index.errors import CiteqaError
from index.formats import COPY_SUFFIX, TEXT_SUFFIXES
from index.segment import SEGMENTATION_VERSION
from index.settings import IndexSettings
from index.snapshot import (
    EMPTY_DIMENSIONS,
    SENTENCE_VECTOR_TYPE,
    ChunkTable,
    SentenceTable,
    Snapshot,
    return_freed_memory,
    runs,
)
from index.spans import Chunk, Sentence, SourceText, Span, content_hash, stable_id
from index.text import STOPWORDS, normalize, stem, words

log = logging.getLogger(f"citeqa.{__name__}")
# How chunk vectors are made; an index made another way is rebuilt. 1: each chunk embedded whole; 2: the mean
# direction of its sentences' vectors (`write_sources`).
CHUNK_VECTORS_VERSION = 2
# The store holds everything every app server needs: besides the chunk, sentence and word rows, a row per document
# (its text, which offsets point into, and its version) and one header row (what the vectors were made with, and a
# generation token every write changes), so servers on any machines over one Chroma server answer alike.
DOCUMENTS, HEADER = "documents", "header"  # the two collections' kinds
HEADER_ROW = "manifest"
PLACEHOLDER = [1.0]  # rows read only by id still carry a vector in Chroma: one dimension
# A batch of document rows is one request: a few MB of text, whatever the number of documents.
DOCUMENT_BATCH_CHARS = 4_000_000
LEGACY_MANIFEST = "manifest.json"  # where the layout before the store held the documents kept the header...
LEGACY_DOCS = "docs"  # ...and the document texts (in the data directory): migrated into the store on first open
LOOKUP_BATCH = 100  # sources per "which rows does each have" query
# Rows per Chroma read or delete: Chroma turns a request into one SQL statement, and SQLite refuses one with more than
# 32,766 variables (a 100k-chunk collection read whole failed with "too many SQL variables").
PAGE = 5_000
WRITE_BATCH = 1000  # rows per Chroma add: few round trips to a server, well under its maximum batch (~5,000)
# Vectors kept by text for the rest of an indexing run (float32: 1.5 kB each, 75 MB at most): the same sentence in
# many files (wire copy, boilerplate, a re-sent report) goes through the model once.
VECTOR_CACHE = 50_000
# chromadb's HTTP client waits forever (httpx timeout=None); a stalled server must fail the request instead. A
# vector search takes ~1 ms and a 64-row add well under a second here, so 10 s only catches a server that hangs.
STORE_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 1.0  # the health probe: a heartbeat answers in ~1 ms on loopback
# The vector index of each collection. Only chunks are searched by vector; sentences and vocabulary words are read
# by id or source, so their graph is the cheapest Chroma builds (it always builds one). Measured here (10,000 rows of
# 256 dims, embedded Chroma, 2 cores): 1,379 rows/s with Chroma's default graph, 2,588 with this one.
SEARCHED = {"hnsw": {"space": "cosine"}}
STORED_ONLY = {"hnsw": {"space": "cosine", "ef_construction": 8, "max_neighbors": 4}}


class StoreUnavailable(CiteqaError, RuntimeError):
    """The Chroma server cannot be reached (down, restarting, stalled): a passing condition, not a bad request."""

    http_status, exit_code = 503, 3
    # A stopped Chroma server is back in ~0.6 s after `chroma run` and answers resume on the next request (measured
    # in tests/ui/test_faults.py); a client waiting 5 s does not hammer a store that is restarting.
    retry_after_s = 5


def unreachable(url: str | None, why: str) -> str:
    return (f"document store unavailable: the Chroma server at {url} is unreachable ({why}); start it, or unset "
            "CITEQA_CHROMA_URL for the embedded store")


class IncompatibleIndex(CiteqaError, RuntimeError):
    """The stored vectors were made with another model or chunking; mixing them would be silent garbage."""


@dataclass
class Manifest:
    """What the stored vectors were made with, and which version of each source they hold."""

    embedding_model: str
    chunking: dict[str, int]
    sources: dict[str, dict[str, str | int]] = field(default_factory=dict)

    def compatible(self, other: Manifest) -> bool:
        return (self.embedding_model, self.chunking) == (other.embedding_model, other.chunking)


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


def chroma_client(settings: IndexSettings) -> chromadb.ClientAPI:
    quiet = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        try:
            client = chromadb.HttpClient(host=url.hostname or "127.0.0.1", port=url.port or 8000,
                                         ssl=url.scheme == "https", settings=quiet)
        except ValueError as error:  # chromadb's "Could not connect to a Chroma server"
            raise StoreUnavailable(unreachable(settings.chroma_url, str(error))) from None
        # chromadb has no public setting for this: its HTTP session is private (check on upgrading chromadb).
        client._server._session.timeout = httpx.Timeout(STORE_TIMEOUT_S)
        return client
    return chromadb.PersistentClient(path=str(settings.data_dir / "chroma"), settings=quiet)


def expected_manifest(settings: IndexSettings, embedding_model: str) -> Manifest:
    return Manifest(embedding_model, {**settings.chunking, "segmentation": SEGMENTATION_VERSION,
                                      "chunk_vectors": CHUNK_VECTORS_VERSION})


def checked(manifest: Manifest | None, expected: Manifest) -> Manifest:
    if manifest is None:
        raise IncompatibleIndex("no index yet: run `citeqa index` first")
    if not manifest.compatible(expected):
        raise IncompatibleIndex(
            f"the index was built with {manifest.embedding_model} {manifest.chunking}, the settings ask for "
            f"{expected.embedding_model} {expected.chunking}: run `citeqa index --rebuild`")
    return manifest


def collection_name(settings: IndexSettings, kind: str) -> str:
    return f"{settings.collection}_{kind}"


def read_header(collection: chromadb.Collection) -> dict | None:
    """What the vectors were made with (embedding model, chunking), from the header row; None before any index."""
    found = collection.get(ids=[HEADER_ROW], include=["documents"])
    return json.loads(found["documents"][0]) if found["ids"] else None


def check_index(settings: IndexSettings) -> Manifest:
    """`IndexStore.check` without loading the model: what a process that only starts others (`citeqa serve
    --workers N`) checks, so that it does not hold a model and an index it never answers from."""
    try:
        header = read_header(chroma_client(settings).get_collection(collection_name(settings, HEADER)))
    except NotFoundError:
        header = None
    return checked(Manifest(**header) if header else None,
                   expected_manifest(settings, model_name(settings.embedding_model)))


def open_store(settings: IndexSettings) -> IndexStore:
    """The store the settings name, with the embedding model they name (loaded once, from local files)."""
    return IndexStore(settings, embeddings_for(settings), model_name(settings.embedding_model))


class IndexStore:
    def __init__(self, settings: IndexSettings, embeddings: Embeddings, embedding_model: str):
        self.settings = settings
        self.client = chroma_client(settings)
        self.embeddings = embeddings
        self.expected = expected_manifest(settings, embedding_model)
        self._handles = self._collections()
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    def _name(self, kind: str) -> str:
        return collection_name(self.settings, kind)

    def _collections(self) -> dict[str, chromadb.Collection]:
        """Chunks (searched by vector), sentences and vocabulary words (read by id or source), the documents and
        the header (read by id). One kind of handle, chromadb's own, opened once per store (a lookup is ~8 ms over
        HTTP): every row is written with its vector, so Chroma embeds nothing itself."""
        return {kind: self.client.get_or_create_collection(self._name(kind), configuration=configuration,
                                                           embedding_function=None)
                for kind, configuration in (("chunks", SEARCHED), ("sentences", STORED_ONLY), ("terms", STORED_ONLY),
                                            (DOCUMENTS, STORED_ONLY), (HEADER, STORED_ONLY))}

    @property
    def chunks(self) -> chromadb.Collection:
        return self._handles["chunks"]

    @property
    def sentences(self) -> chromadb.Collection:
        return self._handles["sentences"]

    @property
    def vocabulary(self) -> chromadb.Collection:
        return self._handles["terms"]

    # the header and the documents
    def manifest(self) -> Manifest | None:
        """What the vectors were made with and each document's version, or None before anything was indexed. An
        index written by the layout that kept these in the data directory is moved into the store first."""
        header = read_header(self._handle(HEADER))
        if header is None:
            return self._migrated()
        sources = {row_id: {"sha256": meta["sha256"], "chars": meta["chars"], "chunks": meta["chunks"]}
                   for page in pages(self._handle(DOCUMENTS), ["metadatas"])
                   for row_id, meta in zip(page["ids"], page["metadatas"], strict=True)}
        return Manifest(**header, sources=sources)

    def check(self) -> Manifest:
        """The manifest, or why the store cannot be read with the current settings (`IncompatibleIndex`)."""
        return checked(self.manifest(), self.expected)

    def generation(self) -> str | None:
        """What the index looks like from outside, cheaply (one row by id): every write stores a new token, so a
        different value means some process wrote; None before anything was indexed."""
        try:
            found = self._handle(HEADER).get(ids=[HEADER_ROW], include=["metadatas"])
        except NotFoundError:  # another process rebuilt the index: its collections are new ones
            self.reopen()
            found = self._handle(HEADER).get(ids=[HEADER_ROW], include=["metadatas"])
        return str(found["metadatas"][0]["generation"]) if found["ids"] else None

    def save_manifest(self, manifest: Manifest) -> None:
        """Stores the header with a new generation (the documents' versions are their own rows')."""
        header = {"embedding_model": manifest.embedding_model, "chunking": manifest.chunking}
        self._handle(HEADER).upsert(ids=[HEADER_ROW], embeddings=[PLACEHOLDER], documents=[json.dumps(header)],
                                    metadatas=[{"generation": uuid.uuid4().hex}])

    def text(self, source: str) -> str | None:
        return self.texts([source]).get(source)

    def texts(self, sources: Collection[str]) -> dict[str, str]:
        """The stored texts of those `sources` that have one."""
        wanted, found = sorted(sources), {}
        for i in range(0, len(wanted), LOOKUP_BATCH):
            rows = self._handle(DOCUMENTS).get(ids=wanted[i:i + LOOKUP_BATCH], include=["documents"])
            found.update(zip(rows["ids"], rows["documents"], strict=True))
        return found

    def _write_documents(self, docs: Sequence[tuple[SourceText, int]]) -> None:
        """Each document's row (its text and version, with its number of chunks) in batches of a few MB."""
        start = 0
        while start < len(docs):
            end, chars = start + 1, len(docs[start][0].text)
            while end < len(docs) and chars + len(docs[end][0].text) <= DOCUMENT_BATCH_CHARS:
                chars += len(docs[end][0].text)
                end += 1
            batch, start = docs[start:end], end
            self._handle(DOCUMENTS).upsert(
                ids=[d.source for d, _ in batch], embeddings=[PLACEHOLDER] * len(batch),
                documents=[d.text for d, _ in batch],
                metadatas=[{"sha256": d.sha256, "chars": len(d.text), "chunks": n} for d, n in batch])

    def _migrated(self) -> Manifest | None:
        """The older layout's manifest and document copies (in the data directory) moved into the store; None when
        there is no older index either."""
        legacy = self.settings.data_dir / LEGACY_MANIFEST
        if not legacy.is_file():
            return None
        old = Manifest(**json.loads(legacy.read_text(encoding="utf-8")))
        folder = self.settings.data_dir / LEGACY_DOCS
        docs = []
        for source, entry in sorted(old.sources.items()):
            name = source if source.lower().endswith(TEXT_SUFFIXES) else source + COPY_SUFFIX
            copy = folder / name
            if copy.is_file() and copy.resolve().is_relative_to(folder.resolve()):
                doc = SourceText(source, copy.read_text(encoding="utf-8"))
                if doc.sha256 == entry.get("sha256"):
                    docs.append((doc, int(entry.get("chunks", 0))))
        if docs:
            self._write_documents(docs)
        self.save_manifest(old)
        legacy.unlink()
        shutil.rmtree(folder, ignore_errors=True)
        log.warning("moved the index's manifest and %d document texts from %s into the store (the older layout)",
                    len(docs), self.settings.data_dir)
        return self.manifest()

    def problem(self) -> str | None:
        """Why the store cannot answer now, or None: a heartbeat with a short timeout (embedded: always fine)."""
        if not self.settings.chroma_url:
            return None
        try:
            httpx.get(f"{self.settings.chroma_url.rstrip('/')}/api/v2/heartbeat",
                      timeout=PROBE_TIMEOUT_S).raise_for_status()
        except httpx.HTTPError as error:
            return f"the Chroma server at {self.settings.chroma_url} is unreachable ({error or type(error).__name__})"
        return None

    # writing
    def clear(self) -> None:
        """Start over: every collection (rows, documents, header), and an older layout's files."""
        for kind in ("chunks", "sentences", "terms", DOCUMENTS, HEADER):
            self.client.delete_collection(self._name(kind))
        self.reopen()
        (self.settings.data_dir / LEGACY_MANIFEST).unlink(missing_ok=True)
        shutil.rmtree(self.settings.data_dir / LEGACY_DOCS, ignore_errors=True)

    def reopen(self) -> None:
        """Fresh handles on the collections. Another process's `citeqa index --rebuild` replaces them (new ids), and
        a handle on a replaced one fails every read: a reader re-opens before each snapshot."""
        self._handles = self._collections()

    def stored_ids(self, sources: Sequence[str]) -> dict[str, tuple[set[str], set[str]]]:
        """Each source's stored chunk and sentence ids, asked for many sources at once (a round trip per
        LOOKUP_BATCH sources, not two per document: each costs ~8 ms over HTTP)."""
        found: dict[str, tuple[set[str], set[str]]] = {source: (set(), set()) for source in sources}
        for i in range(0, len(sources), LOOKUP_BATCH):
            where = {"source": {"$in": list(sources[i:i + LOOKUP_BATCH])}}
            for position, store in enumerate((self.chunks, self.sentences)):
                rows = store.get(where=where, include=["metadatas"])
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
            writes = [pool.submit(self._write, "chunks", new_chunks, chunk_vectors, keep_text=True),
                      pool.submit(self._write, "sentences", new_sentences, vectors, keep_text=False)]
            for write in writes:
                write.result()
        on_embedded(len(new_chunks))
        self._delete(self.chunks, [row for plan in plans for row in plan.stale_chunks])
        self._delete(self.sentences, [row for plan in plans for row in plan.stale_sentences])
        self._write_documents([(plan.doc, plan.chunks) for plan in plans])

    def new_words(self, docs: Sequence[tuple[SourceText, Sequence[Sentence]]]) -> list[str]:
        """Words of `docs` the vocabulary has no vector for yet (it only grows: a stale word matches nothing)."""
        found = sorted({w for doc, sentences in docs for s in sentences for w in words(s.span.text_in(doc.text))
                        if w.isalpha() and len(w) > 2 and w not in STOPWORDS})
        known = {row for i in range(0, len(found), PAGE)
                 for row in self.vocabulary.get(ids=found[i:i + PAGE], include=[])["ids"]}
        return [w for w in found if w not in known]

    def add_words(self, new_words: list[str], on_embedded: Callable[[int], None]) -> None:
        rows = {w: (w, {"stem": stem(w)}) for w in new_words}
        self._write("terms", rows, self._embed(rows, on_embedded), keep_text=False)

    def remove_source(self, source: str) -> int:
        """The document's own row goes first: rows left by a removal cut short match no stored text (never
        answered), and the document is no longer recorded as indexed (indexing it again writes it whole)."""
        self._handle(DOCUMENTS).delete(ids=[source])
        old_chunks, old_sentences = self.stored_ids([source])[source]
        self._delete(self.chunks, sorted(old_chunks))
        self._delete(self.sentences, sorted(old_sentences))
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
        stored = self.sentences.get(where={"source": plan.doc.source}, include=["metadatas", "embeddings"])
        return {(meta["start"], meta["end"]): vector for meta, vector in zip(stored["metadatas"],
                                                                              stored["embeddings"], strict=True)
                if (meta["start"], meta["end"]) in wanted}

    def _write(self, kind: str, rows: dict[str, tuple[str, dict]], vectors: Sequence | np.ndarray,
               keep_text: bool) -> None:
        """Adds the rows with their vectors. Only chunk texts are read back; a sentence's text is its document's
        (by offsets) and a word's is its id, and Chroma indexes every stored text for full-text search (a fifth of
        an add's cost here), so those are not stored twice."""
        collection = self._handle(kind)
        ids = list(rows)
        for i in range(0, len(ids), WRITE_BATCH):
            batch = ids[i:i + WRITE_BATCH]
            collection.add(ids=batch, embeddings=np.asarray(vectors[i:i + WRITE_BATCH], dtype=np.float32),
                           documents=[rows[k][0] for k in batch] if keep_text else None,
                           metadatas=[rows[k][1] for k in batch])

    def _handle(self, kind: str) -> chromadb.Collection:
        return self._handles[kind]

    def _words(self, known: set[str]) -> Iterator[dict]:
        """Pages of vocabulary words with their vectors: all of them, or those not `known` (ids are read first,
        then only the new words' vectors: re-reading all of them was 1.2 of a 5 s refresh at 30k chunks)."""
        if not known:
            yield from pages(self._handle("terms"), ["embeddings"])
            return
        new = [word for page in pages(self._handle("terms"), []) for word in page["ids"] if word not in known]
        for i in range(0, len(new), PAGE):
            yield self._handle("terms").get(ids=new[i:i + PAGE], include=["embeddings"])

    @staticmethod
    def _delete(store: chromadb.Collection, ids: list[str]) -> None:
        for i in range(0, len(ids), PAGE):
            store.delete(ids=ids[i:i + PAGE])

    # reading
    @contextmanager
    def reachable(self) -> Iterator[None]:
        """Store calls inside it raise StoreUnavailable, not a transport error, while a Chroma server cannot be
        reached: a passing condition every caller maps to "try again" (503, exit 3)."""
        try:
            yield
        except httpx.TransportError as error:
            raise StoreUnavailable(unreachable(self.settings.chroma_url, str(error) or type(error).__name__)) \
                from error

    def dense_search(self, vector: list[float], k: int) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity), best first; StoreUnavailable while a Chroma server is unreachable.
        Only ids and distances are asked for: the answerer has the chunks' text and bounds in its snapshot, and
        Chroma reading 12 documents with their metadata was 4.1 ms of its CPU per question (with them) at 100k."""
        with self.reachable():  # k past the collection's size gives what there is (no count first: a round trip)
            found = self._handle("chunks").query(query_embeddings=[vector], n_results=k, include=["distances"])
        return [(chunk_id, 1.0 - distance) for chunk_id, distance in zip(found["ids"][0], found["distances"][0],
                                                                         strict=True)]

    def snapshot(self, sources: Collection[str] | None = None, known_words: Collection[str] = ()) -> Snapshot:
        """What the answerer reads: the whole index, or only `sources` and the vocabulary words not in
        `known_words`, for a refresh that re-reads just the documents that changed. Rows whose content does not
        match the stored copy's text (a write cut short, whose copy is written last, or rows left from a replaced
        version) are left out: never a partial document. Rows come PAGE at a time straight into columns: whole
        collections read as Python lists held ~1 GB at 100k.
        """

        def rows(kind: str, include: list[str]) -> Iterator[dict]:
            if sources is None:
                return pages(self._handle(kind), include)
            return pages(self._handle(kind), include, {"source": {"$in": sorted(sources)}}) if sources else iter(())

        chunks = [StoredChunk(row_id, meta["source"], meta["start"], meta["end"], meta["paragraph"],
                              meta["content_hash"], meta["sentence_starts"], meta["sentence_ends"])
                  for page in rows("chunks", ["metadatas"])
                  for row_id, meta in zip(page["ids"], page["metadatas"], strict=True)]
        chunk_sources = {c.source for c in chunks}
        stored = self.texts(chunk_sources)
        texts = {source: stored.get(source, "") for source in chunk_sources}
        whole = sorted((c for c in chunks if c.matches(texts[c.source])), key=lambda c: (c.source, c.start))
        sentences: list[tuple[str, int, int, int]] = []
        vectors, read = [], 0
        for page in rows("sentences", ["metadatas", "embeddings"]):
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
        for page in self._words(set(known_words)):
            if page["ids"]:
                vocabulary += page["ids"]
                vocabulary_vectors.append(np.asarray(page["embeddings"], dtype=np.float32))
        if not vocabulary_vectors:  # the shape of "no words", as wide as the sentence vectors
            vocabulary_vectors.append(np.zeros((0, dimensions), dtype=np.float32))
        sources = sorted({c.source for c in whole})
        return Snapshot({source: texts[source] for source in sources}, chunk_table(texts, sources, whole),
                        sentence_table(sorted(texts), [sentences[i] for i in order]), sentence_vectors,
                        vocabulary, np.concatenate(vocabulary_vectors))


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


def pages(collection: chromadb.Collection, include: list[str], where: dict | None = None) -> Iterator[dict]:
    """A whole collection's ids and `include`d fields, PAGE rows a request (one SQL statement each), two requests
    in flight: the server reads out one page while this process parses the one before (a 30k-chunk snapshot:
    15.1 -> 10.4 s). Rows added after the count wait for the next snapshot, which their write's manifest brings.
    With `where` (a few documents' rows), pages come one after another until a short one."""
    if where is not None:
        for offset in count(0, PAGE):
            page = collection.get(where=where, include=include, limit=PAGE, offset=offset)
            yield page
            if len(page["ids"]) < PAGE:
                return
    offsets = iter(range(0, collection.count(), PAGE))
    with ThreadPoolExecutor(2) as pool:
        pending = deque(pool.submit(collection.get, include=include, limit=PAGE, offset=offset)
                        for offset in islice(offsets, 2))
        while pending:
            page = pending.popleft().result()
            pending.extend(pool.submit(collection.get, include=include, limit=PAGE, offset=offset)
                           for offset in islice(offsets, 1))
            yield page


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


def span_id(span: Span, text: str) -> str:
    return stable_id(span, content_hash(span.text_in(text)))


def sentence_metadata(sentence: Sentence) -> dict:
    return {"source": sentence.span.source, "start": sentence.span.start, "end": sentence.span.end,
            "paragraph": sentence.paragraph}
