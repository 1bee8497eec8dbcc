"""The scope vocabulary: which kinds of scope a memory can have, and how a scope maps to its owner columns.

A memory's scope is its (agent_id, user_id, session_id) triple; a NULL column widens it. The four kinds:
- session: one session of one user (all three set);
- user: one user with one agent (the default);
- agent: every user of one agent (user_id NULL);
- global: everyone (all NULL; written only by operators, never by an agent's tool call).
The SQL form of these rules (what an acting user may read) is in `repository.visibility`.
"""

from __future__ import annotations

import uuid
from typing import Literal, get_args

from repository.errors import InvalidInputError
from repository.models import Actor, MemoryScope

Scope = Literal["session", "user", "agent", "global"]
WritableScope = Literal["user", "agent", "session"]
ALL_SCOPES: tuple[Scope, ...] = get_args(Scope)
# Where two memories share a name, the narrower one wins (a user's own memory over an agent-wide one).
NARROWNESS: dict[Scope, int] = {"session": 0, "user": 1, "agent": 2, "global": 3}


def scope_kind(agent_id: uuid.UUID | None, user_id: uuid.UUID | None, session_id: uuid.UUID | None) -> Scope:
    """The kind of scope of a memory's owner columns."""
    if session_id is not None:
        return "session"
    if user_id is not None:
        return "user"
    if agent_id is not None:
        return "agent"
    return "global"


def write_scope(scope: WritableScope | None, session_id: uuid.UUID | None) -> WritableScope:
    """The scope a write goes to: 'user' by default, 'session' when only a session is named."""
    chosen: WritableScope = scope or ("session" if session_id else "user")
    if chosen == "session" and session_id is None:
        raise InvalidInputError("scope 'session' needs session_id: pass the id returned by create_session.")
    if chosen != "session" and session_id is not None:
        raise InvalidInputError(f"session_id only applies to scope 'session', not {chosen!r}: drop one of them.")
    return chosen


def owner_columns(scope: WritableScope, actor: Actor, session_id: uuid.UUID | None = None) -> MemoryScope:
    """The owner columns of a memory the actor writes in `scope`."""
    return MemoryScope(
        agent_id=actor.agent_id,
        user_id=None if scope == "agent" else actor.user_id,
        session_id=session_id if scope == "session" else None,
    )
