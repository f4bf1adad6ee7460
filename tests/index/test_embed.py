"""The embedding model's two runtimes: a question embedded by the exported ONNX graph lands where
sentence-transformers puts it, and a model's graph is named after its weights."""

import os

import numpy as np

from index.embed import (
    STATIC,
    STATIC_DIR,
    QuestionGraph,
    StaticTable,
    default_model_path,
    load_embeddings,
    weights_key,
)

QUESTIONS = [
    "What did the junta say about Wagner?",
    "Niger's junta — ça va? 北京 and Ōsaka",  # accents, CJK: the tokenizer's own normalization
    "x",
    " ".join(["Wagner"] * 600),  # past the model's 256 tokens: cut where sentence-transformers cuts
]


def test_a_question_is_embedded_by_the_graph_where_sentence_transformers_puts_it(embeddings):
    assert embeddings.graph is not None
    from_graph = np.asarray([embeddings.embed_query(q) for q in QUESTIONS])
    from_batches = np.asarray(embeddings.batches.embed_documents(QUESTIONS))
    assert from_graph.shape == (len(QUESTIONS), 384)
    np.testing.assert_allclose(from_graph, from_batches, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(from_graph, axis=1), 1.0, atol=1e-5)


def test_the_static_model_is_read_as_a_table_giving_sentence_transformers_vectors():
    """Without torch: the same tokens (cut at the tokenizer's 128), the same folded table, mean and norm."""
    from sentence_transformers import SentenceTransformer

    static = load_embeddings(STATIC)
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


def test_a_model_without_mean_pooling_gets_no_graph():
    class Transformer:
        auto_model = object()

    class ClsPooling:
        def get_config_dict(self):
            return {"pooling_mode": "cls"}

    assert QuestionGraph.of([Transformer(), ClsPooling()], folder=None) is None


def test_a_failed_export_leaves_questions_to_sentence_transformers(embeddings, tmp_path, monkeypatch, caplog):
    import index.embed

    def fail(transformer, path):
        raise OSError("disk full")

    monkeypatch.setattr(index.embed, "QUESTION_GRAPH_DIR", tmp_path)
    monkeypatch.setattr(index.embed, "export_question_graph", fail)
    assert QuestionGraph.of(embeddings.batches._client, default_model_path()) is None
    assert "disk full" in caplog.text
