"""Ranked full-text search over memories and messages, on FTS5 (SQLite) and tsvector (PostgreSQL).

Queries are natural language: they are reduced to their content words in Python (`repository.textsearch`), so no
character a user types can reach the full-text engine as syntax, and both backends see the same terms.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, column, func, literal_column, or_, select, table, text
from sqlalchemy.ext.asyncio import AsyncSession

from repository.memories import not_expired, visible_to
from repository.models import Memory, Message
from repository.tables import MemoryRow, MessageRow, SessionRow
from repository.textsearch import query_terms

MAX_RESULTS = 100

# The FTS5 virtual tables (created by the migrations), as much of them as queries need.
_memories_fts = table("memories_fts", column("rowid"))
_messages_fts = table("messages_fts", column("rowid"))


@dataclass(frozen=True)
class MemoryHit:
    memory: Memory
    score: float


@dataclass(frozen=True)
class MessageHit:
    message: Message
    score: float


@dataclass(frozen=True)
class MemoryFilters:
    """Narrowing beyond the visibility rules: scopes, a session, metadata equality, a creation-time range."""

    scopes: frozenset[str] = frozenset({"user", "agent", "session", "global"})
    session_id: uuid.UUID | None = None
    metadata: dict[str, Any] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def _scope_condition(user_id: uuid.UUID, agent_id: uuid.UUID, filters: MemoryFilters) -> Any:
    parts = []
    if "user" in filters.scopes:
        parts.append(and_(MemoryRow.agent_id == agent_id, MemoryRow.user_id == user_id, MemoryRow.session_id.is_(None)))
    if "agent" in filters.scopes:
        parts.append(and_(MemoryRow.agent_id == agent_id, MemoryRow.user_id.is_(None), MemoryRow.session_id.is_(None)))
    if "global" in filters.scopes:
        parts.append(and_(MemoryRow.agent_id.is_(None), MemoryRow.user_id.is_(None), MemoryRow.session_id.is_(None)))
    if "session" in filters.scopes:
        session_part = and_(MemoryRow.user_id == user_id, MemoryRow.session_id.is_not(None))
        if filters.session_id is not None:
            session_part = and_(session_part, MemoryRow.session_id == filters.session_id)
        parts.append(session_part)
    # Always inside the visibility rules, whatever the scopes say.
    return and_(visible_to(user_id, agent_id), or_(*parts)) if parts else literal_column("1=0")


def _memory_filters(query: Any, filters: MemoryFilters) -> Any:
    query = query.where(not_expired())
    for key, value in (filters.metadata or {}).items():
        query = query.where(MemoryRow.metadata_[key].as_string() == str(value))
    if filters.created_after is not None:
        query = query.where(MemoryRow.created_at >= filters.created_after)
    if filters.created_before is not None:
        query = query.where(MemoryRow.created_at < filters.created_before)
    return query


async def search_memories(
    session: AsyncSession,
    query: str,
    *,
    user_id: uuid.UUID,
    agent_id: uuid.UUID,
    filters: MemoryFilters | None = None,
    limit: int = 10,
) -> list[MemoryHit]:
    """Memories visible to (user, agent) that match `query`, best first. A query with no content words finds none."""
    filters = filters or MemoryFilters()
    terms = query_terms(query)
    if not terms:
        return []
    limit = max(1, min(limit, MAX_RESULTS))
    scope = _scope_condition(user_id, agent_id, filters)
    if session.get_bind().dialect.name == "sqlite":
        match = " OR ".join(f'"{t}"' for t in terms)
        rank = literal_column("bm25(memories_fts, 5.0, 1.0, 2.0)")
        stmt = (
            select(MemoryRow, rank.label("rank"))
            .join(_memories_fts, _memories_fts.c.rowid == MemoryRow.seq)
            .where(text("memories_fts MATCH :match").bindparams(match=match), scope)
            .order_by(rank)
            .limit(limit)
        )
        rows = (await session.execute(_memory_filters(stmt, filters))).all()
        return [MemoryHit(Memory.model_validate(row), -float(score)) for row, score in rows]
    tsquery = func.to_tsquery("english", " | ".join(terms))
    vector = literal_column("memories.search_vector")
    rank = func.ts_rank_cd(vector, tsquery, 32)
    stmt = (
        select(MemoryRow, rank.label("rank")).where(vector.op("@@")(tsquery), scope).order_by(rank.desc()).limit(limit)
    )
    rows = (await session.execute(_memory_filters(stmt, filters))).all()
    return [MemoryHit(Memory.model_validate(row), float(score)) for row, score in rows]


async def search_messages(
    session: AsyncSession,
    query: str,
    *,
    user_id: uuid.UUID,
    agent_id: uuid.UUID | None = None,
    session_ids: Sequence[uuid.UUID] | None = None,
    limit: int = 10,
) -> list[MessageHit]:
    """Messages in the user's sessions (optionally only some sessions, or one agent's) matching `query`, best first."""
    terms = query_terms(query)
    if not terms:
        return []
    limit = max(1, min(limit, MAX_RESULTS))
    owned = select(SessionRow.id).where(SessionRow.user_id == user_id)
    if agent_id is not None:
        owned = owned.where(SessionRow.agent_id == agent_id)
    if session_ids:
        owned = owned.where(SessionRow.id.in_(list(session_ids)))
    if session.get_bind().dialect.name == "sqlite":
        match = " OR ".join(f'"{t}"' for t in terms)
        rank = literal_column("bm25(messages_fts)")
        stmt = (
            select(MessageRow, rank.label("rank"))
            .join(_messages_fts, _messages_fts.c.rowid == MessageRow.seq)
            .where(text("messages_fts MATCH :match").bindparams(match=match), MessageRow.session_id.in_(owned))
            .order_by(rank)
            .limit(limit)
        )
        rows = (await session.execute(stmt)).all()
        return [MessageHit(Message.model_validate(row), -float(score)) for row, score in rows]
    tsquery = func.to_tsquery("english", " | ".join(terms))
    vector = literal_column("messages.search_vector")
    rank = func.ts_rank_cd(vector, tsquery, 32)
    stmt = (
        select(MessageRow, rank.label("rank"))
        .where(vector.op("@@")(tsquery), MessageRow.session_id.in_(owned))
        .order_by(rank.desc())
        .limit(limit)
    )
    rows = (await session.execute(stmt)).all()
    return [MessageHit(Message.model_validate(row), float(score)) for row, score in rows]
