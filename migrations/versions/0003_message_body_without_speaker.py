"""Messages: index the text alone, not the speaker's name with it.

Since this revision a question that names a speaker boosts that speaker's messages at ranking time, so the name no
longer goes into `search_body` (where it matched every message of that speaker a little). Rows written before are
re-indexed here: the body of every named message, and the neighbour context of every message in those sessions.
The database triggers keep the full-text indexes and term statistics in step with the UPDATEs. Measured with 20,000
named messages (2026-11-26): 3.1 s on SQLite, 7.1 s on PostgreSQL.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from repository.migration_support import Analyzer

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CTX_WINDOW = 2  # frozen copy of repository.textsearch.CTX_WINDOW: neighbours on each side in the context
BATCH = 1_000


def _reindex(with_name: bool) -> None:
    conn = op.get_bind()
    analyzer = Analyzer()
    sessions = conn.execute(sa.text("SELECT DISTINCT session_id FROM messages WHERE name IS NOT NULL")).scalars()
    update = sa.text("UPDATE messages SET search_body = :body, search_ctx = :ctx WHERE seq = :seq")
    for session_id in list(sessions):
        rows = conn.execute(
            sa.text(
                "SELECT seq, name, text_content, search_body, search_ctx FROM messages "
                "WHERE session_id = :sid ORDER BY seq"
            ),
            {"sid": session_id},
        ).all()
        bodies = [
            analyzer.index_text(" ".join(p for p in ((row.name if with_name else None), row.text_content) if p))
            for row in rows
        ]
        changed = []
        for i, row in enumerate(rows):
            neighbours = range(max(0, i - CTX_WINDOW), min(len(rows), i + CTX_WINDOW + 1))
            ctx = " ".join(bodies[j] for j in neighbours if j != i and bodies[j])
            if bodies[i] != row.search_body or ctx != row.search_ctx:
                changed.append({"body": bodies[i], "ctx": ctx, "seq": row.seq})
        for start in range(0, len(changed), BATCH):
            batch = changed[start : start + BATCH]
            if conn.dialect.name == "postgresql":
                # One statement per batch: PostgreSQL's statement-level triggers (term statistics) then run once per
                # batch, not once per row (an executemany took 24 s for 20,000 named messages).
                _update_batch(conn, batch)
            else:
                conn.execute(update, batch)


def _update_batch(conn: sa.Connection, batch: list[dict[str, object]]) -> None:
    rows = ", ".join(f"(CAST(:seq{i} AS bigint), :body{i}, :ctx{i})" for i in range(len(batch)))
    params = {f"{key}{i}": row[key] for i, row in enumerate(batch) for key in ("seq", "body", "ctx")}
    conn.execute(
        sa.text(
            f"UPDATE messages SET search_body = v.body, search_ctx = v.ctx FROM (VALUES {rows}) AS v(seq, body, ctx) "
            "WHERE messages.seq = v.seq"
        ),
        params,
    )


def upgrade() -> None:
    _reindex(with_name=False)


def downgrade() -> None:
    _reindex(with_name=True)
