"""Agents: create, read, update, delete, list; look-up by name (case-insensitive, exact).

Written against a synchronous session like the other repositories (see repository._sync); the async forms at the
end take an AsyncSession.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from repository._sync import in_async_session
from repository.clock import utcnow
from repository.errors import NotFoundError
from repository.models import Agent, AgentCreate, AgentUpdate, Page
from repository.paging import check_window, count, dialect_insert, page_of
from repository.tables import AgentRow


def create_agent_sync(session: Session, data: AgentCreate) -> Agent:
    row = AgentRow(**data.model_dump())
    session.add(row)
    session.flush()
    return Agent.model_validate(row)


def _row(session: Session, agent_id: uuid.UUID) -> AgentRow:
    row = session.get(AgentRow, agent_id)
    if row is None:
        raise NotFoundError(f"No agent with id {agent_id}.")
    return row


def get_agent_sync(session: Session, agent_id: uuid.UUID) -> Agent:
    return Agent.model_validate(_row(session, agent_id))


def get_agent_by_name_sync(session: Session, name: str) -> Agent:
    # lower() in SQL on both sides folds case exactly like the unique index (SQLite's lower() is ASCII-only).
    row = session.execute(select(AgentRow).where(func.lower(AgentRow.name) == func.lower(name))).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"No agent named {name!r}.")
    return Agent.model_validate(row)


def get_or_create_agent_by_name_sync(session: Session, name: str) -> Agent:
    """The agent with this name, created if missing, in one statement (no check-then-insert race)."""
    now = utcnow()
    stmt = (
        dialect_insert(session, AgentRow)
        .values(id=uuid.uuid4(), name=name, config={}, active=True, run_id=1, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=[func.lower(AgentRow.name)])
    )
    session.execute(stmt)
    return get_agent_by_name_sync(session, name)


def update_agent_sync(session: Session, agent_id: uuid.UUID, data: AgentUpdate) -> Agent:
    row = _row(session, agent_id)
    for field in data.model_fields_set:
        setattr(row, field, getattr(data, field))
    session.flush()
    return Agent.model_validate(row)


def delete_agent_sync(session: Session, agent_id: uuid.UUID) -> None:
    """Delete an agent with its sessions, messages and agent-scoped memories (database cascades)."""
    result = session.execute(delete(AgentRow).where(AgentRow.id == agent_id))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFoundError(f"No agent with id {agent_id}.")


def list_agents_sync(session: Session, *, active: bool | None = None, limit: int = 50, offset: int = 0) -> Page[Agent]:
    check_window(limit, offset)
    query = select(AgentRow)
    if active is not None:
        query = query.where(AgentRow.active.is_(active))
    total = count(session, query)
    rows = session.execute(query.order_by(AgentRow.name, AgentRow.id).limit(limit).offset(offset)).scalars()
    return page_of(session, [Agent.model_validate(r) for r in rows], total, limit, offset)


create_agent = in_async_session(create_agent_sync)
get_agent = in_async_session(get_agent_sync)
get_agent_by_name = in_async_session(get_agent_by_name_sync)
get_or_create_agent_by_name = in_async_session(get_or_create_agent_by_name_sync)
update_agent = in_async_session(update_agent_sync)
delete_agent = in_async_session(delete_agent_sync)
list_agents = in_async_session(list_agents_sync)
