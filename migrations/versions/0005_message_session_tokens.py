"""SQLite: index each message's session as a token, so newest-first history searches skip other users' messages.

When every word of a question is common, search_history walks the full-text index newest first; without a token it
read every other user's matching messages on the way to the caller's. A third FTS5 column, `search_scope`, holds
one token per message naming its session: a generated column of the content table (a message never changes
session), so it can never disagree with the row. The search then requires one of the caller's session tokens
inside the index. PostgreSQL needs nothing: it walks each of the caller's sessions on ix_messages_session_seq.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of repository.messages.session_token: 'q' + the session id's 32 hex characters, twice (SQLite stores
# UUIDs as 32 lowercase hex characters). 65 characters: longer than any query term (at most 64), so no question can
# ever match it.
SESSION_TOKEN = "'q' || session_id || session_id"


def _ntok(column: str) -> str:
    return f"(CASE WHEN {column} = '' THEN 0 ELSE length({column}) - length(replace({column}, ' ', '')) + 1 END)"


def _fts(columns: Sequence[str]) -> None:
    """(Re)create messages_fts over `columns`, its vocabulary, and the triggers keeping it and search_stats."""
    names = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    op.execute(
        f"CREATE VIRTUAL TABLE messages_fts USING fts5({names}, content='messages', content_rowid='seq', "
        "tokenize = 'unicode61 remove_diacritics 0')"
    )
    op.execute("CREATE VIRTUAL TABLE messages_fts_vocab USING fts5vocab(messages_fts, 'row')")
    add = f"INSERT INTO messages_fts(rowid, {names}) VALUES (new.seq, {new})"
    remove = f"INSERT INTO messages_fts(messages_fts, rowid, {names}) VALUES ('delete', old.seq, {old})"

    def stats(sign: str, row: str) -> str:
        return (
            f"UPDATE search_stats SET n_docs = n_docs {sign} 1, "
            f"body_len = body_len {sign} {_ntok(row + '.search_body')}, "
            f"ctx_len = ctx_len {sign} {_ntok(row + '.search_ctx')} WHERE kind = 'message'"
        )

    op.execute(f"CREATE TRIGGER messages_search_ai AFTER INSERT ON messages BEGIN {add}; {stats('+', 'new')}; END")
    op.execute(f"CREATE TRIGGER messages_search_ad AFTER DELETE ON messages BEGIN {remove}; {stats('-', 'old')}; END")
    op.execute(
        "CREATE TRIGGER messages_search_au AFTER UPDATE OF search_body, search_ctx, session_id ON messages "
        f"BEGIN {remove}; {stats('-', 'old')}; {add}; {stats('+', 'new')}; END"
    )
    op.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")


def _drop_fts() -> None:
    for event in ("ai", "ad", "au"):
        op.execute(f"DROP TRIGGER IF EXISTS messages_search_{event}")
    op.execute("DROP TABLE IF EXISTS messages_fts_vocab")
    op.execute("DROP TABLE IF EXISTS messages_fts")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(f"ALTER TABLE messages ADD COLUMN search_scope TEXT GENERATED ALWAYS AS ({SESSION_TOKEN}) VIRTUAL")
    _drop_fts()
    _fts(["search_body", "search_ctx", "search_scope"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop_fts()
    _fts(["search_body", "search_ctx"])
    op.execute("ALTER TABLE messages DROP COLUMN search_scope")
