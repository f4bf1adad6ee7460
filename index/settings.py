"""The one configuration object; every value can be set with a `CITEQA_` environment variable."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITEQA_", extra="ignore")

    data_dir: Path = Field(Path(".citeqa"), description="Where the index, manifest and document copies live.")
    chroma_url: str | None = Field(None, description="Use this Chroma server instead of the embedded store.")
    collection: str = Field("citeqa", min_length=3, max_length=40, description="Chroma collection name prefix.")
    seeds_dir: Path = Field(Path("seeds"), description="What `citeqa index` indexes when given no path.")
    embedding_model: Path | None = Field(None, description="Sentence-transformers folder; default: MiniLM package.")
    chunk_sentences: int = Field(4, ge=1, le=20, description="Sentences per retrieval chunk.")
    chunk_overlap: int = Field(2, ge=0, le=19, description="Sentences shared by neighbouring chunks.")
    top_k: int = Field(6, ge=1, le=50, description="Chunks handed from retrieval to span selection.")
    selector: Literal["rules", "learned"] = Field(
        "rules", description="rules (hand-weighted cues) or learned (the reader trained by `citeqa train`, on trial).")
    reader_dir: Path | None = Field(None, description="A reader from `citeqa train --out`; default: the shipped one.")
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    answerer: Literal["extractive", "local", "openai"] = Field(
        "extractive", description="extractive (no language model), local (llama.cpp in process) or openai.")
    local_model: str = Field("qwen2.5-coder-1.5b", description="qwen2.5-coder-1.5b, -0.5b or a .gguf path.")
    llm_url: str | None = Field(None, description="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1.")
    llm_model: str = Field("local", description="Model name sent to the OpenAI-compatible server.")
    llm_api_key: str = Field("not-needed", description="API key for the OpenAI-compatible server.")
    llm_timeout: float = Field(30.0, gt=0, description="Seconds before generation gives way to extraction.")
    llm_max_tokens: int = Field(120, ge=16, le=1024)
    llm_threads: int = Field(2, ge=1, le=64)
    max_question_chars: int = 2000
    max_upload_mb: float = Field(20, gt=0, le=1024, description="Largest file `POST /api/documents` and the chat "
                                 "take, in MB (2**20 bytes); larger files are refused with 413 before they are read.")
    api_key: SecretStr | None = Field(None, description="When set, every /api request but GET /api/health needs "
                                      "`Authorization: Bearer <key>` and the chat asks for it; unset: open.")

    @field_validator("api_key")
    @classmethod
    def empty_key_is_no_key(cls, value: SecretStr | None) -> SecretStr | None:
        """`CITEQA_API_KEY=` (set but empty) leaves the API open rather than locking it with an empty key."""
        return value if value and value.get_secret_value() else None
    # A 2,000-character question and 100 history turns of as much, each character at most 6 bytes as a JSON escape
    # ("\u00e9"): 1.21 MB, plus the JSON around it; 2 MiB takes any request the contract accepts.
    max_body_kb: int = Field(2048, ge=1, description="Largest request body in kB, refused (413) before parsing.")
    max_in_flight: int = Field(8, ge=1, description="Answers computed at once per worker; more get 503 at once.")

    @property
    def chunking(self) -> dict[str, int]:
        return {"chunk_sentences": self.chunk_sentences, "chunk_overlap": min(self.chunk_overlap,
                                                                            self.chunk_sentences - 1)}
