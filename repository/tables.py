"""SQLAlchemy tables: the storage shape behind the pydantic models in `repository.models`.

Identifiers are UUIDs for the public API; messages and memories also carry an integer `seq` primary key. The
integer gives a per-table order that does not depend on clock resolution (two messages written in the same
microsecond keep their order) and is the rowid the SQLite FTS5 index points at.

Full-text structures (FTS5 tables and triggers on SQLite, generated tsvector columns with GIN indexes on
PostgreSQL) are created by the migrations, not here, because they differ per dialect.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from repository.clock import utcnow
from repository.models import ACCESS_MODES, READ_MODES, ROLES

# A naming convention keeps constraint names stable across dialects and Alembic runs.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite's DATETIME drops the zone; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware value")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Timestamp = UTCDateTime()


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow, nullable=False)


class UserRow(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str | None] = mapped_column(String(320))
    phone_number: Mapped[str | None] = mapped_column(String(64))
    user_data: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict, nullable=False)

    __table_args__ = (
        # Case-insensitive uniqueness without a citext extension: the same expression works on both backends.
        Index("uq_users_email_lower", func.lower(email), unique=True),
    )


class AgentRow(TimestampMixin, Base):
    __tablename__ = "agents"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    type: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    run_id: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    system_prompt: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("uq_agents_name_lower", func.lower(name), unique=True),)


class SessionRow(TimestampMixin, Base):
    __tablename__ = "sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    agent_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str | None] = mapped_column(String(500))
    platform: Mapped[str | None] = mapped_column(String(100))
    # `metadata` is reserved on declarative classes, hence the attribute name.
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonType, default=dict, nullable=False)
    # Kept by the message repository in the same transaction as the insert/delete, so listings never count rows.
    message_count: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    run_finished_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (
        # list_sessions filters by user and agent and sorts newest first.
        Index("ix_sessions_user_agent_created", "user_id", "agent_id", "created_at"),
        Index("ix_sessions_agent_id", "agent_id"),
    )


class MessageRow(Base):
    __tablename__ = "messages"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, nullable=False, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("agents.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    # The speaker's display name in multi-party chats (the `name` of chat APIs' messages); searchable.
    name: Mapped[str | None] = mapped_column(String(200))
    text_content: Mapped[str | None] = mapped_column(Text)
    media_url: Mapped[str | None] = mapped_column(Text)
    mime_type: Mapped[str | None] = mapped_column(String(200))
    message_type: Mapped[str | None] = mapped_column(String(50))
    raw_payload: Mapped[Any | None] = mapped_column(JsonType)
    tool_calls: Mapped[Any | None] = mapped_column(JsonType)
    tool_outputs: Mapped[Any | None] = mapped_column(JsonType)
    context: Mapped[Any | None] = mapped_column(JsonType)
    user_feedback: Mapped[str | None] = mapped_column(Text)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow, nullable=False)
    # Stems of the text and of the neighbouring messages' text (repository.search_index maintains both). Deferred:
    # only search reads them (by column); loading them with every row slowed every history page (measured:
    # docs/benchmarks.md, History).
    search_body: Mapped[str] = mapped_column(Text, default="", nullable=False, deferred=True)
    search_ctx: Mapped[str] = mapped_column(Text, default="", nullable=False, deferred=True)

    __table_args__ = (
        CheckConstraint(_one_of("role", ROLES), name="role"),
        # History pages walk one session by seq in either direction.
        Index("ix_messages_session_seq", "session_id", "seq"),
        Index("ix_messages_user_id", "user_id"),
        Index("ix_messages_agent_id", "agent_id"),
    )


class SearchStatsRow(Base):
    """Collection statistics for BM25 (kept exact by database triggers, see the migrations)."""

    __tablename__ = "search_stats"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    n_docs: Mapped[int] = mapped_column(BigInteger, nullable=False)
    body_len: Mapped[int] = mapped_column(BigInteger, nullable=False)
    ctx_len: Mapped[int] = mapped_column(BigInteger, nullable=False)


class MemoryRow(TimestampMixin, Base):
    __tablename__ = "memories"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, nullable=False, default=uuid.uuid4)
    name: Mapped[str | None] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    # sha256 of the content: lets "store the same fact twice" return the existing row (unique per scope).
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("sessions.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("agents.id", ondelete="CASCADE"))
    read_mode: Mapped[str] = mapped_column(String(20), default="tool", nullable=False)
    access: Mapped[str] = mapped_column(String(20), default="read_write", nullable=False)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonType, default=dict, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # Stems of name, description and content, and of the memories stored just before and after in the same scope.
    # Deferred, as for messages.
    search_body: Mapped[str] = mapped_column(Text, default="", nullable=False, deferred=True)
    search_ctx: Mapped[str] = mapped_column(Text, default="", nullable=False, deferred=True)

    __table_args__ = (
        CheckConstraint(_one_of("read_mode", READ_MODES), name="read_mode"),
        CheckConstraint(_one_of("access", ACCESS_MODES), name="access"),
        # Scope filters: every search and listing is narrowed by these before anything else.
        Index("ix_memories_agent_user_seq", "agent_id", "user_id", "seq"),
        Index("ix_memories_user_id", "user_id"),
        Index("ix_memories_session_id", "session_id"),
        # Expiry: only the memories that expire, for the sweeper (repository.lifecycle).
        Index(
            "ix_memories_expires_at",
            "expires_at",
            sqlite_where=text("expires_at IS NOT NULL"),
            postgresql_where=text("expires_at IS NOT NULL"),
        ),
        # The unique (name, scope) and (content_hash, scope) indexes are expression indexes whose NULL
        # handling differs per dialect: see repository.scope and the migrations.
    )


class ApiTokenRow(Base):
    """A managed bearer token: only the SHA-256 of its secret is stored (see repository.credentials)."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    # NULL: the token acts for the server's configured agent.
    agent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("agents.id", ondelete="CASCADE"))
    read_only: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(Timestamp)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_used_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (Index("ix_api_tokens_user_id", "user_id"),)
