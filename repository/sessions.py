"""Chat sessions: each links one user and one agent. Listings carry the message count and the agent's name.

Written against a synchronous session like the other repositories (see repository._sync); the async forms at the
end take an AsyncSession. (`DbSession` is SQLAlchemy's Session: `Session` here is the chat session model.)
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session as DbSession

from repository._sync import in_async_session
from repository.errors import NotFoundError
from repository.models import Page, Session, SessionCreate, SessionSummary, SessionUpdate
from repository.paging import check_window, count, page_of
from repository.tables import AgentRow, SessionRow


def create_session_sync(session: DbSession, data: SessionCreate) -> Session:
    values = data.model_dump()
    row = SessionRow(**{("metadata_" if k == "metadata" else k): v for k, v in values.items()})
    session.add(row)
    session.flush()
    return Session.model_validate(row)


def _row(session: DbSession, session_id: uuid.UUID, user_id: uuid.UUID | None = None) -> SessionRow:
    row = session.get(SessionRow, session_id)
    # Another user's session is reported exactly like a missing one: its existence is not ours to reveal.
    if row is None or (user_id is not None and row.user_id != user_id):
        raise NotFoundError(f"No session with id {session_id}.")
    return row


def get_session_sync(session: DbSession, session_id: uuid.UUID, *, user_id: uuid.UUID | None = None) -> Session:
    """The session; with `user_id`, only if it belongs to that user."""
    return Session.model_validate(_row(session, session_id, user_id))


def update_session_sync(
    session: DbSession, session_id: uuid.UUID, data: SessionUpdate, *, user_id: uuid.UUID | None = None
) -> Session:
    row = _row(session, session_id, user_id)
    for field in data.model_fields_set:
        setattr(row, "metadata_" if field == "metadata" else field, getattr(data, field))
    session.flush()
    return Session.model_validate(row)


def delete_session_sync(session: DbSession, session_id: uuid.UUID, *, user_id: uuid.UUID | None = None) -> None:
    """Delete a session with its messages and session-scoped memories (database cascades)."""
    _row(session, session_id, user_id)
    session.execute(delete(SessionRow).where(SessionRow.id == session_id))


def list_sessions_sync(
    session: DbSession,
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
    total = count(session, query)
    ordered = query.order_by(SessionRow.created_at.desc(), SessionRow.id.desc()).limit(limit).offset(offset)
    items = [_summary(row, agent_name) for row, agent_name in session.execute(ordered).all()]
    return page_of(session, items, total, limit, offset)


def _summary(row: SessionRow, agent_name: str) -> SessionSummary:
    data: dict[str, Any] = Session.model_validate(row).model_dump()
    return SessionSummary(**data, message_count=row.message_count, agent_name=agent_name)


create_session = in_async_session(create_session_sync)
get_session = in_async_session(get_session_sync)
update_session = in_async_session(update_session_sync)
delete_session = in_async_session(delete_session_sync)
list_sessions = in_async_session(list_sessions_sync)
