"""Indexing as one component: paths in, an up-to-date store and a summary out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from index.chunk import chunk_sentences, content_sentences
from index.load import IngestError, load_sources
from index.records import IncompatibleIndex, Manifest
from index.segment import sentences as segment
from index.spans import Chunk, Sentence, SourceText
from index.store import IndexStore
from index.text import counted
from index.writing import WRITE_BATCH, SourcePlan

log = logging.getLogger(f"citeqa.{__name__}")
# Given the number of pieces to embed, returns what to call with each batch embedded (a progress bar's update).
Progress = Callable[[int], Callable[[int], None]]


@dataclass(frozen=True)
class IndexSummary:
    files: int
    added: int
    kept: int
    removed: int
    seconds: float
    rebuilt: bool = False

    def line(self) -> str:
        note = " (rebuilt)" if self.rebuilt else ""
        return (f"indexed {counted(self.files, 'file')}: {counted(self.added, 'chunk')} added, {self.kept} kept, "
                f"{self.removed} removed in {self.seconds:.1f} s{note}")


@dataclass(frozen=True)
class Added:
    """A document written by `Indexer.add`; `replaced` when a document of that name was indexed before."""

    source: str
    chars: int
    chunks: int
    replaced: bool


@dataclass(frozen=True)
class Prepared:
    doc: SourceText
    chunks: list[Chunk]
    sentences: list[Sentence]


class Indexer:
    """load → segment → chunk → embed → store, incremental by content-derived ids."""

    def __init__(self, store: IndexStore):
        self.store = store

    def prepare(self, doc: SourceText) -> Prepared:
        sentences = segment(doc.text, doc.source)
        chunking = self.store.expected.chunking
        chunks = chunk_sentences(doc.text, sentences, chunking["chunk_sentences"], chunking["chunk_overlap"])
        return Prepared(doc, chunks, content_sentences(sentences))

    def run(self, paths: Iterable[Path], rebuild: bool = False, prune: bool = False,
            progress: Progress | None = None) -> IndexSummary:
        """Reads and checks every file before writing anything, so a bad file leaves the index untouched."""
        started = time.perf_counter()
        prepared = [self.prepare(doc) for doc in load_sources(paths)]
        manifest = self.store.records.manifest()
        rebuilt = rebuild or (manifest is not None and not manifest.compatible(self.store.expected))
        if rebuilt:
            if manifest is not None and not rebuild:
                log.warning("index was built with %s %s; rebuilding with %s %s", manifest.embedding_model,
                            manifest.chunking, self.store.expected.embedding_model, self.store.expected.chunking)
            self.store.writer.clear()
            manifest = None
        manifest = manifest or self.new_manifest()
        plans = self.write(prepared, manifest, progress)
        added = sum(len(p.new_chunks) for p in plans)
        removed = sum(len(p.stale_chunks) for p in plans)
        if prune:
            present = {p.doc.source for p in prepared}
            for source in sorted(set(manifest.sources) - present):
                removed += self.store.writer.remove_source(source)
                del manifest.sources[source]
        self.store.records.save_manifest(manifest)
        total = sum(len(p.chunks) for p in prepared)
        return IndexSummary(len(prepared), added, total - added, removed, time.perf_counter() - started, rebuilt)

    def add(self, docs: Sequence[SourceText], progress: Progress | None = None) -> list[Added]:
        """Indexes already-read documents (an upload), replacing any of the same name.

        Every document is segmented and chunked first; one with nothing to index is refused before any write.
        """
        prepared = [self.prepare(doc) for doc in docs]
        empty = [p.doc.source for p in prepared if not p.chunks]
        if empty:
            raise IngestError(f"{', '.join(empty)}: no sentences to index (only headings, labels or link lines)")
        manifest = self.store.records.manifest() or self.new_manifest()
        if not manifest.compatible(self.store.expected):
            raise IncompatibleIndex("the index was built with other settings: run `citeqa index --rebuild`")
        replaced = {p.doc.source for p in prepared if p.doc.source in manifest.sources}
        self.write(prepared, manifest, progress)
        self.store.records.save_manifest(manifest)
        return [Added(p.doc.source, len(p.doc.text), len(p.chunks), p.doc.source in replaced) for p in prepared]

    def remove(self, source: str) -> bool:
        """Drops a document's chunks, sentences and copy; False when no such document is indexed."""
        manifest = self.store.records.manifest()
        if manifest is None or source not in manifest.sources:
            return False
        self.store.writer.remove_source(source)
        del manifest.sources[source]
        self.store.records.save_manifest(manifest)
        return True

    def new_manifest(self) -> Manifest:
        return Manifest(self.store.expected.embedding_model, self.store.expected.chunking)

    def write(self, prepared: Sequence[Prepared], manifest: Manifest, progress: Progress | None) -> list[SourcePlan]:
        """Writes the documents whose text changed, recording each in `manifest`, which is saved after each group of
        documents whose rows fill a Chroma batch (WRITE_BATCH)."""
        changed = [p for p in prepared if manifest.sources.get(p.doc.source, {}).get("sha256") != p.doc.sha256]
        plans = self.store.writer.plans([(p.doc, p.chunks, p.sentences) for p in changed])
        new_words = self.store.writer.new_words([(p.doc, p.sentences) for p in changed])
        tick = (progress or (lambda total: lambda n: None))(sum(p.to_embed for p in plans) + len(new_words))
        self.store.writer.add_words(new_words, tick)
        for group in write_groups(plans):
            self.store.writer.write_sources(group, tick)
            for plan in group:
                manifest.sources[plan.doc.source] = {"sha256": plan.doc.sha256, "chars": len(plan.doc.text),
                                                     "chunks": plan.chunks}
            self.store.records.save_manifest(manifest)
        return plans


def write_groups(plans: Sequence[SourcePlan]) -> Iterator[list[SourcePlan]]:
    """Consecutive documents whose new rows fill about one Chroma batch (a big document is a group alone)."""
    group: list[SourcePlan] = []
    rows = 0
    for plan in plans:
        group.append(plan)
        rows += plan.to_embed
        if rows >= WRITE_BATCH:
            yield group
            group, rows = [], 0
    if group:
        yield group
