"""Scope keys: how a memory's (agent, user, session) triple is compared for uniqueness.

SQL treats NULLs as distinct in unique indexes, so a plain UNIQUE(name, agent_id, user_id, session_id) would let
two agent-wide memories (user_id NULL) share a name. The unique indexes use COALESCE over the scope columns
instead; the expressions must be written exactly the same in the migration and in ON CONFLICT targets, so they
live here, once per dialect.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, literal_column

SCOPE_COLUMNS = ("agent_id", "user_id", "session_id")

# SQLite stores UUIDs as 32-char hex text; PostgreSQL has a native uuid type that needs a uuid sentinel.
_SENTINEL = {
    "sqlite": "''",
    "postgresql": "'00000000-0000-0000-0000-000000000000'::uuid",
}


def scope_key_sql(dialect: str) -> list[str]:
    """The COALESCE expressions, as SQL text, for the index definitions in the migrations."""
    sentinel = _SENTINEL[dialect]
    return [f"coalesce({column}, {sentinel})" for column in SCOPE_COLUMNS]


def scope_key_exprs(dialect: str) -> list[ColumnElement[object]]:
    """The same expressions as SQLAlchemy elements, for `on_conflict_do_update(index_elements=...)`."""
    return [literal_column(sql) for sql in scope_key_sql(dialect)]
