"""The answering chain's settings, in sections: the index it reads, how it answers, and the language model.
Every value can be set with the `CITEQA_` environment variable of the same name (CITEQA_ANSWERER, CITEQA_LLM_URL …).
"""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings

from index.settings import FROM_ENVIRONMENT, IndexSettings

MAX_QUESTION_CHARS = 2000  # the contract's limit: a longer question is refused (422), in the API and the chat


class AnsweringSettings(BaseSettings):
    model_config = FROM_ENVIRONMENT

    top_k: int = Field(6, ge=1, le=50, description="Chunks handed from retrieval to span selection.")
    selector: Literal["learned", "rules"] = Field(
        "learned", description="learned (the reader and the decision `citeqa train` fits, trained across genres) or "
        "rules (hand-weighted cues: still better on the seed article's own dev questions, worse elsewhere).")
    reader_dir: Path | None = Field(None, description="A reader from `citeqa train --out`; default: the shipped one.")
    answerer: Literal["extractive", "local", "openai"] = Field(
        "extractive", description="extractive (no language model), local (llama.cpp in process) or openai.")


class LLMSettings(BaseSettings):
    model_config = FROM_ENVIRONMENT

    local_model: str = Field("qwen2.5-coder-1.5b", description="qwen2.5-coder-1.5b, -0.5b or a .gguf path.")
    llm_url: str | None = Field(None, description="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1.")
    llm_model: str = Field("local", description="Model name sent to the OpenAI-compatible server.")
    llm_api_key: str = Field("not-needed", description="API key for the OpenAI-compatible server.")
    llm_timeout: float = Field(30.0, gt=0, description="Seconds before generation gives way to extraction.")
    llm_max_tokens: int = Field(120, ge=16, le=1024, description="Longest generated answer, in tokens.")
    llm_threads: int = Field(2, ge=1, le=64, description="CPU threads llama.cpp uses (the local answerer).")


class Settings(BaseModel):
    """What the answering chain needs: each section reads its own environment variables when made."""

    index: IndexSettings = Field(default_factory=IndexSettings)
    answering: AnsweringSettings = Field(default_factory=AnsweringSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
