"""Ranked search over memories and messages (see repository.search.engine for how a search runs).

    hits = search_memories_sync(session, "What does Ada drink?", user_id=ada.id, agent_id=helper.id)

The `*_sync` forms take a synchronous Session (one worker-thread hop through `Database.read`); `search_memories`
and `search_messages` are the async forms, inside the caller's unit of work.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from repository._sync import in_async_session
from repository.search.engine import engine_of
from repository.search.types import MemoryFilters, MemoryHit, MessageFilters, MessageHit

__all__ = [
    "MemoryFilters",
    "MemoryHit",
    "MessageFilters",
    "MessageHit",
    "search_memories",
    "search_memories_sync",
    "search_messages",
    "search_messages_sync",
]


def search_memories_sync(
    session: Session,
    query: str,
    *,
    user_id: uuid.UUID,
    agent_id: uuid.UUID,
    filters: MemoryFilters | None = None,
    limit: int = 10,
) -> list[MemoryHit]:
    """Memories visible to (user, agent) that match `query`, best first. A query with no content words finds none."""
    return engine_of(session).memories(session, query, user_id, agent_id, filters or MemoryFilters(), limit)


def search_messages_sync(
    session: Session,
    query: str,
    *,
    user_id: uuid.UUID,
    agent_id: uuid.UUID | None = None,
    session_ids: Sequence[uuid.UUID] | None = None,
    roles: Sequence[str] | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: int = 10,
) -> list[MessageHit]:
    """Messages in the user's sessions matching `query`, best first.

    Narrowed, when given, to some sessions, one agent's sessions, some roles, or a creation-time range.
    """
    filters = MessageFilters(
        agent_id=agent_id,
        session_ids=tuple(session_ids or ()),
        roles=tuple(roles or ()),
        created_after=created_after,
        created_before=created_before,
    )
    return engine_of(session).messages(session, query, user_id, filters, limit)


search_memories = in_async_session(search_memories_sync)
search_messages = in_async_session(search_messages_sync)
