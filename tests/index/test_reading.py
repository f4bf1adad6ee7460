"""Reading the store back: only rows that still match their document's stored text reach a snapshot."""

import logging

from index.pipeline import Indexer
from index.spans import SourceText
from tests.conftest import ARTICLE


def test_rows_whose_document_text_changed_underneath_are_left_out(store, caplog):
    Indexer(store).run([ARTICLE])
    whole = store.snapshot()
    assert ARTICLE.name in whole.texts and len(whole.chunks) == 21
    store.records.write_documents([(SourceText(ARTICLE.name, "Another text entirely."), 1)])  # a write cut short
    with caplog.at_level(logging.WARNING, logger="citeqa"):
        partial = store.snapshot()
    assert len(partial.chunks) == 0 and len(partial.sentences) == 0 and partial.texts == {}
    assert "left out 21 chunks and" in caplog.text


def test_a_dense_search_finds_the_chunk_it_was_given(store):
    Indexer(store).run([ARTICLE])
    snapshot = store.snapshot()
    chunk = snapshot.chunks[3]
    vector = store.embeddings.embed_query(chunk.text)
    best, similarity = store.dense_search(vector, 3)[0]
    assert best == chunk.id and similarity > 0.9
