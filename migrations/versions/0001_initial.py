"""Initial schema: users, agents, sessions, messages, memories, with full-text structures per dialect.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from repository.scope import scope_key_sql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types: a migration must not change when the models do.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _timestamps() -> list[sa.Column]:
    return [sa.Column("created_at", TS, nullable=False), sa.Column("updated_at", TS, nullable=False)]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("email", sa.String(320)),
        sa.Column("phone_number", sa.String(64)),
        sa.Column("user_data", JSON, nullable=False),
        *_timestamps(),
    )
    op.create_index("uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True)

    op.create_table(
        "agents",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(100)),
        sa.Column("model", sa.String(200)),
        sa.Column("description", sa.Text()),
        sa.Column("config", JSON, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("system_prompt", sa.Text()),
        *_timestamps(),
    )
    op.create_index("uq_agents_name_lower", "agents", [sa.text("lower(name)")], unique=True)

    op.create_table(
        "sessions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("agent_id", sa.Uuid(), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(500)),
        sa.Column("platform", sa.String(100)),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("message_count", sa.BigInteger(), nullable=False, server_default="0"),
        *_timestamps(),
        sa.Column("run_finished_at", TS),
    )
    op.create_index("ix_sessions_user_agent_created", "sessions", ["user_id", "agent_id", "created_at"])
    op.create_index("ix_sessions_agent_id", "sessions", ["agent_id"])

    op.create_table(
        "messages",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("session_id", sa.Uuid(), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE")),
        sa.Column("agent_id", sa.Uuid(), sa.ForeignKey("agents.id", ondelete="CASCADE")),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text_content", sa.Text()),
        sa.Column("media_url", sa.Text()),
        sa.Column("mime_type", sa.String(200)),
        sa.Column("message_type", sa.String(50)),
        sa.Column("raw_payload", JSON),
        sa.Column("tool_calls", JSON),
        sa.Column("tool_outputs", JSON),
        sa.Column("context", JSON),
        sa.Column("user_feedback", sa.Text()),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.CheckConstraint("role IN ('user', 'assistant', 'system', 'tool')", name="ck_messages_role"),
    )
    op.create_index("ix_messages_session_seq", "messages", ["session_id", "seq"])
    op.create_index("ix_messages_user_id", "messages", ["user_id"])
    op.create_index("ix_messages_agent_id", "messages", ["agent_id"])

    op.create_table(
        "memories",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("name", sa.String(500)),
        sa.Column("description", sa.Text()),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("session_id", sa.Uuid(), sa.ForeignKey("sessions.id", ondelete="CASCADE")),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE")),
        sa.Column("agent_id", sa.Uuid(), sa.ForeignKey("agents.id", ondelete="CASCADE")),
        sa.Column("read_mode", sa.String(20), nullable=False),
        sa.Column("access", sa.String(20), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("expires_at", TS),
        *_timestamps(),
        sa.CheckConstraint("read_mode IN ('system_prompt', 'tool')", name="ck_memories_read_mode"),
        sa.CheckConstraint("access IN ('read_only', 'read_write')", name="ck_memories_access"),
    )
    op.create_index("ix_memories_agent_user_seq", "memories", ["agent_id", "user_id", "seq"])
    op.create_index("ix_memories_user_id", "memories", ["user_id"])
    op.create_index("ix_memories_session_id", "memories", ["session_id"])
    scope = ", ".join(scope_key_sql(dialect))
    # NULL scope columns compare equal here (COALESCE), so "agent-wide" names are unique too.
    op.execute(f"CREATE UNIQUE INDEX uq_memories_name_scope ON memories (name, {scope}) WHERE name IS NOT NULL")
    op.execute(f"CREATE UNIQUE INDEX uq_memories_content_scope ON memories (content_hash, {scope}) WHERE name IS NULL")

    if dialect == "sqlite":
        _sqlite_fulltext()
    else:
        _postgres_fulltext()


def _sqlite_fulltext() -> None:
    # External-content FTS5 tables kept in step by triggers, inside the writing transaction.
    tokenize = "tokenize = 'porter unicode61 remove_diacritics 2'"
    op.execute(
        "CREATE VIRTUAL TABLE memories_fts USING fts5("
        f"name, description, content, content='memories', content_rowid='seq', {tokenize})"
    )
    op.execute(
        """CREATE TRIGGER memories_fts_ai AFTER INSERT ON memories BEGIN
            INSERT INTO memories_fts(rowid, name, description, content)
            VALUES (new.seq, new.name, new.description, new.content);
        END"""
    )
    op.execute(
        """CREATE TRIGGER memories_fts_ad AFTER DELETE ON memories BEGIN
            INSERT INTO memories_fts(memories_fts, rowid, name, description, content)
            VALUES ('delete', old.seq, old.name, old.description, old.content);
        END"""
    )
    op.execute(
        """CREATE TRIGGER memories_fts_au AFTER UPDATE OF name, description, content ON memories BEGIN
            INSERT INTO memories_fts(memories_fts, rowid, name, description, content)
            VALUES ('delete', old.seq, old.name, old.description, old.content);
            INSERT INTO memories_fts(rowid, name, description, content)
            VALUES (new.seq, new.name, new.description, new.content);
        END"""
    )
    op.execute(
        "CREATE VIRTUAL TABLE messages_fts USING fts5("
        f"text_content, content='messages', content_rowid='seq', {tokenize})"
    )
    op.execute(
        """CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts(rowid, text_content) VALUES (new.seq, new.text_content);
        END"""
    )
    op.execute(
        """CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, text_content) VALUES ('delete', old.seq, old.text_content);
        END"""
    )
    op.execute(
        """CREATE TRIGGER messages_fts_au AFTER UPDATE OF text_content ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, text_content) VALUES ('delete', old.seq, old.text_content);
            INSERT INTO messages_fts(rowid, text_content) VALUES (new.seq, new.text_content);
        END"""
    )


def _postgres_fulltext() -> None:
    # Generated columns: the tsvector can never disagree with the row it is computed from.
    op.execute(
        """ALTER TABLE memories ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('english', coalesce(name, '')), 'A')
            || setweight(to_tsvector('english', content), 'B')
            || setweight(to_tsvector('english', coalesce(description, '')), 'C')
        ) STORED"""
    )
    op.execute("CREATE INDEX ix_memories_search ON memories USING gin (search_vector)")
    op.execute(
        """ALTER TABLE messages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
            to_tsvector('english', coalesce(text_content, ''))
        ) STORED"""
    )
    op.execute("CREATE INDEX ix_messages_search ON messages USING gin (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in (
            "memories_fts_ai",
            "memories_fts_ad",
            "memories_fts_au",
            "messages_fts_ai",
            "messages_fts_ad",
            "messages_fts_au",
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS memories_fts")
        op.execute("DROP TABLE IF EXISTS messages_fts")
    for table in ("memories", "messages", "sessions", "agents", "users"):
        op.drop_table(table)
