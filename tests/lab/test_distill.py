"""The static embedding model: the distiller's steps, a whole distillation from a tiny model, and the shipped one."""

import json
import shutil

import numpy as np
import pytest

from index.embed import (
    STATIC,
    STATIC_DIR,
    STATIC_NAME,
    EmbeddingModelMissing,
    default_model_path,
    embeddings_for,
    model_folder,
    model_name,
)
from index.pipeline import Indexer
from index.settings import IndexSettings
from index.store import open_store
from lab.distill import distill, reduce, zipf_weights
from tests.conftest import ARTICLE


def test_reduce_keeps_the_widest_axes_first_with_a_fixed_sign():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((500, 6)) * np.array([10.0, 5.0, 2.0, 1.0, 0.5, 0.1])
    reduced = reduce(vectors, 3)
    assert reduced.shape == (500, 3)
    spread = reduced.var(axis=0)
    assert spread[0] > spread[1] > spread[2]
    assert np.allclose(spread, [100.0, 25.0, 4.0], rtol=0.2)
    # the same data flipped gives the same result: each axis's sign is fixed by its largest value
    assert np.allclose(reduce(-vectors, 3), reduced)


def test_zipf_weights_grow_with_rank_and_stay_below_one():
    weights = zipf_weights(30_000)
    assert np.all(np.diff(weights) > 0)
    assert 0.0 < weights[0] < 0.1 and 0.9 < weights[-1] < 1.0


def test_distilling_a_tiny_model_gives_a_loadable_sentence_transformer(tmp_path):
    """The whole command on a one-layer, 16-wide BERT with MiniLM's vocabulary (seconds instead of half a minute)."""
    from transformers import BertConfig, BertModel

    source = tmp_path / "tiny"
    config = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32)
    BertModel(config).save_pretrained(str(source))
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(default_model_path() / name, source / name)
    out = distill(tmp_path / "static", source=source, dimensions=8)
    assert json.loads((out / "distilled.json").read_text())["dimensions"] == 8
    embeddings = embeddings_for(IndexSettings(embedding_model=str(out)))
    vectors = np.asarray(embeddings.embed_documents(["The junta took power.", "Wagner"]))
    assert vectors.shape == (2, 8)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_the_shipped_static_model_is_found_by_name_and_recorded_by_a_stable_name():
    assert model_folder(STATIC) == STATIC_DIR and model_folder(None) == default_model_path()
    assert model_name(STATIC) == STATIC_NAME
    embeddings = embeddings_for(IndexSettings(embedding_model=STATIC))
    moscow, russia, rainforest = np.asarray(embeddings.embed_documents(["moscow", "russia", "rainforest"]))
    assert moscow.shape == (256,)
    assert moscow @ russia > 0.7 > moscow @ rainforest  # near enough for retrieval's word expansion


def test_a_missing_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(EmbeddingModelMissing, match="no sentence-transformers model in"):
        embeddings_for(IndexSettings(embedding_model=str(tmp_path)))


def test_the_chain_answers_from_an_index_built_with_the_static_model(tmp_path):
    from qa.chain import CitedQA
    from qa.settings import AnsweringSettings

    store = open_store(IndexSettings(data_dir=tmp_path, embedding_model=STATIC))
    Indexer(store).run([ARTICLE])
    assert store.records.manifest().embedding_model == STATIC_NAME
    answer = CitedQA(store, AnsweringSettings()).invoke("Who is the leader of Niger's junta?")
    assert any("Tchiani" in citation.quote for citation in answer.citations)
