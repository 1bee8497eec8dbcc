"""Settings: one pydantic-settings class, read once at the composition root (the CLI or a test)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from repository.connection import EngineOptions, default_sqlite_url


class Identity(dict[str, str]):
    """A bearer token's identity: {"user": ..., "agent": ...} (agent optional)."""


class Settings(BaseSettings):
    """Every option can be set as AGENT_MEMORY_<NAME> in the environment; CLI flags override the environment."""

    model_config = SettingsConfigDict(env_prefix="AGENT_MEMORY_", extra="ignore", env_ignore_empty=True)

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Default: an SQLite file in the user data directory. "
        "PostgreSQL: postgresql+asyncpg://user:password@host:5432/dbname.",
    )
    user: str = Field(
        default="default",
        min_length=1,
        max_length=320,
        description="The user the tools act for (stdio, or HTTP without tokens): an email or any unique handle.",
    )
    agent: str = Field(default="default", min_length=1, max_length=200, description="The agent the tools act for.")
    auto_migrate: bool = Field(default=True, description="Apply pending schema migrations at start.")
    max_content_bytes: int = Field(
        default=1_000_000, ge=1_000, description="Largest memory content or message text accepted, in bytes."
    )
    listing_preview_chars: int = Field(
        default=2_000, ge=100, description="Contents longer than this are truncated in listings and search results."
    )
    transport: Literal["stdio", "streamable-http"] = "stdio"
    host: str = Field(default="127.0.0.1", description="HTTP bind address.")
    port: int = Field(default=8765, ge=0, le=65535, description="HTTP port.")
    http_tokens: dict[str, Any] = Field(
        default_factory=dict,
        description='Bearer tokens for HTTP, as JSON: {"token": "user"} or {"token": {"user": "u", "agent": "a"}}.',
    )
    http_tokens_file: Path | None = Field(default=None, description="A JSON file with the same shape as http_tokens.")
    oauth_issuer: str | None = Field(
        default=None,
        description="OAuth 2.1 issuer whose JWT access tokens are accepted (JWKS found by its discovery document).",
    )
    public_url: str | None = Field(
        default=None,
        description="This server's public MCP URL, e.g. https://memory.example.com/mcp: the audience JWTs must carry.",
    )
    oauth_user_claim: str = Field(default="sub", min_length=1, description="The JWT claim naming the user.")
    oauth_agent_claim: str | None = Field(
        default=None, description="The JWT claim naming the agent (absent: the configured agent)."
    )
    http_stateless: bool = Field(
        default=True,
        description="Serve each HTTP request on its own (any replica can answer it); false keeps per-client sessions.",
    )
    http_max_body_bytes: int | None = Field(
        default=None,
        ge=1_024,
        description="Largest HTTP request body; default 8 x max_content_bytes + 1 MiB (see the README).",
    )
    http_rate_limit: float = Field(
        default=50.0, ge=0, description="Requests per second per credential (burst: twice that); 0 turns it off."
    )
    pool_size: int = Field(default=5, ge=1, le=100, description="PostgreSQL connection pool size.")
    max_overflow: int = Field(default=10, ge=0, le=200, description="PostgreSQL connections beyond the pool size.")
    statement_timeout_ms: int = Field(default=30_000, ge=100, description="PostgreSQL statement timeout.")
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0, description="How long SQLite writers wait for a lock.")
    sqlite_cache_mb: int = Field(default=16, ge=1, description="SQLite page cache per connection, in MiB.")
    sweep_interval_s: float = Field(
        default=3600.0,
        ge=0,
        description="Seconds between the server's sweeps deleting expired memories (the first comes soon after "
        "start); 0 turns the sweeper off.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"

    @model_validator(mode="after")
    def _oauth_needs_audience(self) -> Settings:
        if self.oauth_issuer and not self.public_url:
            raise ValueError(
                "AGENT_MEMORY_OAUTH_ISSUER needs AGENT_MEMORY_PUBLIC_URL: this server's MCP URL, the audience its "
                "tokens carry, e.g. https://memory.example.com/mcp"
            )
        return self

    @field_validator("http_tokens", mode="before")
    @classmethod
    def _parse_tokens(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) and value.strip() else (value or {})

    def tokens(self) -> dict[str, tuple[str, str]]:
        """token -> (user, agent), merged from http_tokens and http_tokens_file."""
        raw: dict[str, Any] = {}
        if self.http_tokens_file is not None:
            raw.update(json.loads(self.http_tokens_file.read_text()))
        raw.update(self.http_tokens)
        resolved: dict[str, tuple[str, str]] = {}
        for token, who in raw.items():
            if isinstance(who, str):
                resolved[token] = (who, self.agent)
            elif isinstance(who, dict) and isinstance(who.get("user"), str):
                resolved[token] = (who["user"], str(who.get("agent") or self.agent))
            else:
                raise ValueError("each HTTP token must map to a user string or {'user': ..., 'agent': ...}")
        return resolved

    def max_body_bytes(self) -> int:
        # A client may escape every non-ASCII character (\uXXXX, up to 6 bytes for one byte of content): 8x the
        # largest content keeps any accepted content under the limit, with room for the rest of the request.
        return self.http_max_body_bytes or 8 * self.max_content_bytes + 1_048_576

    def resolved_database_url(self) -> str:
        return self.database_url or default_sqlite_url()

    def engine_options(self) -> EngineOptions:
        return EngineOptions(
            pool_size=self.pool_size,
            max_overflow=self.max_overflow,
            statement_timeout_ms=self.statement_timeout_ms,
            sqlite_busy_timeout_ms=self.sqlite_busy_timeout_ms,
            sqlite_cache_mb=self.sqlite_cache_mb,
        )
