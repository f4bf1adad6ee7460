"""The index's records of itself, as rows in the store: a header (what the vectors were made with, and a generation
token every write changes) and a row per document (its text, which offsets point into, and its version)."""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import chromadb
from chromadb.errors import NotFoundError

from index.chroma import DOCUMENTS, HEADER, Collections, chroma_client, collection_name, pages
from index.embed import model_name
from index.errors import CiteqaError
from index.formats import COPY_SUFFIX, TEXT_SUFFIXES
from index.segment import SEGMENTATION_VERSION
from index.settings import IndexSettings
from index.spans import SourceText

log = logging.getLogger(f"citeqa.{__name__}")
# How chunk vectors are made; an index made another way is rebuilt. 1: each chunk embedded whole; 2: the mean
# direction of its sentences' vectors (`Writer.write_sources`).
CHUNK_VECTORS_VERSION = 2
HEADER_ROW = "manifest"
PLACEHOLDER = [1.0]  # rows read only by id still carry a vector in Chroma: one dimension
# A batch of document rows is one request: a few MB of text, whatever the number of documents.
DOCUMENT_BATCH_CHARS = 4_000_000
LEGACY_MANIFEST = "manifest.json"  # where the layout before the store held the documents kept the header...
LEGACY_DOCS = "docs"  # ...and the document texts (in the data directory): migrated into the store on first open
LOOKUP_BATCH = 100  # sources per "which rows does each have" query


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


class Records:
    """The header and document rows of one index."""

    def __init__(self, collections: Collections):
        self.collections = collections

    def manifest(self) -> Manifest | None:
        """What the vectors were made with and each document's version, or None before anything was indexed. An
        index written by the layout that kept these in the data directory is moved into the store first."""
        header = read_header(self.collections[HEADER])
        if header is None:
            return self._migrated()
        sources = {row_id: {"sha256": meta["sha256"], "chars": meta["chars"], "chunks": meta["chunks"]}
                   for page in pages(self.collections[DOCUMENTS], ["metadatas"])
                   for row_id, meta in zip(page["ids"], page["metadatas"], strict=True)}
        return Manifest(**header, sources=sources)

    def generation(self) -> str | None:
        """What the index looks like from outside, cheaply (one row by id): every write stores a new token, so a
        different value means some process wrote; None before anything was indexed."""
        try:
            found = self.collections[HEADER].get(ids=[HEADER_ROW], include=["metadatas"])
        except NotFoundError:  # another process rebuilt the index: its collections are new ones
            self.collections.reopen()
            found = self.collections[HEADER].get(ids=[HEADER_ROW], include=["metadatas"])
        return str(found["metadatas"][0]["generation"]) if found["ids"] else None

    def save_manifest(self, manifest: Manifest) -> None:
        """Stores the header with a new generation (the documents' versions are their own rows')."""
        header = {"embedding_model": manifest.embedding_model, "chunking": manifest.chunking}
        self.collections[HEADER].upsert(ids=[HEADER_ROW], embeddings=[PLACEHOLDER], documents=[json.dumps(header)],
                                        metadatas=[{"generation": uuid.uuid4().hex}])

    def text(self, source: str) -> str | None:
        return self.texts([source]).get(source)

    def texts(self, sources: Collection[str]) -> dict[str, str]:
        """The stored texts of those `sources` that have one."""
        wanted, found = sorted(sources), {}
        for i in range(0, len(wanted), LOOKUP_BATCH):
            rows = self.collections[DOCUMENTS].get(ids=wanted[i:i + LOOKUP_BATCH], include=["documents"])
            found.update(zip(rows["ids"], rows["documents"], strict=True))
        return found

    def write_documents(self, docs: Sequence[tuple[SourceText, int]]) -> None:
        """Each document's row (its text and version, with its number of chunks) in batches of a few MB."""
        start = 0
        while start < len(docs):
            end, chars = start + 1, len(docs[start][0].text)
            while end < len(docs) and chars + len(docs[end][0].text) <= DOCUMENT_BATCH_CHARS:
                chars += len(docs[end][0].text)
                end += 1
            batch, start = docs[start:end], end
            self.collections[DOCUMENTS].upsert(
                ids=[d.source for d, _ in batch], embeddings=[PLACEHOLDER] * len(batch),
                documents=[d.text for d, _ in batch],
                metadatas=[{"sha256": d.sha256, "chars": len(d.text), "chunks": n} for d, n in batch])

    def remove_document(self, source: str) -> None:
        self.collections[DOCUMENTS].delete(ids=[source])

    def clear_legacy(self) -> None:
        """An older layout's files in the data directory, gone with the index they described."""
        data_dir = self.collections.settings.data_dir
        (data_dir / LEGACY_MANIFEST).unlink(missing_ok=True)
        shutil.rmtree(data_dir / LEGACY_DOCS, ignore_errors=True)

    def _migrated(self) -> Manifest | None:
        """The older layout's manifest and document copies (in the data directory) moved into the store; None when
        there is no older index either."""
        data_dir = self.collections.settings.data_dir
        legacy = data_dir / LEGACY_MANIFEST
        if not legacy.is_file():
            return None
        old = Manifest(**json.loads(legacy.read_text(encoding="utf-8")))
        folder = data_dir / LEGACY_DOCS
        docs = []
        for source, entry in sorted(old.sources.items()):
            name = source if source.lower().endswith(TEXT_SUFFIXES) else source + COPY_SUFFIX
            copy = folder / name
            if copy.is_file() and copy.resolve().is_relative_to(folder.resolve()):
                doc = SourceText(source, copy.read_text(encoding="utf-8"))
                if doc.sha256 == entry.get("sha256"):
                    docs.append((doc, int(entry.get("chunks", 0))))
        if docs:
            self.write_documents(docs)
        self.save_manifest(old)
        legacy.unlink()
        shutil.rmtree(folder, ignore_errors=True)
        log.warning("moved the index's manifest and %d document texts from %s into the store (the older layout)",
                    len(docs), data_dir)
        return self.manifest()
