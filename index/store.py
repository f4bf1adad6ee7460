"""One index in Chroma as the rest of citeqa sees it, made of parts with one job each: the collections
(`index.chroma`), the index's records of itself — header and documents (`index.records`) —, writing
(`index.writing`) and reading (`index.reading`).

Chroma holds the whole index: chunks and sentences with their vectors, vocabulary words, each document's text and
version, and a header (what the vectors were made with, and a generation token every write changes). It is the one
store of record: the keyword index and the answerer's sentence table are rebuilt from it (`IndexStore.snapshot`), so
they cannot drift from it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager

import chromadb
from langchain_core.embeddings import Embeddings

from index.chroma import CHUNKS, SENTENCES, TERMS, Collections
from index.embed import embeddings_for, model_name
from index.reading import dense_search, read_snapshot
from index.records import Manifest, Records, checked, expected_manifest
from index.settings import IndexSettings
from index.snapshot import Snapshot
from index.writing import Writer


def open_store(settings: IndexSettings) -> IndexStore:
    """The store the settings name, with the embedding model they name (loaded once, from local files)."""
    return IndexStore(settings, embeddings_for(settings), model_name(settings.embedding_model))


class IndexStore:
    """`records` (the manifest, document texts, the generation) and `writer` (plans, writes, removals) are the
    parts callers use directly; reading and the connection's state are here."""

    def __init__(self, settings: IndexSettings, embeddings: Embeddings, embedding_model: str):
        self.settings = settings
        self.embeddings = embeddings
        self.expected = expected_manifest(settings, embedding_model)
        self.collections = Collections(settings)
        self.records = Records(self.collections)
        self.writer = Writer(self.collections, self.records, embeddings)

    @property
    def chunks(self) -> chromadb.Collection:
        return self.collections[CHUNKS]

    @property
    def sentences(self) -> chromadb.Collection:
        return self.collections[SENTENCES]

    @property
    def vocabulary(self) -> chromadb.Collection:
        return self.collections[TERMS]

    def check(self) -> Manifest:
        """The manifest, or why the store cannot be read with the current settings (`IncompatibleIndex`)."""
        return checked(self.records.manifest(), self.expected)

    def reopen(self) -> None:
        self.collections.reopen()

    @contextmanager
    def reachable(self) -> Iterator[None]:
        with self.collections.reachable():
            yield

    def problem(self) -> str | None:
        return self.collections.problem()

    def dense_search(self, vector: list[float], k: int) -> list[tuple[str, float]]:
        return dense_search(self.collections, vector, k)

    def snapshot(self, sources: Collection[str] | None = None, known_words: Collection[str] = ()) -> Snapshot:
        return read_snapshot(self.collections, self.records, sources, known_words)
