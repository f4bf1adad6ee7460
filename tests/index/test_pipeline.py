import json
import shutil

import pytest

from index.embed import model_name
from index.load import IngestError, read_bytes
from index.pipeline import Added, Indexer
from index.records import IncompatibleIndex
from index.spans import SourceText
from index.store import IndexStore
from tests.conftest import ARTICLE, rows_only
from tests.samples import pdf_bytes, report_pdf


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


@pytest.mark.parametrize("name", ["../secret.txt", "../../secret.txt", "/tmp/secret.txt", "sub/../../secret.txt"])
def test_a_source_name_is_a_row_id_never_a_path(store, name):
    """Texts live in the store: a name that would climb folders reads and deletes nothing on disk."""
    target = (store.settings.data_dir / "docs" / name).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    created = not target.exists()
    if created:
        target.write_text("not a document", encoding="utf-8")
    try:
        assert store.records.text(name) is None
        store.writer.remove_source(name)
        assert target.read_text(encoding="utf-8") == "not a document"
    finally:
        if created:
            target.unlink()


def test_an_index_in_the_older_layout_is_moved_into_the_store(store, docs, caplog):
    """The layout before kept the manifest and the document texts in the data directory."""
    Indexer(store).run([docs])
    manifest, snapshot = store.records.manifest(), store.snapshot()
    data = store.settings.data_dir
    (data / "docs").mkdir(parents=True, exist_ok=True)
    (data / "docs" / ARTICLE.name).write_text(store.records.text(ARTICLE.name), encoding="utf-8")
    (data / "docs" / "note.md").write_text(store.records.text("note.md"), encoding="utf-8")
    (data / "manifest.json").write_text(json.dumps(manifest.__dict__), encoding="utf-8")
    for kind in ("documents", "header"):
        store.collections.client.delete_collection(f"{store.settings.collection}_{kind}")
    older = IndexStore(store.settings, store.embeddings, model_name(None))
    assert older.records.manifest() == manifest
    assert "moved the index's manifest and 2 document texts" in caplog.text
    assert older.snapshot().texts == snapshot.texts and older.records.generation() is not None
    assert not (data / "manifest.json").exists() and not (data / "docs").exists()


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
    assert store.records.text(ARTICLE.name) == text
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
    assert "Tuesday" in store.records.text("note.md")
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
    assert store.records.text("note.md") is None


def test_a_bad_file_leaves_the_index_untouched(store, docs):
    Indexer(store).run([docs])
    before, manifest, generation = stored(store), store.records.manifest(), store.records.generation()
    (docs / "note.md").write_text("changed, but next to a bad file", encoding="utf-8")
    (docs / "latin.txt").write_bytes("Caf\u00e9".encode("latin-1"))
    with pytest.raises(IngestError, match="latin.txt"):
        Indexer(store).run([docs])
    assert stored(store) == before and store.records.manifest() == manifest and store.records.generation() == generation


def test_other_chunking_is_refused_by_readers_and_rebuilt_by_the_indexer(store, docs, embeddings):
    Indexer(store).run([docs])
    other = store.settings.model_copy(update={"chunk_sentences": 2, "chunk_overlap": 0})
    changed = IndexStore(other, embeddings, model_name(None))
    with pytest.raises(IncompatibleIndex, match="--rebuild"):
        changed.check()
    summary = Indexer(changed).run([docs])
    assert summary.rebuilt and summary.kept == 0
    assert changed.check().chunking == {"chunk_sentences": 2, "chunk_overlap": 0, "segmentation": 2,
                                        "chunk_vectors": 2}
    assert all(len(m["sentence_starts"]) <= 2 for m in stored(changed).values())


def test_rebuild_starts_over(store, docs):
    Indexer(store).run([docs])
    count = len(stored(store))
    summary = Indexer(store).run([docs], rebuild=True)
    assert (summary.added, summary.kept, summary.rebuilt) == (count, 0, True)
    assert len(stored(store)) == count


def test_add_indexes_read_documents_and_says_when_it_replaced_one(store, docs):
    Indexer(store).run([docs])
    pdf = read_bytes(report_pdf(), "report.pdf", "report.pdf")
    first = Indexer(store).add([pdf])
    assert first == [Added("report.pdf", len(pdf.text), first[0].chunks, replaced=False)] and first[0].chunks >= 1
    assert store.records.text("report.pdf") == pdf.text
    assert not (store.settings.data_dir / "docs").exists()  # the text is in the store, nothing beside it
    shorter = read_bytes(pdf_bytes("The plant was closed in 2024. Nobody works there now."), "report.pdf", "x")
    [again] = Indexer(store).add([shorter])
    assert again.replaced and again.chars == len(shorter.text)
    sources = {c.span.source for c in store.snapshot().chunks}
    assert sources == {ARTICLE.name, "note.md", "report.pdf"}
    assert store.records.text("report.pdf") == shorter.text
    assert all(m["end"] <= len(shorter.text) for m in stored(store).values() if m["source"] == "report.pdf")


def test_add_refuses_a_document_with_nothing_to_index_before_writing(store, docs):
    Indexer(store).run([docs])
    before = stored(store)
    labels_only = SourceText("labels.md", "Recommended Videos\n\nSubscribe now\n\nAdvertisement")
    fine = SourceText("fine.txt", "The bridge opened on Monday. Traffic moved at once.")
    with pytest.raises(IngestError, match="labels.md: no sentences to index"):
        Indexer(store).add([fine, labels_only])
    assert stored(store) == before and store.records.text("fine.txt") is None


def test_remove_drops_chunks_sentences_and_copy(store, docs):
    Indexer(store).run([docs])
    assert Indexer(store).remove("note.md") is True
    assert {m["source"] for m in stored(store).values()} == {ARTICLE.name}
    assert not store.sentences.get(where={"source": "note.md"}, include=[])["ids"]
    assert store.records.text("note.md") is None and "note.md" not in store.records.manifest().sources
    assert Indexer(store).remove("note.md") is False


def test_a_write_cut_short_is_never_in_the_snapshot(store, docs):
    """Rows written without their document's copy (the copy is written last) match no stored text: left out."""
    Indexer(store).run([docs])
    before = store.snapshot()
    doc = SourceText("cut.txt", "The ferry sank on Friday. All forty passengers swam ashore. The captain was fined.")
    prepared = Indexer(store).prepare(doc)
    [plan] = store.writer.plans([(doc, prepared.chunks, prepared.sentences)])
    rows_only(store.chunks, plan.new_chunks)
    rows_only(store.sentences, dict(list(plan.new_sentences.items())[:1]))
    after = store.snapshot()
    assert [c.id for c in after.chunks] == [c.id for c in before.chunks]
    assert after.sentences == before.sentences and set(after.texts) == set(before.texts)
