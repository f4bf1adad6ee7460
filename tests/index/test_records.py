"""The store's records of itself: the header with its generation token, and one row per document."""

import index.records
from index.chroma import Collections
from index.records import Manifest, Records
from index.settings import IndexSettings
from index.spans import SourceText


def records(tmp_path) -> Records:
    return Records(Collections(IndexSettings(data_dir=tmp_path, collection="records")))


def test_nothing_is_recorded_before_the_first_write(tmp_path):
    empty = records(tmp_path)
    assert empty.manifest() is None and empty.generation() is None and empty.texts(["a.txt"]) == {}


def test_every_header_write_is_a_new_generation(tmp_path):
    kept = records(tmp_path)
    header = Manifest("minilm", {"chunk_sentences": 4})
    kept.save_manifest(header)
    first = kept.generation()
    kept.save_manifest(header)
    assert first and kept.generation() not in (None, first)
    assert kept.manifest() == header  # no documents yet


def test_document_rows_go_in_batches_and_read_back_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(index.records, "DOCUMENT_BATCH_CHARS", 10)  # each document a request of its own
    kept = records(tmp_path)
    docs = [SourceText("a.txt", "Zorblax opened.\r\n"), SourceText("b.md", "é" * 30), SourceText("c.txt", "x")]
    kept.write_documents([(doc, 1) for doc in docs])
    kept.save_manifest(Manifest("minilm", {}))
    assert kept.texts(["a.txt", "b.md", "c.txt", "gone.txt"]) == {d.source: d.text for d in docs}
    assert kept.manifest().sources["b.md"] == {"sha256": docs[1].sha256, "chars": 30, "chunks": 1}
    kept.remove_document("a.txt")
    assert kept.text("a.txt") is None and sorted(kept.manifest().sources) == ["b.md", "c.txt"]
