"""Re-index every memory and message: identifiers kept whole, scripts without spaces as bigrams, bounded context.

Since this revision the analyzer indexes an identifier (a version, a code with dashes, an email, C++ or .NET)
whole beside its parts, and Chinese, Japanese and Thai as character bigrams; and a neighbour lends at most 64 stems
to a row's context, so a pasted document no longer buries the rows beside it. Rows written before are re-indexed
here: bodies with the running analyzer (`repository.migration_support.Analyzer`, the policy's one exception for
re-indexing), contexts with the frozen copy of the neighbour rule below. The database triggers keep the full-text
indexes and term statistics in step with the UPDATEs. Only rows whose index changes are written.

Downgrade keeps the new index: the older code searches it as it is (it just never asks for the new terms).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

from repository.migration_support import Analyzer

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the neighbour rule (repository.search_index, repository.textsearch) as of this revision.
CTX_WINDOW = 2
CTX_STEMS = 64
MEMORY_WINDOW = timedelta(minutes=30)
CHUNK = 2_000


def _lent(body: str) -> str:
    return body if body.count(" ") < CTX_STEMS else " ".join(body.split(" ", CTX_STEMS)[:CTX_STEMS])


def _context(rows: list[dict[str, Any]], i: int, window: timedelta | None) -> str:
    parts = []
    for j in range(max(0, i - CTX_WINDOW), min(len(rows), i + CTX_WINDOW + 1)):
        if j == i or not rows[j]["body"]:
            continue
        if window is not None and abs(rows[j]["created_at"] - rows[i]["created_at"]) > window:
            continue
        parts.append(_lent(rows[j]["body"]))
    return " ".join(parts)


def _groups(conn: sa.Connection, table: str, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    listed = ", ".join(columns)
    return [tuple(row) for row in conn.execute(sa.text(f"SELECT DISTINCT {listed} FROM {table}")).all()]


def _where(columns: Sequence[str], values: tuple[Any, ...]) -> tuple[str, dict[str, Any]]:
    # One condition per NULL pattern: `= NULL` never matches, and PostgreSQL cannot type a bare NULL parameter.
    clauses = [f"{c} IS NULL" if v is None else f"{c} = :g_{c}" for c, v in zip(columns, values, strict=True)]
    params = {f"g_{c}": v for c, v in zip(columns, values, strict=True) if v is not None}
    return " AND ".join(clauses), params


def _chunks(conn: sa.Connection, select: str, where: str, params: dict[str, Any]) -> Iterator[list[Any]]:
    """The group's rows in seq order, CHUNK at a time plus CTX_WINDOW rows of look-ahead."""
    after = -1
    statement = sa.text(f"{select} WHERE {where} AND seq > :after ORDER BY seq LIMIT :n").columns(
        created_at=sa.DateTime()
    )
    while True:
        rows = conn.execute(statement, {**params, "after": after, "n": CHUNK + CTX_WINDOW}).all()
        if not rows:
            return
        yield list(rows)
        if len(rows) <= CHUNK:
            return
        after = rows[CHUNK - 1].seq


def _reindex_group(conn: Any, table: str, select: str, where: Any, body_of: Any, window: Any) -> None:
    clause, params = where
    tail: list[dict[str, Any]] = []
    for chunk in _chunks(conn, select, clause, params):
        rows = tail + [
            {"seq": r.seq, "created_at": r.created_at, "body": body_of(r), "old": (r.search_body, r.search_ctx)}
            for r in chunk
        ]
        last = len(rows) if len(chunk) <= CHUNK else len(tail) + CHUNK
        changed = []
        for i in range(len(tail), last):
            ctx = _context(rows, i, window)
            if (rows[i]["body"], ctx) != rows[i]["old"]:
                changed.append({"seq": rows[i]["seq"], "body": rows[i]["body"], "ctx": ctx})
        _write(conn, table, changed)
        tail = rows[last - CTX_WINDOW : last] if last >= CTX_WINDOW else rows[:last]


def _write(conn: sa.Connection, table: str, changed: list[dict[str, Any]]) -> None:
    for start in range(0, len(changed), 1_000):
        batch = changed[start : start + 1_000]
        if conn.dialect.name == "postgresql":
            # One statement per batch: the statement-level triggers (term statistics) run once per batch.
            rows = ", ".join(f"(CAST(:seq{i} AS bigint), :body{i}, :ctx{i})" for i in range(len(batch)))
            params = {f"{key}{i}": row[key] for i, row in enumerate(batch) for key in ("seq", "body", "ctx")}
            conn.execute(
                sa.text(
                    f"UPDATE {table} SET search_body = v.body, search_ctx = v.ctx "
                    f"FROM (VALUES {rows}) AS v(seq, body, ctx) WHERE {table}.seq = v.seq"
                ),
                params,
            )
        else:
            statement = sa.text(f"UPDATE {table} SET search_body = :body, search_ctx = :ctx WHERE seq = :seq")
            conn.execute(statement, batch)


def upgrade() -> None:
    conn = op.get_bind()
    analyzer = Analyzer()

    def memory_body(row: Any) -> str:
        return analyzer.index_text(" ".join(p for p in (row.name, row.description, row.content) if p))

    def message_body(row: Any) -> str:
        return analyzer.index_text(row.text_content or "")

    scope = ("agent_id", "user_id", "session_id")
    memories = "SELECT seq, created_at, name, description, content, search_body, search_ctx FROM memories"
    for values in _groups(conn, "memories", scope):
        _reindex_group(conn, "memories", memories, _where(scope, values), memory_body, MEMORY_WINDOW)
    messages = "SELECT seq, created_at, text_content, search_body, search_ctx FROM messages"
    for values in _groups(conn, "messages", ("session_id",)):
        _reindex_group(conn, "messages", messages, _where(("session_id",), values), message_body, None)


def downgrade() -> None:
    pass
