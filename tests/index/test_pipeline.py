import shutil

import pytest

from index.embed import model_name
from index.load import IngestError
from index.pipeline import IncompatibleIndex, Indexer
from index.store import IndexStore
from tests.conftest import ARTICLE


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(ARTICLE, folder / ARTICLE.name)
    (folder / "note.md").write_text("# Note\n\nThe junta met on Monday. Talks went on.\n", encoding="utf-8")
    return folder


def stored(store: IndexStore) -> dict[str, dict]:
    rows = store.chunks.get(include=["metadatas"])
    return dict(zip(rows["ids"], rows["metadatas"], strict=True))


def test_index_stores_exact_offset_chunks_with_scalar_metadata(store, docs):
    summary = Indexer(store).run([docs])
    assert (summary.files, summary.kept, summary.removed) == (2, 0, 0)
    rows = stored(store)
    assert summary.added == len(rows) > 10
    text = ARTICLE.read_text(encoding="utf-8")
    for meta in rows.values():
        assert set(meta) == {"source", "start", "end", "paragraph", "content_hash", "sentence_starts",
                             "sentence_ends"}
        if meta["source"] == ARTICLE.name:
            assert meta["start"] == meta["sentence_starts"][0] and meta["end"] == meta["sentence_ends"][-1]
            assert "Recommended Videos" not in text[meta["sentence_starts"][0]:meta["sentence_ends"][0]]
    assert store.text(ARTICLE.name) == text
    assert summary.line().startswith("indexed 2 files:")
    snapshot = store.snapshot()
    assert {"junta", "soldiers", "monday"} <= set(snapshot.vocabulary) and "the" not in snapshot.vocabulary
    assert snapshot.vocabulary_vectors.shape == (len(snapshot.vocabulary), 384)


def test_reindexing_unchanged_files_changes_nothing(store, docs):
    Indexer(store).run([docs])
    before = stored(store)
    again = Indexer(store).run([docs])
    assert (again.added, again.removed, again.kept) == (0, 0, len(before))
    assert stored(store) == before


def test_changed_file_replaces_its_chunks_without_stale_or_duplicates(store, docs):
    Indexer(store).run([docs])
    before = stored(store)
    note = docs / "note.md"
    note.write_text("# Note\n\nThe junta met on Tuesday instead. Talks went on. Then they stopped.\n",
                    encoding="utf-8")
    summary = Indexer(store).run([docs])
    after = stored(store)
    assert summary.added >= 1 and summary.removed >= 1
    assert {k for k, m in before.items() if m["source"] == ARTICLE.name} == \
           {k for k, m in after.items() if m["source"] == ARTICLE.name}
    new_text = note.read_text(encoding="utf-8")
    for meta in (m for m in after.values() if m["source"] == "note.md"):
        assert meta["end"] <= len(new_text)
    assert "Tuesday" in store.text("note.md")
    snapshot = store.snapshot()
    assert len(snapshot.chunks) == len(after)
    assert all(snapshot.texts[s.span.source][s.span.start:s.span.end] for s in snapshot.sentences)


def test_prune_drops_files_that_are_gone(store, docs):
    Indexer(store).run([docs])
    (docs / "note.md").unlink()
    Indexer(store).run([docs])
    note_chunks = [k for k, m in stored(store).items() if m["source"] == "note.md"]
    assert note_chunks, "without --prune a vanished file stays indexed"
    pruned = Indexer(store).run([docs], prune=True)
    assert pruned.removed == len(note_chunks)
    assert {m["source"] for m in stored(store).values()} == {ARTICLE.name}
    assert store.text("note.md") is None


def test_a_bad_file_leaves_the_index_untouched(store, docs):
    Indexer(store).run([docs])
    before, manifest = stored(store), store.manifest_path.read_text()
    (docs / "note.md").write_text("changed, but next to a bad file", encoding="utf-8")
    (docs / "latin.txt").write_bytes("Caf\u00e9".encode("latin-1"))
    with pytest.raises(IngestError, match="latin.txt"):
        Indexer(store).run([docs])
    assert stored(store) == before and store.manifest_path.read_text() == manifest


def test_other_chunking_is_refused_by_readers_and_rebuilt_by_the_indexer(store, docs, embeddings):
    Indexer(store).run([docs])
    other = store.settings.model_copy(update={"chunk_sentences": 2, "chunk_overlap": 0})
    changed = IndexStore(other, embeddings, model_name(None))
    with pytest.raises(IncompatibleIndex, match="--rebuild"):
        Indexer(changed).check()
    summary = Indexer(changed).run([docs])
    assert summary.rebuilt and summary.kept == 0
    assert Indexer(changed).check().chunking == {"chunk_sentences": 2, "chunk_overlap": 0, "segmentation": 2}
    assert all(len(m["sentence_starts"]) <= 2 for m in stored(changed).values())


def test_rebuild_starts_over(store, docs):
    Indexer(store).run([docs])
    count = len(stored(store))
    summary = Indexer(store).run([docs], rebuild=True)
    assert (summary.added, summary.kept, summary.rebuilt) == (count, 0, True)
    assert len(stored(store)) == count
