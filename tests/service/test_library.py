"""The library writes, then refreshes the chain: new documents answer at once, a begun answer stays whole."""

import threading

import pytest

from index.embed import model_name
from index.load import IngestError, TooLarge
from index.pipeline import Indexer
from index.settings import IndexSettings
from index.store import IndexStore
from qa.answer import Answer
from qa.chain import CitedQA
from qa.settings import AnsweringSettings
from service.library import DocumentLibrary, Upload
from tests.conftest import SEEDS

REPORT = "The Tahoua dam holds 90 million cubic metres of water, engineers said. It was finished in 2011."


@pytest.fixture
def library(tmp_path, embeddings) -> DocumentLibrary:
    store = IndexStore(IndexSettings(data_dir=tmp_path / "data"), embeddings, model_name(None))
    Indexer(store).run([SEEDS])
    return DocumentLibrary(CitedQA(store, AnsweringSettings()), max_bytes=2**19)  # 0.5 MB


def sent(name: str, text: str) -> Upload:
    raw = text.encode("utf-8")
    return Upload(name, len(raw), lambda: raw)


def test_added_documents_answer_at_once_and_removed_ones_are_not_cited(library):
    qa = library.qa
    question = "How much water does the Tahoua dam hold?"
    assert not qa.invoke(question).grounded
    [added] = library.add(library.read_all([sent("dam.txt", REPORT)]))
    assert (added.source, added.chars, added.replaced) == ("dam.txt", len(REPORT), False)
    answer = qa.invoke(question)
    assert "90 million cubic metres" in answer.answer and answer.citations[0].source == "dam.txt"
    assert {"source": "dam.txt", "chars": len(REPORT), "chunks": 1} in qa.sources()
    assert library.remove("dam.txt") and not library.remove("dam.txt")
    assert all(c.source != "dam.txt" for c in qa.invoke(question).citations) and "dam.txt" not in qa.texts


def test_an_answer_begun_before_a_refresh_finishes_on_the_documents_it_began_with(library):
    qa = library.qa
    library.add(library.read_all([sent("dam.txt", REPORT)]))
    parts = qa.stream("How much water does the Tahoua dam hold?")
    next(parts)
    library.add(library.read_all([sent("dam.txt", "Nothing is known. The dam was never built, say the papers.")]))
    *_, answer = parts
    assert isinstance(answer, Answer) and "90 million" in answer.answer
    assert [c.quote for c in answer.citations] == [REPORT[c.start:c.end] for c in answer.citations]
    assert "never built" in qa.texts["dam.txt"]


def test_concurrent_uploads_are_written_one_at_a_time_and_all_kept(library):
    names = [f"note{i}.txt" for i in range(3)]
    threads = [threading.Thread(target=lambda n=n: library.add(library.read_all(
        [sent(n, f"The {n} pump in Maradi was repaired on Monday. It works again.")]))) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(names) <= set(library.qa.texts) and set(names) <= set(library.qa.store.records.manifest().sources)


def test_read_all_refuses_the_set_before_reading_a_byte_of_a_file_too_large(library):
    def never() -> bytes:
        raise AssertionError("read a file that was too large")

    with pytest.raises(TooLarge, match=r"nothing was indexed: big.txt: 1.0 MB is over the 0.5 MB upload limit"):
        library.read_all([sent("ok.txt", "Fine. Text."), Upload("big.txt", 2**20, never)])
    with pytest.raises(IngestError, match="no files"):
        library.read_all([])
