"""The database's lifecycle, as sync repository functions: what it holds (stats), removing expired memories in
bounded batches, forgetting one user entirely, and the recent ids a client completes resource URIs with.

Like the other repositories these flush and never commit; `repository.operations.lifecycle` runs them in units of
work (`Database.read` / `Database.write`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, Table, delete, func, or_, select, text, union_all
from sqlalchemy.orm import Session

from repository.errors import NotFoundError
from repository.limits import PURGE_BATCH
from repository.memories import _same_scope
from repository.runtime import runtime_of
from repository.scope_keys import SCOPE_COLUMNS
from repository.search_index import MEMORY_NEIGHBOUR_WINDOW, Neighbours, relink
from repository.tables import AgentRow, ApiTokenRow, MemoryRow, MessageRow, SessionRow, UserRow
from repository.visibility import expired, not_expired, visibility_partitions, visible_to

# Deleted memories of one scope are re-indexed together when they lie within this many rows (seq) of each other:
# one read of the rows around and between them instead of one per deleted row, and that read stays bounded.
RELINK_SPAN = 256
# From this many typed digits on, completing memory ids looks the typed range up first (see _recent_memory_ids).
RANGE_FIRST_DIGITS = 2

IdKind = Literal["memory", "session"]
_MEMORIES = cast(Table, MemoryRow.__table__)


@dataclass(frozen=True)
class DatabaseStats:
    """What a database holds, for `agent-memory-mcp stats`."""

    dialect: str
    schema_revision: str | None
    database_bytes: int | None
    users: int
    agents: int
    sessions: int
    messages: int
    memories: int
    expired_memories: int


@dataclass(frozen=True)
class UserFootprint:
    """Everything stored for one user: what `delete-user` removes."""

    user_id: uuid.UUID
    user: str
    sessions: int
    messages: int
    memories: int
    tokens: int


def _count(session: Session, table: Any, *conditions: ColumnElement[bool]) -> int:
    query = select(func.count()).select_from(table)
    if conditions:
        query = query.where(*conditions)
    return int(session.execute(query).scalar_one())


def _database_bytes(session: Session) -> int | None:
    """The database's size on disk: PostgreSQL's own figure; on SQLite the file plus its write-ahead log."""
    engine = session.get_bind().engine
    if engine.dialect.name == "postgresql":
        return int(session.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    path = engine.url.database
    if path and path != ":memory:" and os.path.exists(path):
        wal = f"{path}-wal"
        return os.path.getsize(path) + (os.path.getsize(wal) if os.path.exists(wal) else 0)
    pages = session.execute(text("PRAGMA page_count")).scalar_one()
    return int(pages) * int(session.execute(text("PRAGMA page_size")).scalar_one())


def _schema_revision(session: Session) -> str | None:
    revision = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return str(revision) if revision is not None else None


def stats_sync(session: Session, now: datetime) -> DatabaseStats:
    """Row counts (exact: this is an operator's command, not a per-call listing), size and schema revision."""
    return DatabaseStats(
        dialect=session.get_bind().engine.dialect.name,
        schema_revision=_schema_revision(session),
        database_bytes=_database_bytes(session),
        users=_count(session, UserRow),
        agents=_count(session, AgentRow),
        sessions=_count(session, SessionRow),
        messages=_count(session, MessageRow),
        memories=_count(session, MemoryRow),
        expired_memories=_count(session, MemoryRow, expired(now)),
    )


def expired_memory_seqs_sync(session: Session, now: datetime, limit: int = PURGE_BATCH) -> list[int]:
    """Up to `limit` memories expired at `now`, oldest first (the partial index ix_memories_expires_at finds them;
    the matches are sorted). A read, run outside the write transaction, which then touches these rows by key."""
    found = session.execute(select(MemoryRow.seq).where(expired(now)).order_by(MemoryRow.seq).limit(limit))
    return list(found.scalars())


def delete_expired_memories_sync(session: Session, seqs: Sequence[int], now: datetime) -> list[Any]:
    """Delete those of `seqs` that are still expired at `now` (an update may have extended one since it was
    found) and re-index their former neighbours; returns the deleted rows' (seq, agent_id, user_id, session_id,
    id), for change notifications."""
    if not seqs:
        return []
    condition = MemoryRow.seq.in_(list(seqs)) & expired(now)
    rows = session.execute(
        select(MemoryRow.seq, MemoryRow.agent_id, MemoryRow.user_id, MemoryRow.session_id, MemoryRow.id).where(
            condition
        )
    ).all()
    if not rows:
        return []
    session.execute(delete(MemoryRow).where(MemoryRow.seq.in_([row.seq for row in rows])))
    # After every delete of the batch, so a neighbour deleted in the same batch lends nothing any more.
    by_scope: dict[tuple[uuid.UUID | None, ...], list[int]] = {}
    for row in rows:
        by_scope.setdefault((row.agent_id, row.user_id, row.session_id), []).append(row.seq)
    for scope, seqs_of_scope in by_scope.items():
        for cluster in _clusters(sorted(seqs_of_scope), RELINK_SPAN):
            _relink_scope(session, scope, cluster)
    return list(rows)


def _clusters(seqs: list[int], span: int) -> list[list[int]]:
    """Sorted `seqs` cut into runs whose first and last lie at most `span` apart."""
    runs: list[list[int]] = []
    for seq in seqs:
        if runs and seq - runs[-1][0] <= span:
            runs[-1].append(seq)
        else:
            runs.append([seq])
    return runs


def _relink_scope(session: Session, scope: tuple[uuid.UUID | None, ...], seqs: list[int]) -> None:
    """`repository.memories._relink` for several deleted rows of one scope: one read of the rows around and
    between them, one batch of updates (the same statements, from the same cache entries)."""
    nulls = tuple(value is None for value in scope)
    params = {f"n_{name}": value for name, value in zip(SCOPE_COLUMNS, scope, strict=True) if value is not None}
    condition = runtime_of(session).statements.get(("same scope", nulls), lambda: _same_scope(nulls))
    neighbours = Neighbours(f"scope{nulls}", condition, params)
    relink(session, _MEMORIES, neighbours, seqs, window=MEMORY_NEIGHBOUR_WINDOW)


def _user_row(session: Session, user_key: str) -> UserRow:
    # The same case-insensitive match as the identity look-up (repository.users).
    row = session.execute(select(UserRow).where(func.lower(UserRow.email) == func.lower(user_key))).scalar()
    if row is None:
        raise NotFoundError(f"No user {user_key!r}: give the name the user acts as (the --user value or token user).")
    return row


def user_footprint_sync(session: Session, user_key: str) -> UserFootprint:
    """What is stored for the user named `user_key` (NotFoundError if there is none)."""
    row = _user_row(session, user_key)
    own_sessions = select(SessionRow.id).where(SessionRow.user_id == row.id)
    # What the foreign keys cascade to: rows naming the user, and rows of the user's sessions.
    messages = or_(MessageRow.session_id.in_(own_sessions), MessageRow.user_id == row.id)
    memories = or_(MemoryRow.user_id == row.id, MemoryRow.session_id.in_(own_sessions))
    return UserFootprint(
        user_id=row.id,
        user=row.email or user_key,
        sessions=_count(session, SessionRow, SessionRow.user_id == row.id),
        messages=_count(session, MessageRow, messages),
        memories=_count(session, MemoryRow, memories),
        tokens=_count(session, ApiTokenRow, ApiTokenRow.user_id == row.id),
    )


def delete_user_sync(session: Session, user_key: str) -> UserFootprint:
    """Delete the user named `user_key` and everything of theirs; returns what was deleted.

    The foreign keys cascade from the user to their sessions (and so their messages and session memories), their
    memories and their managed tokens; the database's triggers keep the search index and statistics exact. Every
    scope of the user's memories includes the user, so no other row lent context to them or needs re-indexing.
    Agent-wide memories (no user) are not anyone's and stay.
    """
    footprint = user_footprint_sync(session, user_key)
    session.execute(delete(UserRow).where(UserRow.id == footprint.user_id))
    return footprint


def _typed_digits(prefix: str) -> str | None:
    """The hex digits of a typed id prefix (dashes and case ignored), or None when no id can start with it."""
    digits = prefix.strip().lower().replace("-", "")
    if len(digits) > 32 or any(c not in "0123456789abcdef" for c in digits):
        return None
    return digits


def _id_bounds(digits: str) -> tuple[uuid.UUID, uuid.UUID]:
    # A range of the primary key, not a text match: ids are stored as 32 hex digits on SQLite and as uuid on
    # PostgreSQL, both ordered digit by digit, so both backends can use their unique index on id.
    return uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))


