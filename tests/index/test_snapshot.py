"""The snapshot's column tables give back exactly the sentences and chunks that were put in, and find rows by key."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from index.chunk import chunk_sentences, content_sentences
from index.pipeline import Indexer
from index.reading import StoredChunk, chunk_table, sentence_table
from index.segment import sentences as split_sentences
from index.snapshot import SentenceTable, merged
from index.spans import Sentence, Span
from index.writing import chunk_metadata
from tests.conftest import ARTICLE

TEXTS = {"b.txt": "Second file. It has two sentences.", "a.txt": ARTICLE.read_text(encoding="utf-8")}


def tables():
    """Both documents' content sentences and chunks, as `IndexStore.snapshot` builds them from Chroma's rows."""
    sentences, chunks = [], []
    for source in sorted(TEXTS):
        found = split_sentences(TEXTS[source], source)
        sentences += content_sentences(found)
        chunks += chunk_sentences(TEXTS[source], found, size=4, overlap=2)
    stored = [StoredChunk(c.id, **chunk_metadata(c)) for c in chunks]
    rows = [(s.span.source, s.span.start, s.span.end, s.paragraph) for s in sentences]
    return sentences, chunks, sentence_table(sorted(TEXTS), rows), chunk_table(TEXTS, sorted(TEXTS), stored)


def test_rows_read_back_as_the_sentences_and_chunks_put_in():
    sentences, chunks, sentence_rows, chunk_rows = tables()
    assert list(sentence_rows) == sentences and len(sentence_rows) == len(sentences) > 20
    assert list(chunk_rows) == chunks  # search text and content hash rebuilt from the document's text
    assert chunk_rows.count_by_source() == {"a.txt": len(chunks) - 1, "b.txt": 1}


def test_rows_are_found_by_source_and_start_and_by_chunk_id():
    sentences, chunks, sentence_rows, chunk_rows = tables()
    for row, sentence in enumerate(sentences):
        assert sentence_rows.row(sentence.span.source, sentence.span.start) == row
    second = sentences[1].span
    assert sentence_rows.row(second.source, second.start + 1) is None  # inside a sentence is no sentence's start
    assert sentence_rows.row("missing.txt", 0) is None
    for row, chunk in enumerate(chunks):
        assert chunk_rows.row(chunk.id) == row and chunk_rows[row].id == chunk.id
    assert chunk_rows.row("0" * 40) is None
    names = ["missing.txt", *sorted(TEXTS)]  # numbered unlike the table, with a source it lacks
    asked = [(names.index(s.span.source), s.span.start) for s in sentences] + [(1, second.start + 1), (0, 0)]
    found = sentence_rows.rows(names, np.asarray([n for n, _ in asked]), np.asarray([start for _, start in asked]))
    assert found.tolist() == [*range(len(sentences)), -1, -1]


def test_sentences_out_of_order_are_refused():
    with pytest.raises(ValueError, match="order"):
        sentence_table(["a.txt"], [("a.txt", 10, 20, 0), ("a.txt", 0, 9, 0)])


@given(st.dictionaries(st.sampled_from(["a", "b", "c/d.txt", "é.md"]),
                       st.sets(st.integers(0, 2**31 - 2), min_size=1, max_size=30), min_size=1))
def test_every_sentence_is_found_where_it_starts(starts):
    """Any sources and starts (up to 2^31 characters): the row found is the row of that sentence."""
    rows = sorted((source, start, start + 1, 0) for source, found in starts.items() for start in found)
    table = sentence_table(sorted(starts), rows)
    assert [table.row(source, start) for source, start, _, _ in rows] == list(range(len(rows)))
    assert table == SentenceTable(table.sources, table.source, table.start, table.end, table.paragraph)
    assert table[0] == Sentence(Span(rows[0][0], rows[0][1], rows[0][2]), 0)
    assert np.all(np.diff(table.keys) > 0)


def write(folder, texts: dict[str, str]) -> None:
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")


def assert_same(snapshot, other) -> None:
    assert snapshot.texts == other.texts
    assert snapshot.sentences == other.sentences
    assert list(snapshot.chunks) == list(other.chunks)
    assert [snapshot.chunks[i].id for i in range(len(snapshot.chunks))] == [other.chunks[i].id for i in
                                                                           range(len(other.chunks))]
    np.testing.assert_array_equal(snapshot.sentence_vectors, other.sentence_vectors)
    assert sorted(snapshot.vocabulary) == sorted(other.vocabulary)
    vectors = dict(zip(other.vocabulary, other.vocabulary_vectors.tolist(), strict=True))
    assert all(vectors[w] == v for w, v in zip(snapshot.vocabulary, snapshot.vocabulary_vectors.tolist(), strict=True))


def test_a_snapshot_of_the_changed_documents_merged_into_the_old_one_reads_as_a_whole_new_snapshot(store, tmp_path):
    """What an incremental refresh relies on: the old snapshot less the changed and removed documents, plus a
    snapshot of the changed ones, is exactly what reading everything again gives."""
    folder = tmp_path / "docs"
    folder.mkdir()
    write(folder, {"a.txt": "Alpha opened in 1901. It was built of stone. The roof is copper.\n",
                   "b.txt": "Bravo is a river. It floods in spring. Fishermen use it.\n",
                   "c.txt": "Charlie founded the club. He was a baker. The club still meets.\n"})
    indexer = Indexer(store)
    indexer.run([folder])
    before = store.snapshot()
    write(folder, {"b.txt": "Bravo is a long river. It floods every spring. Fishermen and farmers use it.\n",
                   "d.txt": "Delta is a new district. Its school opened in 2020.\n"})
    (folder / "c.txt").unlink()
    indexer.run([folder], prune=True)
    partial = store.snapshot({"b.txt", "d.txt"}, known_words=before.vocabulary)
    assert partial.vocabulary and not set(partial.vocabulary) & set(before.vocabulary)  # only the new words
    after, origin, chunk_origin = merged(before, partial, {"b.txt", "c.txt", "d.txt"})
    assert_same(after, store.snapshot())
    assert set(after.texts) == {"a.txt", "b.txt", "d.txt"}
    kept = [after.sentences.span(i) for i in range(len(after.sentences)) if origin[i] >= 0]
    assert kept == [before.sentences.span(int(i)) for i in origin if i >= 0]
    assert {span.source for span in kept} == {"a.txt"}
    assert [after.chunks[i].id for i in range(len(after.chunks)) if chunk_origin[i] >= 0] == \
        [before.chunks[int(i)].id for i in chunk_origin if i >= 0]
    assert [after.chunks[i].id for i in range(len(after.chunks)) if chunk_origin[i] < 0] == \
        [partial.chunks[-1 - int(i)].id for i in chunk_origin if i < 0]
    assert {after.chunks[i].span.source for i in range(len(after.chunks)) if chunk_origin[i] >= 0} == {"a.txt"}


def test_merging_nothing_changed_gives_the_same_snapshot(store, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    write(folder, {"a.txt": "Alpha opened in 1901. It was built of stone.\n"})
    Indexer(store).run([folder])
    whole = store.snapshot()
    after, origin, chunk_origin = merged(whole, store.snapshot(set(), known_words=whole.vocabulary), set())
    assert_same(after, whole)
    assert origin.tolist() == list(range(len(whole.sentences)))
    assert chunk_origin.tolist() == list(range(len(whole.chunks)))
