"""Reads and deletes go to Chroma a page at a time (one request over ~32k SQL variables fails in Chroma)."""

import numpy as np

import index.chroma
from index.load import load_sources
from index.pipeline import Indexer
from tests.conftest import ARTICLE


def test_a_snapshot_read_in_small_pages_is_the_snapshot_read_whole(store, monkeypatch):
    Indexer(store).run([ARTICLE])
    whole = store.snapshot()
    monkeypatch.setattr(index.chroma, "PAGE", 4)  # 21 chunks, 43 sentences: several pages each, the last one short
    paged = store.snapshot()
    assert [c.id for c in paged.chunks] == [c.id for c in whole.chunks] and len(paged.chunks) == 21
    assert paged.sentences == whole.sentences and np.array_equal(paged.sentence_vectors, whole.sentence_vectors)
    assert paged.vocabulary == whole.vocabulary and len(paged.vocabulary) > 4
    prepared = Indexer(store).prepare(load_sources([ARTICLE])[0])
    assert store.writer.new_words([(prepared.doc, prepared.sentences)]) == []  # every word found, 4 ids a lookup


def test_removing_a_document_deletes_its_rows_page_by_page(store, monkeypatch):
    Indexer(store).run([ARTICLE])
    monkeypatch.setattr(index.chroma, "PAGE", 5)
    assert store.writer.remove_source(ARTICLE.name) == 21
    assert store.chunks.count() == 0 and not store.sentences.get(include=[])["ids"]
