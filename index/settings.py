"""The index's settings: where the index lives and how documents are cut. Every value can be set with a
`CITEQA_` environment variable of the same name (CITEQA_DATA_DIR, CITEQA_CHROMA_URL, …)."""

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Every section reads the same flat `CITEQA_` names the contract lists; sections only group them in code.
FROM_ENVIRONMENT = SettingsConfigDict(env_prefix="CITEQA_", extra="ignore")


class IndexSettings(BaseSettings):
    model_config = FROM_ENVIRONMENT

    data_dir: Path = Field(Path(".citeqa"), description="The embedded store (chunks, sentences, document texts), the "
                           "server lock and the feedback; with CITEQA_CHROMA_URL only the lock and the feedback.")
    chroma_url: str | None = Field(None, description="Use this Chroma server instead of the embedded store.")
    collection: str = Field("citeqa", min_length=3, max_length=40, description="Chroma collection name prefix.")
    seeds_dir: Path = Field(Path("seeds"), description="What `citeqa index` indexes when given no path.")
    embedding_model: str | None = Field(None, description="Unset: MiniLM (from its package); `static`: the static "
                                        "model distilled from it (index/static: ~75x faster to embed, a little "
                                        "less exact); or a sentence-transformers folder.")
    chunk_sentences: int = Field(4, ge=1, le=20, description="Sentences per retrieval chunk.")
    chunk_overlap: int = Field(2, ge=0, le=19, description="Sentences shared by neighbouring chunks (at most one "
                               "less than chunk_sentences; more is cut to that).")
    cache_dir: Path | None = Field(None, description="Where the embedding model's ONNX graph is exported, once per "
                                   "machine; unset: $XDG_CACHE_HOME/citeqa (~/.cache/citeqa).")
    threads: int | None = Field(None, ge=1, le=256, description="CPU threads the models use (the reader reads this "
                                "many sentences at once); unset: every core, shared among `serve --workers`.")

    @property
    def graph_dir(self) -> Path:
        cache = self.cache_dir or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "citeqa"
        return cache / "onnx"

    @property
    def cores(self) -> int:
        return self.threads or os.cpu_count() or 1

    @property
    def chunking(self) -> dict[str, int]:
        return {"chunk_sentences": self.chunk_sentences, "chunk_overlap": min(self.chunk_overlap,
                                                                            self.chunk_sentences - 1)}
