"""The one configuration object. Built once at the entry point and passed down explicitly.

Sources, highest precedence first: keyword arguments, environment (``FAULTMAVEN_*``, plus Slack's
conventional ``SLACK_BOT_TOKEN`` / ``SLACK_SIGNING_SECRET`` / ``SLACK_APP_TOKEN``), a ``.env`` file, and
an optional TOML/YAML config file named by ``FAULTMAVEN_CONFIG_FILE``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

Role = Literal["viewer", "responder", "admin"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FAULTMAVEN_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    config_file: Path | None = Field(
        default=None, description="TOML or YAML file with any of these settings."
    )

    # --- general -------------------------------------------------------------------------------------------
    data_dir: Path = Field(default=Path(".faultmaven"), description="Embedded stores live here.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    # --- HTTP service ----------------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    allow_public_bind_without_auth: bool = False
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    max_request_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    audit_blocking: bool = Field(
        default=False,
        description="Answer only once the action's audit record is committed. Off: records are written behind "
        "the answers (group-committed), so an audit store's slow commit never delays one; a process that dies "
        "can lose its last few milliseconds of records.",
    )
    rate_limit_per_minute: int = Field(default=120, ge=1)
    analysis_processes: int = Field(
        default=0, ge=0, description="Worker processes for log analysis (0: in the server process)."
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Server processes behind one listening port (the supervisor hands each a share of the "
        "connections); each runs the whole app.",
    )

    # --- auth ----------------------------------------------------------------------------------------------
    auth_jwt_secret: SecretStr | None = None
    auth_jwks_url: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_role_claim: str = "faultmaven_role"
    auth_default_role: Role = "viewer"

    # --- storage -------------------------------------------------------------------------------------------
    redis_url: SecretStr | None = None
    postgres_dsn: SecretStr | None = None
    session_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    encryption_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated 'key_id:base64key' pairs (32-byte keys); the first encrypts, all decrypt.",
    )

    # --- knowledge and retrieval ---------------------------------------------------------------------------
    runbooks_dir: Path | None = Field(default=None, description="Extra team runbooks (YAML or Markdown).")
    embedder: Literal["hashed", "sentence-transformers", "openai"] = "hashed"
    embedding_model: str = "all-MiniLM-L6-v2"
    vector_index: Literal["embedded", "pinecone"] = "embedded"
    pinecone_api_key: SecretStr | None = None
    pinecone_index: str = "faultmaven"
    pinecone_host: str | None = Field(
        default=None, description="The index's data-plane host; skips a lookup."
    )
    team: str = "default"

    # --- LLM (any OpenAI-compatible server) ----------------------------------------------------------------
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_seconds: float = Field(default=30.0, gt=0)
    llm_max_prompt_tokens: int = Field(default=6000, ge=1500)
    llm_redact_ips: bool = False

    # --- OpenSearch ----------------------------------------------------------------------------------------
    opensearch_url: str | None = None
    opensearch_index: str = "logs-*"
    opensearch_username: str | None = None
    opensearch_password: SecretStr | None = None

    # --- Slack ---------------------------------------------------------------------------------------------
    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "FAULTMAVEN_SLACK_BOT_TOKEN")
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "FAULTMAVEN_SLACK_SIGNING_SECRET")
    )
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "FAULTMAVEN_SLACK_APP_TOKEN")
    )
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_max_file_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    slack_role_map: dict[str, Role] = Field(
        default_factory=dict, description="Slack user id or user-group id → role."
    )

    # --- observability -------------------------------------------------------------------------------------
    otlp_endpoint: str | None = None

    # --- outbound calls ------------------------------------------------------------------------------------
    outbound_timeout_seconds: float = Field(default=10.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        path = _config_file_from(init_settings, env_settings)
        if path is not None:
            if path.suffix.lower() in {".yaml", ".yml"}:
                sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
            else:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        sources.append(file_secret_settings)
        return tuple(sources)

    def masked(self) -> dict[str, Any]:
        """The effective configuration as plain data, with every secret masked."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out[name] = "**********" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                out[name] = str(value)
            else:
                out[name] = value
        return out


def _config_file_from(*sources: PydanticBaseSettingsSource) -> Path | None:
    for source in sources:
        data = source()
        value = data.get("config_file")
        if value:
            return Path(value)
    return None
