"""Who may see which rows, as SQL: the one home of the read rules that searches, listings and writes share.

Memories: an acting (user, agent) pair reads its own memories, its agent's shared ones (user_id NULL) and global
ones (agent_id NULL too); another user's never match. Messages: a user reads the messages of their own sessions.
`repository.scopes` has the same vocabulary without SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import BindParameter, ColumnElement, Select, and_, literal_column, or_, select

from repository.clock import utcnow
from repository.errors import InvalidInputError
from repository.models import MemoryScope
from repository.scopes import Scope
from repository.tables import MemoryRow, SessionRow


def visible_to(user_id: uuid.UUID, agent_id: uuid.UUID) -> ColumnElement[bool]:
    """Memories an acting (user, agent) pair may read: its own, its agent's shared ones, and global ones."""
    return and_(
        or_(MemoryRow.agent_id == agent_id, MemoryRow.agent_id.is_(None)),
        or_(MemoryRow.user_id == user_id, MemoryRow.user_id.is_(None)),
    )


def visibility_partitions(user_id: uuid.UUID, agent_id: uuid.UUID) -> list[ColumnElement[bool]]:
    """`visible_to` as four disjoint (agent, user) equalities, each a key prefix of ix_memories_agent_user_seq."""
    return [
        and_(agent, user)
        for agent in (MemoryRow.agent_id == agent_id, MemoryRow.agent_id.is_(None))
        for user in (MemoryRow.user_id == user_id, MemoryRow.user_id.is_(None))
    ]


def visibility_tokens(user_id: uuid.UUID, agent_id: uuid.UUID) -> list[str]:
    """The `search_scope` tokens (SQLite full-text index, migration 0002) of `visibility_partitions`, in order."""
    return [f"z{agent}x{user}" for agent in (agent_id.hex, "0") for user in (user_id.hex, "0")]


def session_token(session_id: uuid.UUID) -> str:
    """The `search_scope` token of a session's messages in SQLite's full-text index (migration 0005)."""
    return f"q{session_id.hex}{session_id.hex}"


def not_expired(now: datetime | BindParameter[datetime] | None = None) -> ColumnElement[bool]:
    """Memories not expired at `now` (default: this moment); a bound parameter lets a cached statement serve
    later reads, each binding its own time."""
    return or_(MemoryRow.expires_at.is_(None), MemoryRow.expires_at > (utcnow() if now is None else now))


def expired(now: datetime) -> ColumnElement[bool]:
    """Exactly the memories `not_expired` hides, spelt as the partial index ix_memories_expires_at is, so the
    sweeper's search for them reads that index on both engines."""
    return and_(MemoryRow.expires_at.is_not(None), MemoryRow.expires_at <= now)


def scope_is(scope: MemoryScope) -> ColumnElement[bool]:
    """Exactly this scope: NULL columns match only NULL (never `= NULL`, never a wider scope)."""
    return and_(
        *(
            column.is_(None) if value is None else column == value
            for column, value in (
                (MemoryRow.agent_id, scope.agent_id),
                (MemoryRow.user_id, scope.user_id),
                (MemoryRow.session_id, scope.session_id),
            )
        )
    )


def scope_kind_is(kind: str) -> ColumnElement[bool]:
    """Memories of one kind of scope: 'session', 'user', 'agent' (all users of an agent) or 'global'."""
    if kind == "session":
        return MemoryRow.session_id.is_not(None)
    if kind == "user":
        return and_(MemoryRow.user_id.is_not(None), MemoryRow.session_id.is_(None))
    if kind == "agent":
        return and_(MemoryRow.agent_id.is_not(None), MemoryRow.user_id.is_(None), MemoryRow.session_id.is_(None))
    if kind == "global":
        return and_(MemoryRow.agent_id.is_(None), MemoryRow.user_id.is_(None), MemoryRow.session_id.is_(None))
    raise InvalidInputError(f"Unknown scope {kind!r}: use session, user, agent or global.")


def searchable_memories(
    user_id: uuid.UUID, agent_id: uuid.UUID, scopes: Sequence[Scope], session_id: uuid.UUID | None
) -> ColumnElement[bool]:
    """The chosen kinds of scope, always inside the visibility rules of (user, agent), whatever the scopes say."""
    kinds = [scope_kind_is(kind) for kind in sorted(scopes)]
    if not kinds:
        return literal_column("1 = 0")
    condition = and_(visible_to(user_id, agent_id), or_(*kinds))
    if session_id is not None:
        # Narrow the session-scoped memories to one session; memories of the other scopes are unaffected.
        condition = and_(condition, or_(MemoryRow.session_id.is_(None), MemoryRow.session_id == session_id))
    return condition


def owned_sessions(
    user_id: uuid.UUID, agent_id: uuid.UUID | None = None, session_ids: Sequence[uuid.UUID] | None = None
) -> Select[uuid.UUID]:
    """The ids of the user's sessions (with one agent, among some sessions, when given): whose messages they see."""
    owned = select(SessionRow.id).where(SessionRow.user_id == user_id)
    if agent_id is not None:
        owned = owned.where(SessionRow.agent_id == agent_id)
    if session_ids:
        owned = owned.where(SessionRow.id.in_(list(session_ids)))
    return owned
