"""All of citeqa's settings: the answering chain's sections and the server's own. Every value can be set with the
`CITEQA_` environment variable of the same name (CITEQA_HOST, CITEQA_API_KEY, CITEQA_MAX_UPLOAD_MB …)."""

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

from index.settings import FROM_ENVIRONMENT, IndexSettings
from qa.settings import AnsweringSettings, LLMSettings
from qa.settings import Settings as AnsweringChainSettings


class ServerSettings(BaseSettings):
    model_config = FROM_ENVIRONMENT

    host: str = Field("127.0.0.1", description="Address to bind; anything but loopback wants CITEQA_API_KEY.")
    port: int = Field(7860, ge=1, le=65535, description="Port for the chat, the REST API and the OpenAPI page.")
    max_upload_mb: float = Field(20, gt=0, le=1024, description="Largest file `POST /api/documents` and the chat "
                                 "take, in MB (2**20 bytes); larger files are refused with 413 before they are read.")
    api_key: SecretStr | None = Field(None, description="When set, every /api request but the health routes needs "
                                      "`Authorization: Bearer <key>` and the chat asks for it; unset: open.")
    # A 2,000-character question and 100 history turns of as much, each character at most 6 bytes as a JSON escape
    # ("\u00e9"): 1.21 MB, plus the JSON around it; 2 MiB takes any request the contract accepts.
    max_body_kb: int = Field(2048, ge=1, description="Largest request body in kB, refused (413) before parsing.")
    max_in_flight: int = Field(8, ge=1, description="Answers computed at once per worker; more get 503 at once.")

    @field_validator("api_key")
    @classmethod
    def empty_key_is_no_key(cls, value: SecretStr | None) -> SecretStr | None:
        """`CITEQA_API_KEY=` (set but empty) leaves the API open rather than locking it with an empty key."""
        return value if value and value.get_secret_value() else None

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)


class Settings(AnsweringChainSettings):
    """The answering chain's sections (index, answering, llm) and the server's."""

    server: ServerSettings = Field(default_factory=ServerSettings)


SECTIONS = (IndexSettings, AnsweringSettings, LLMSettings, ServerSettings)  # in the order the README lists them


def settings_table() -> str:
    """The README's table of every setting, from the fields themselves: its variable, default and description."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for section in SECTIONS:
        for name, field in section.model_fields.items():
            default = field.get_default(call_default_factory=True)
            shown = "unset" if default is None else f"`{default}`"
            rows.append(f"| `CITEQA_{name.upper()}` | {shown} | {field.description} |")
    return "\n".join(rows)
