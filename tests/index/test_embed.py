"""The embedding model without torch: texts embedded by the exported ONNX graph (or the static table) land where
sentence-transformers puts them, a model's graph is named after its weights, and other models keep
sentence-transformers."""

import json
import os

import numpy as np
import pytest

from index.embed import (
    STATIC,
    STATIC_DIR,
    StaticTable,
    TransformerGraph,
    default_model_path,
    embeddings_for,
    load_embeddings,
    mean_pooled,
    weights_key,
)
from index.settings import IndexSettings

QUESTIONS = [
    "What did the junta say about Wagner?",
    "Niger's junta — ça va? 北京 and Ōsaka",  # accents, CJK: the tokenizer's own normalization
    "x",
    " ".join(["Wagner"] * 600),  # past the model's 256 tokens: cut where sentence-transformers cuts
]


def test_questions_and_batches_are_embedded_by_the_graph_where_sentence_transformers_puts_them(embeddings):
    from sentence_transformers import SentenceTransformer

    assert isinstance(embeddings, TransformerGraph)
    texts = [*QUESTIONS, "two\nlines", "", "  spaced  ", *(f"Sentence {i} " * i for i in range(1, 40))]  # padded
    reference = SentenceTransformer(str(default_model_path()), device="cpu").encode(
        [t.replace("\n", " ") for t in texts], normalize_embeddings=True)
    from_batches = np.asarray(embeddings.embed_documents(texts))
    from_questions = np.asarray([embeddings.embed_query(q) for q in QUESTIONS])
    assert from_batches.shape == (len(texts), 384)
    np.testing.assert_allclose(from_batches, reference, atol=1e-5)
    np.testing.assert_allclose(from_questions, reference[:len(QUESTIONS)], atol=1e-5)


def test_the_static_model_is_read_as_a_table_giving_sentence_transformers_vectors():
    """Without torch: the same tokens (cut at the tokenizer's 128), the same folded table, mean and norm."""
    from sentence_transformers import SentenceTransformer

    static = embeddings_for(IndexSettings(embedding_model=STATIC))
    assert isinstance(static, StaticTable)
    texts = [*QUESTIONS, "two\nlines", "", "Ghana's cocoa board, 1947."]
    reference = SentenceTransformer(str(STATIC_DIR), device="cpu").encode(
        [t.replace("\n", " ") for t in texts], normalize_embeddings=True)
    ours = np.asarray(static.embed_documents(texts))
    assert ours.shape == (len(texts), 256)
    np.testing.assert_allclose(ours, reference, atol=1e-6)
    np.testing.assert_allclose(static.embed_query(texts[0]), ours[0])


def test_a_graph_is_named_after_its_weights_so_a_changed_model_is_exported_anew(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"first")
    first = weights_key(tmp_path)
    assert weights_key(tmp_path) == first
    weights.write_bytes(b"second weights")
    assert weights_key(tmp_path) != first


def test_the_same_model_in_another_folder_reuses_its_graph(tmp_path):
    """Each fresh clone's virtual environment holds its own copy of the model: one graph serves them all."""
    one, other = tmp_path / "one", tmp_path / "other"
    for folder in (one, other):
        folder.mkdir()
        (folder / "config.json").write_text('{"hidden_size": 384}')
        (folder / "model.safetensors").write_bytes(bytes(range(256)) * 16384)  # 4 MiB: start, middle and end
    os.utime(other / "model.safetensors", (0, 0))
    assert weights_key(one) == weights_key(other)
    (other / "config.json").write_text('{"hidden_size": 768}')
    assert weights_key(one) != weights_key(other)


def model_folder(tmp_path, pooling: dict, kinds: tuple[str, ...] = ("Transformer", "Pooling", "Normalize")):
    folder = tmp_path / "model"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "modules.json").write_text(json.dumps([{"idx": i, "path": "1_Pooling" if kind == "Pooling" else "",
                                                      "type": f"sentence_transformers.models.{kind}"}
                                                     for i, kind in enumerate(kinds)]))
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return folder


@pytest.mark.parametrize(("pooling", "kinds", "graph"), [
    ({"pooling_mode_mean_tokens": True}, ("Transformer", "Pooling", "Normalize"), True),  # MiniLM
    ({"pooling_mode": "mean"}, ("Transformer", "Pooling"), True),  # newer configs
    ({"pooling_mode_cls_token": True}, ("Transformer", "Pooling", "Normalize"), False),
    ({"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}, ("Transformer", "Pooling"), False),
    ({"pooling_mode_mean_tokens": True}, ("Transformer", "Pooling", "Dense", "Normalize"), False),
])
def test_only_a_transformer_with_mean_pooling_runs_as_a_graph(tmp_path, pooling, kinds, graph):
    assert mean_pooled(model_folder(tmp_path, pooling, kinds)) is graph


def test_a_failed_export_leaves_the_model_to_sentence_transformers(tmp_path, monkeypatch, caplog):
    import index.embed

    def fail(folder, path):
        raise OSError("disk full")

    monkeypatch.setattr(index.embed, "export_graph", fail)
    fallback = load_embeddings.__wrapped__(None, tmp_path, 1)
    assert not isinstance(fallback, TransformerGraph) and len(fallback.embed_query("Wagner")) == 384
    assert "disk full" in caplog.text
