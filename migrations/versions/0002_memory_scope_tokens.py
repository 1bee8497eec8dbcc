"""SQLite: index each memory's visibility scope as a token, so newest-first searches skip other users' rows.

A third FTS5 column, `search_scope`, holds one token per memory naming its (agent, user) pair: a generated column
of the content table, so it can never disagree with the row. PostgreSQL needs nothing: its planner combines the GIN
index with the (agent_id, user_id, seq) index itself.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of repository.search's token format: 'z' + agent hex (or '0') + 'x' + user hex (or '0'). SQLite stores
# UUIDs as 32 lowercase hex characters, so the token is one alphanumeric word of up to 66 characters: longer than
# any query term (at most 64), so no question can ever match it.
SCOPE_TOKEN = "'z' || coalesce(agent_id, '0') || 'x' || coalesce(user_id, '0')"


def _ntok(column: str) -> str:
    return f"(CASE WHEN {column} = '' THEN 0 ELSE length({column}) - length(replace({column}, ' ', '')) + 1 END)"


def _fts(columns: Sequence[str]) -> None:
    """(Re)create memories_fts over `columns`, its vocabulary, and the triggers keeping it and search_stats."""
    names = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    op.execute(
        f"CREATE VIRTUAL TABLE memories_fts USING fts5({names}, content='memories', content_rowid='seq', "
        "tokenize = 'unicode61 remove_diacritics 0')"
    )
    op.execute("CREATE VIRTUAL TABLE memories_fts_vocab USING fts5vocab(memories_fts, 'row')")
    add = f"INSERT INTO memories_fts(rowid, {names}) VALUES (new.seq, {new})"
    remove = f"INSERT INTO memories_fts(memories_fts, rowid, {names}) VALUES ('delete', old.seq, {old})"

    def stats(sign: str, row: str) -> str:
        return (
            f"UPDATE search_stats SET n_docs = n_docs {sign} 1, "
            f"body_len = body_len {sign} {_ntok(row + '.search_body')}, "
            f"ctx_len = ctx_len {sign} {_ntok(row + '.search_ctx')} WHERE kind = 'memory'"
        )

    op.execute(f"CREATE TRIGGER memories_search_ai AFTER INSERT ON memories BEGIN {add}; {stats('+', 'new')}; END")
    op.execute(f"CREATE TRIGGER memories_search_ad AFTER DELETE ON memories BEGIN {remove}; {stats('-', 'old')}; END")
    # The scope columns are listed too: a memory whose agent or user changes must move to its new scope's token.
    op.execute(
        "CREATE TRIGGER memories_search_au AFTER UPDATE OF search_body, search_ctx, agent_id, user_id ON memories "
        f"BEGIN {remove}; {stats('-', 'old')}; {add}; {stats('+', 'new')}; END"
    )
    op.execute("INSERT INTO memories_fts(memories_fts) VALUES ('rebuild')")


def _drop_fts() -> None:
    for event in ("ai", "ad", "au"):
        op.execute(f"DROP TRIGGER IF EXISTS memories_search_{event}")
    op.execute("DROP TABLE IF EXISTS memories_fts_vocab")
    op.execute("DROP TABLE IF EXISTS memories_fts")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(f"ALTER TABLE memories ADD COLUMN search_scope TEXT GENERATED ALWAYS AS ({SCOPE_TOKEN}) VIRTUAL")
    _drop_fts()
    _fts(["search_body", "search_ctx", "search_scope"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop_fts()
    _fts(["search_body", "search_ctx"])
    op.execute("ALTER TABLE memories DROP COLUMN search_scope")