def _recent_memory_ids(
    session: Session, user_id: uuid.UUID, agent_id: uuid.UUID, digits: str, limit: int
) -> list[uuid.UUID]:
    in_range = MemoryRow.id.between(*_id_bounds(digits))
    if len(digits) >= RANGE_FIRST_DIGITS:
        # Few ids of the whole table start with this many given digits: find them by the unique index on id, then
        # keep the visible ones (planners otherwise walk every visible row, testing the range on each).
        typed = MemoryRow.seq.in_(select(MemoryRow.seq).where(in_range))
        query = select(MemoryRow.id).where(typed, visible_to(user_id, agent_id), not_expired())
        return list(session.execute(query.order_by(MemoryRow.seq.desc()).limit(limit)).scalars())
    # Few digits: walk each visibility partition newest first on its index, stopping at `limit` matches (the OR of
    # `visible_to` would sort every visible row first). Subqueries, since SQLite allows no ORDER BY or LIMIT on
    # the members of a compound select.
    parts = [
        select(MemoryRow.id, MemoryRow.seq)
        .where(part, not_expired(), in_range)
        .order_by(MemoryRow.seq.desc())
        .limit(limit)
        .subquery(f"p{i}")
        for i, part in enumerate(visibility_partitions(user_id, agent_id))
    ]
    merged = union_all(*(select(*part.c) for part in parts)).subquery("merged")
    query = select(merged.c.id).order_by(merged.c.seq.desc()).limit(limit)
    return list(session.execute(query).scalars())


def recent_ids_sync(
    session: Session, kind: IdKind, user_id: uuid.UUID, agent_id: uuid.UUID, prefix: str, limit: int
) -> list[uuid.UUID]:
    """The newest ids of `kind` starting with `prefix` that the (user, agent) pair's listings show: memories it
    may see and that have not expired (list_memories), its own sessions with this agent (list_sessions)."""
    digits = _typed_digits(prefix)
    if digits is None:
        return []
    if kind == "memory":
        return _recent_memory_ids(session, user_id, agent_id, digits, limit)
    query = (
        select(SessionRow.id)
        .where(
            SessionRow.user_id == user_id, SessionRow.agent_id == agent_id, SessionRow.id.between(*_id_bounds(digits))
        )
        .order_by(SessionRow.created_at.desc(), SessionRow.id.desc())
    )
    return list(session.execute(query.limit(limit)).scalars())
