"""Agents: create, read, update, delete, list; look-up by name (case-insensitive, exact)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from repository._paging import check_window, count, dialect_insert, page_of
from repository.clock import utcnow
from repository.errors import NotFoundError
from repository.models import Agent, AgentCreate, AgentUpdate, Page
from repository.tables import AgentRow


async def create_agent(session: AsyncSession, data: AgentCreate) -> Agent:
    row = AgentRow(**data.model_dump())
    session.add(row)
    await session.flush()
    return Agent.model_validate(row)


async def _row(session: AsyncSession, agent_id: uuid.UUID) -> AgentRow:
    row = await session.get(AgentRow, agent_id)
    if row is None:
        raise NotFoundError(f"No agent with id {agent_id}.")
    return row


async def get_agent(session: AsyncSession, agent_id: uuid.UUID) -> Agent:
    return Agent.model_validate(await _row(session, agent_id))


async def get_agent_by_name(session: AsyncSession, name: str) -> Agent:
    # lower() in SQL on both sides folds case exactly like the unique index (SQLite's lower() is ASCII-only).
    row = (
        await session.execute(select(AgentRow).where(func.lower(AgentRow.name) == func.lower(name)))
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"No agent named {name!r}.")
    return Agent.model_validate(row)


async def get_or_create_agent_by_name(session: AsyncSession, name: str) -> Agent:
    """The agent with this name, created if missing, in one statement (no check-then-insert race)."""
    now = utcnow()
    stmt = (
        dialect_insert(session, AgentRow)
        .values(id=uuid.uuid4(), name=name, config={}, active=True, run_id=1, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=[func.lower(AgentRow.name)])
    )
    await session.execute(stmt)
    return await get_agent_by_name(session, name)


async def update_agent(session: AsyncSession, agent_id: uuid.UUID, data: AgentUpdate) -> Agent:
    row = await _row(session, agent_id)
    for field in data.model_fields_set:
        setattr(row, field, getattr(data, field))
    await session.flush()
    return Agent.model_validate(row)


async def delete_agent(session: AsyncSession, agent_id: uuid.UUID) -> None:
    """Delete an agent with its sessions, messages and agent-scoped memories (database cascades)."""
    result = await session.execute(delete(AgentRow).where(AgentRow.id == agent_id))
    if result.rowcount == 0:
        raise NotFoundError(f"No agent with id {agent_id}.")


async def list_agents(
    session: AsyncSession, *, active: bool | None = None, limit: int = 50, offset: int = 0
) -> Page[Agent]:
    check_window(limit, offset)
    query = select(AgentRow)
    if active is not None:
        query = query.where(AgentRow.active.is_(active))
    total = await count(session, query)
    rows = (await session.execute(query.order_by(AgentRow.name, AgentRow.id).limit(limit).offset(offset))).scalars()
    return page_of([Agent.model_validate(r) for r in rows], total, limit, offset)
