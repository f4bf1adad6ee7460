"""Hybrid retrieval on a small hand-built index of one chunk per document: what keywords find, what meaning finds,
what a follow-up's context adds, and the limits of what comes back."""

import pytest

from index.embed import model_name
from index.settings import IndexSettings
from index.store import IndexStore
from index.text import terms
from qa.chain import CitedQA
from qa.question import read
from qa.retrieve import RRF_K, HybridRetriever, Query, Retrieved
from qa.settings import AnsweringSettings
from tests.conftest import small_index

TEXTS = {
    "bridge.txt": ("The Tern Bridge crosses the river Ouse at Hollow. It was opened in May 1932 by the mayor. "
                   "Its designer was Ada Brunel, an engineer from Bristol."),
    "museum.txt": ("The Hollow Museum of Clocks stands beside the old market. It opened in October 1987 in a former "
                   "grain store. Its collection holds 412 clocks from four centuries."),
    "garden.txt": ("Seeds are stored in the vault under the Zorblax protocol. Frost protects the seed vault in the "
                   "mountain during winter. Volunteers count the seedlings every spring."),
    "kitchen.txt": ("The canteen serves soup and bread to the volunteers at noon. "
                    "Its cook bakes forty loaves before dawn."),
}
BRIDGE_TURNS = [{"role": "user", "content": "Who designed the Tern Bridge?"},
                {"role": "assistant", "content": "Ada Brunel [1]"}]


@pytest.fixture(scope="module")
def store(tmp_path_factory, embeddings) -> IndexStore:
    return small_index(tmp_path_factory, embeddings, TEXTS, "retrieve")


@pytest.fixture(scope="module")
def retriever(store) -> HybridRetriever:
    return retriever_over(store, top_k=6)


def retriever_over(store: IndexStore, top_k: int) -> HybridRetriever:
    return HybridRetriever(store, store.snapshot(), store.embeddings, top_k)


def sources(retrieved: Retrieved) -> list[str]:
    return [chunk.span.source for chunk, _ in retrieved.chunks]


def chunk_of(retriever: HybridRetriever, source: str) -> str:
    (chunk_id,) = [chunk.id for chunk in retriever.chunks if chunk.span.source == source]
    return chunk_id


def keyword_ids(retriever: HybridRetriever, query: Query, expansions: dict) -> list[str]:
    return [retriever.chunks[row].id for row in retriever.keyword_ranking(query, expansions)]


def test_every_document_is_one_chunk(retriever):
    """The premise of the tests below: a chunk stands for its document."""
    assert sorted(chunk.span.source for chunk in retriever.chunks) == sorted(TEXTS)


def test_a_rare_exact_word_wins_where_dense_leans_elsewhere(store, retriever):
    """"Zorblax" is only in the garden text; by meaning alone ("timepieces") the museum looks closer, but the one
    keyword match ranks first once both rankings are fused."""
    query = Query(read("Which timepieces does Zorblax cover?"))
    dense = store.dense_search(retriever.embed(query).tolist(), len(TEXTS))
    assert dense[0][0] == chunk_of(retriever, "museum.txt")  # the premise: dense alone picks the museum
    assert keyword_ids(retriever, query, retriever.expand(query)[0]) == [chunk_of(retriever, "garden.txt")]
    assert sources(retriever.run(query))[:2] == ["garden.txt", "museum.txt"]


@pytest.mark.parametrize(("question", "source"), [
    ("Which building keeps timepieces?", "museum.txt"),
    ("Who makes the meals?", "kitchen.txt"),
])
def test_a_paraphrase_sharing_no_word_is_found_by_meaning(retriever, question, source):
    """No question word (nor any expansion of one) is in the text, so keywords rank nothing: dense finds it."""
    query = Query(read(question))
    assert not set(query.question.terms) & set(terms(TEXTS[source]))
    retrieved = retriever.run(query)
    assert retrieved.expansions == {} and retriever.keyword_ranking(query, {}) == []
    assert sources(retrieved)[0] == source


def test_a_word_the_documents_never_use_is_searched_as_their_nearest_word(retriever):
    """"midday" is in no document; it stands for "noon" (near enough by embedding), which keywords then match."""
    query = Query(read("What feeds the helpers at midday?"))
    retrieved = retriever.run(query)
    assert [word for word, _ in retrieved.expansions["midday"]][:1] == ["noon"]
    assert keyword_ids(retriever, query, retrieved.expansions) == [chunk_of(retriever, "kitchen.txt")]
    assert sources(retrieved)[0] == "kitchen.txt"


@pytest.mark.parametrize(("context", "source"), [
    ("Who designed the Tern Bridge?", "bridge.txt"),
    ("How many clocks are in the Hollow Museum?", "museum.txt"),
])
def test_the_context_of_a_follow_up_decides_which_subject_it_asks_about(retriever, context, source):
    """"When did it open?" could ask about the bridge or the museum (both opened); the earlier turn's subject
    ranks first."""
    assert sources(retriever.run(Query(read("When did it open?"), context)))[0] == source


def test_history_reaches_retrieval_only_for_a_follow_up(store):
    """Through the chain: "it" takes the earlier turn as context and finds the bridge; a question that names its
    subject is searched alone, whatever came before."""
    qa = CitedQA(store, AnsweringSettings())
    follow_up = qa.retrieval.invoke({"question": "When did it open?", "history": BRIDGE_TURNS})
    assert "Tern Bridge" in follow_up.query.context and sources(follow_up)[0] == "bridge.txt"
    standalone = qa.retrieval.invoke({"question": "When did the museum open?", "history": BRIDGE_TURNS})
    assert standalone.query.context == "" and sources(standalone)[0] == "museum.txt"


@pytest.mark.parametrize("top_k", [1, 2, 4, 10])
def test_top_k_caps_the_chunks_returned_best_first(store, top_k):
    """At most `top_k` distinct chunks (all four when more are asked for), in falling fused score."""
    retrieved = retriever_over(store, top_k).run(Query(read("When did the museum open?")))
    scores = [score for _, score in retrieved.chunks]
    assert len(retrieved.chunks) == min(top_k, len(TEXTS)) == len({chunk.id for chunk, _ in retrieved.chunks})
    assert scores == sorted(scores, reverse=True) and sources(retrieved)[0] == "museum.txt"


def test_a_chunk_first_by_meaning_and_by_keyword_gets_both_reciprocal_ranks(retriever):
    """Reciprocal rank fusion: first in both rankings scores 2 / (RRF_K + 1), the most a chunk can get."""
    (best, score), *_ = retriever.run(Query(read("What is the Zorblax protocol?"))).chunks
    assert best.span.source == "garden.txt" and score == pytest.approx(2 / (RRF_K + 1))


def test_an_empty_index_returns_no_chunks(tmp_path, embeddings):
    """Nothing indexed: no chunks and no expansions, and the chain abstains rather than failing."""
    empty = IndexStore(IndexSettings(data_dir=tmp_path / "empty"), embeddings, model_name(None))
    retrieved = retriever_over(empty, top_k=6).run(Query(read("When did the museum open?")))
    assert retrieved.chunks == [] and retrieved.expansions == {}
    assert not CitedQA(empty, AnsweringSettings()).invoke("When did the museum open?").grounded
