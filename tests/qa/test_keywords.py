"""The keyword index scores as Lucene's BM25 does, and an edited index scores as one built from scratch."""

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from qa.keywords import K1, B, KeywordIndex

CHUNKS = [["river", "flood", "spring", "river"], ["farmer", "river"], ["school", "open", "2020"], []]


def lucene_bm25(chunks: list[list[str]], tokens: list[str]) -> list[float]:
    """BM25 as Lucene defines it, term by term (Kamphuis et al., ECIR 2020): the reference for the sparse form."""
    average = sum(map(len, chunks)) / len(chunks)
    scores = []
    for chunk in chunks:
        score = 0.0
        for token in tokens:
            holding = sum(token in other for other in chunks)
            if not holding:
                continue
            idf = math.log(1 + (len(chunks) - holding + 0.5) / (holding + 0.5))
            tf = chunk.count(token)
            score += idf * tf / (tf + K1 * (1 - B + B * len(chunk) / average))
        scores.append(score)
    return scores


def test_scores_are_lucene_bm25_with_repeats_counted_and_unknown_terms_ignored():
    index = KeywordIndex.build(CHUNKS)
    for tokens in (["river"], ["river", "spring"], ["river", "river"], ["unknown", "school"], ["unknown"], []):
        np.testing.assert_allclose(index.scores(tokens), lucene_bm25(CHUNKS, tokens), rtol=1e-6, atol=1e-7)
    assert index.scores(["river"])[0] > index.scores(["river"])[1] > 0 == index.scores(["river"])[2]
    assert "river" in index and "unknown" not in index and len(index) == 4


def test_an_empty_collection_scores_nothing():
    index = KeywordIndex.build([])
    assert len(index) == 0 and index.scores(["river"]).shape == (0,)


WORDS = st.sampled_from(["river", "flood", "farmer", "school", "bridge", "mill", "tower"])
CORPUS = st.lists(st.lists(WORDS, max_size=6), max_size=8)


@given(CORPUS, st.data())
def test_an_edited_index_scores_as_one_built_from_the_edited_chunks(old, data):
    """What a refresh relies on: drop some rows, add fresh ones, in any order, and nothing tells it from a rebuild
    (a word whose chunks all went is no longer held)."""
    fresh = data.draw(CORPUS)
    kept = data.draw(st.lists(st.sampled_from(range(len(old))), unique=True) if old else st.just([]))
    origin = np.asarray(data.draw(st.permutations(kept + [-1 - j for j in range(len(fresh))])), dtype=np.int64)
    chunks = [old[i] if i >= 0 else fresh[-1 - i] for i in origin.tolist()]
    before = KeywordIndex.build(old)
    edited, rebuilt = before.merged(origin, fresh), KeywordIndex.build(chunks)
    for tokens in (["river"], ["flood", "mill", "mill"], ["tower", "unknown"]):
        np.testing.assert_allclose(edited.scores(tokens), rebuilt.scores(tokens), rtol=1e-6, atol=1e-7)
    for word in ("river", "flood", "farmer", "school", "bridge", "mill", "tower"):
        assert (word in edited) == (word in rebuilt) == any(word in chunk for chunk in chunks)
    np.testing.assert_allclose(before.scores(["river"]), lucene_bm25(old, ["river"]) if old else [], atol=1e-6)
