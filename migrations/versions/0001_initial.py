"""Initial schema: users, agents, sessions, messages, memories, with full-text structures per dialect.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from repository.migration_support import scope_key_sql

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


def _search_columns() -> list[sa.Column]:
    # Stems of the row's own text, and of its neighbours' (repository.search_index keeps both).
    return [
        sa.Column("search_body", sa.Text(), nullable=False, server_default=""),
        sa.Column("search_ctx", sa.Text(), nullable=False, server_default=""),
    ]


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
        sa.Column("name", sa.String(200)),
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
        *_search_columns(),
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
        *_search_columns(),
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

    op.create_table(
        "search_stats",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("n_docs", sa.BigInteger(), nullable=False),
        sa.Column("body_len", sa.BigInteger(), nullable=False),
        sa.Column("ctx_len", sa.BigInteger(), nullable=False),
    )
    op.execute(
        "INSERT INTO search_stats (kind, n_docs, body_len, ctx_len) VALUES ('memory', 0, 0, 0), ('message', 0, 0, 0)"
    )
    if dialect == "sqlite":
        _sqlite_fulltext()
    else:
        op.create_table(
            "search_terms",
            sa.Column("kind", sa.String(16), primary_key=True),
            sa.Column("term", sa.Text(), primary_key=True),
            sa.Column("df", sa.BigInteger(), nullable=False),
        )
        _postgres_fulltext()


# Token count of a space-separated stem string, the same expression on both backends.
def _ntok(column: str) -> str:
    return f"(CASE WHEN {column} = '' THEN 0 ELSE length({column}) - length(replace({column}, ' ', '')) + 1 END)"


def _sqlite_fulltext() -> None:
    # External-content FTS5 tables over the pre-stemmed columns, kept in step by triggers inside the writing
    # transaction. unicode61 only splits on spaces here: all linguistics happened in repository.textsearch.
    # The same triggers keep search_stats (document count, total field lengths) exact; document frequencies
    # come from fts5vocab tables, which FTS5 maintains itself.
    for table, kind in (("memories", "memory"), ("messages", "message")):
        fts = f"{table}_fts"
        op.execute(
            f"CREATE VIRTUAL TABLE {fts} USING fts5(search_body, search_ctx, content='{table}', "
            "content_rowid='seq', tokenize = 'unicode61 remove_diacritics 0')"
        )
        op.execute(f"CREATE VIRTUAL TABLE {fts}_vocab USING fts5vocab({fts}, 'row')")
        add = f"INSERT INTO {fts}(rowid, search_body, search_ctx) VALUES (new.seq, new.search_body, new.search_ctx)"
        remove = (
            f"INSERT INTO {fts}({fts}, rowid, search_body, search_ctx) "
            "VALUES ('delete', old.seq, old.search_body, old.search_ctx)"
        )

        def stats(sign: str, row: str, kind: str = kind) -> str:
            return (
                f"UPDATE search_stats SET n_docs = n_docs {sign} 1, "
                f"body_len = body_len {sign} {_ntok(row + '.search_body')}, "
                f"ctx_len = ctx_len {sign} {_ntok(row + '.search_ctx')} WHERE kind = '{kind}'"
            )

        op.execute(f"CREATE TRIGGER {table}_search_ai AFTER INSERT ON {table} BEGIN {add}; {stats('+', 'new')}; END")
        op.execute(f"CREATE TRIGGER {table}_search_ad AFTER DELETE ON {table} BEGIN {remove}; {stats('-', 'old')}; END")
        op.execute(
            f"CREATE TRIGGER {table}_search_au AFTER UPDATE OF search_body, search_ctx ON {table} BEGIN "
            f"{remove}; {stats('-', 'old')}; {add}; {stats('+', 'new')}; END"
        )


def _postgres_fulltext() -> None:
    # A generated tsvector can never disagree with its row. 'simple' does no stemming or stopwords of its own.
    # Statement-level triggers with transition tables keep search_terms (document frequency per stem) and
    # search_stats exact, one aggregated upsert per statement: bulk inserts do not pay per row.
    for table, kind in (("memories", "memory"), ("messages", "message")):
        op.execute(
            f"""ALTER TABLE {table} ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS (
                setweight(to_tsvector('simple', search_body), 'A') || setweight(to_tsvector('simple', search_ctx), 'B')
            ) STORED"""
        )
        op.execute(f"CREATE INDEX ix_{table}_search ON {table} USING gin (search_tsv)")
        for event, sources in (
            ("INSERT", [("new_rows", 1)]),
            ("DELETE", [("old_rows", -1)]),
            ("UPDATE", [("new_rows", 1), ("old_rows", -1)]),
        ):
            terms = " UNION ALL ".join(
                f"SELECT unnest(tsvector_to_array(search_tsv)) AS term, {sign} AS d FROM {rows}"
                for rows, sign in sources
            )
            totals = " UNION ALL ".join(
                f"SELECT {sign} AS n, {sign} * {_ntok('search_body')} AS b, {sign} * {_ntok('search_ctx')} AS c "
                f"FROM {rows}"
                for rows, sign in sources
            )
            function = f"{table}_search_{event.lower()}"
            op.execute(
                f"""CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    -- Sorted upserts: concurrent writers lock shared term rows in the same order (no deadlock).
                    INSERT INTO search_terms (kind, term, df)
                    SELECT '{kind}', term, sum(d) FROM ({terms}) AS changes
                    GROUP BY term HAVING sum(d) <> 0 ORDER BY term
                    ON CONFLICT (kind, term) DO UPDATE SET df = search_terms.df + excluded.df;
                    UPDATE search_stats SET n_docs = n_docs + t.n, body_len = body_len + t.b, ctx_len = ctx_len + t.c
                    FROM (SELECT coalesce(sum(n), 0) AS n, coalesce(sum(b), 0) AS b, coalesce(sum(c), 0) AS c
                          FROM ({totals}) AS rows_changed) AS t
                    WHERE kind = '{kind}';
                    RETURN NULL;
                END $$"""
            )
            referencing = " ".join(f"{'NEW' if rows == 'new_rows' else 'OLD'} TABLE AS {rows}" for rows, _ in sources)
            op.execute(
                f"CREATE TRIGGER {function} AFTER {event} ON {table} REFERENCING {referencing} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in ("memories", "messages"):
        if dialect == "sqlite":
            for event in ("ai", "ad", "au"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_search_{event}")
            op.execute(f"DROP TABLE IF EXISTS {table}_fts_vocab")
            op.execute(f"DROP TABLE IF EXISTS {table}_fts")
        else:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_search_{event} ON {table}")
                op.execute(f"DROP FUNCTION IF EXISTS {table}_search_{event}()")
    if dialect != "sqlite":
        op.drop_table("search_terms")
    op.drop_table("search_stats")
    for table in ("memories", "messages", "sessions", "agents", "users"):
        op.drop_table(table)
