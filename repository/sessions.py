"""Chat sessions: each links one user and one agent. Listings carry the message count and the agent's name."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from repository._paging import check_window, count, page_of
from repository.errors import NotFoundError
from repository.models import Page, Session, SessionCreate, SessionSummary, SessionUpdate
from repository.tables import AgentRow, SessionRow


async def create_session(session: AsyncSession, data: SessionCreate) -> Session:
    values = data.model_dump()
    row = SessionRow(**{("metadata_" if k == "metadata" else k): v for k, v in values.items()})
    session.add(row)
    await session.flush()
    return Session.model_validate(row)


async def _row(session: AsyncSession, session_id: uuid.UUID, user_id: uuid.UUID | None = None) -> SessionRow:
    row = await session.get(SessionRow, session_id)
    # Another user's session is reported exactly like a missing one: its existence is not ours to reveal.
    if row is None or (user_id is not None and row.user_id != user_id):
        raise NotFoundError(f"No session with id {session_id}.")
    return row


async def get_session(session: AsyncSession, session_id: uuid.UUID, *, user_id: uuid.UUID | None = None) -> Session:
    """The session; with `user_id`, only if it belongs to that user."""
    return Session.model_validate(await _row(session, session_id, user_id))


async def update_session(
    session: AsyncSession, session_id: uuid.UUID, data: SessionUpdate, *, user_id: uuid.UUID | None = None
) -> Session:
    row = await _row(session, session_id, user_id)
    for field in data.model_fields_set:
        setattr(row, "metadata_" if field == "metadata" else field, getattr(data, field))
    await session.flush()
    return Session.model_validate(row)


async def delete_session(session: AsyncSession, session_id: uuid.UUID, *, user_id: uuid.UUID | None = None) -> None:
    """Delete a session with its messages and session-scoped memories (database cascades)."""
    await _row(session, session_id, user_id)
    await session.execute(delete(SessionRow).where(SessionRow.id == session_id))


async def list_sessions(
    session: AsyncSession,
    *,
    user_id: uuid.UUID | None = None,
    agent_id: uuid.UUID | None = None,
    platform: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page[SessionSummary]:
    """Sessions newest first, each with its message count and agent name."""
    check_window(limit, offset)
    query = select(SessionRow, AgentRow.name).join(AgentRow, AgentRow.id == SessionRow.agent_id)
    if user_id is not None:
        query = query.where(SessionRow.user_id == user_id)
    if agent_id is not None:
        query = query.where(SessionRow.agent_id == agent_id)
    if platform is not None:
        query = query.where(SessionRow.platform == platform)
    total = await count(session, query)
    ordered = query.order_by(SessionRow.created_at.desc(), SessionRow.id.desc()).limit(limit).offset(offset)
    items = [_summary(row, agent_name) for row, agent_name in (await session.execute(ordered)).all()]
    return page_of(items, total, limit, offset)


def _summary(row: SessionRow, agent_name: str) -> SessionSummary:
    data: dict[str, Any] = Session.model_validate(row).model_dump()
    return SessionSummary(**data, message_count=row.message_count, agent_name=agent_name)
