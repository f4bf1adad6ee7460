"""One kind of refusal for every layer: a message a user can act on, the HTTP status the API answers with and the
exit status of the command line. The API, the chat and the CLI each map `CiteqaError` once (ui/server.py,
ui/chat.py, ui/cli.py), so a new refusal needs no new `except` anywhere.

| refusal (module) | HTTP | exit | example message |
|---|---|---|---|
| `IngestError` (index.load) | 422 | 2 | "notes.txt: empty; nothing to index" |
| `UnsupportedType` (index.load) | 415 | 2 | "photo.png: .png is not a supported type (…)" |
| `TooLarge` (index.load) | 413 | 2 | "big.pdf: 40.0 MB is over the 25 MB upload limit" |
| `StoreUnavailable` (index.chroma) | 503 + Retry-After | 3 | "the Chroma server at http://… is unreachable: …" |
| `IncompatibleIndex` (index.records) | 500 | 2 | "no index yet: run `citeqa index` first" |
| `EmbeddingModelMissing` (index.embed) | 500 | 2 | "no sentence-transformers model in /models/x" |
| `DataDirHeld` (index.lock) | 409 | 2 | ".citeqa is held by the citeqa server at http://… (pid 12)" |
| `QuestionError` (qa.chain) | 422 | 2 | "question is empty" |
| `HistoryError` (qa.history) | 422 | 2 | "history[0]: role must be 'user' or 'assistant'" |
| `ReaderMissing` (qa.reader), `StaleReader` (qa.features) | 500 | 2 | "no trained reader in DIR: run `citeqa train`" |
| `ModelUnavailable` (qa.llm) | 503 | 2 | "CITEQA_ANSWERER=openai needs CITEQA_LLM_URL" |
| `ServerRefused` (ui.remote), `WorkersNeedAServer` (ui.server) | – | 2 | "--workers 2 needs a Chroma server" |
"""

from __future__ import annotations


class CiteqaError(Exception):
    """A refusal with its message for the user; subclasses set how each front end reports it."""

    http_status: int = 500
    exit_code: int = 2  # the CLI's: 2 a refusal of what was asked, 3 a store that may be back soon (try again)
    retry_after_s: int | None = None  # with a 503: when a client may try again (the Retry-After header)
