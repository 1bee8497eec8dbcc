"""Users: create, read, update, delete, list; look-up by email (case-insensitive)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from repository._paging import check_window, count, dialect_insert, page_of
from repository.clock import utcnow
from repository.errors import NotFoundError
from repository.models import Page, User, UserCreate, UserUpdate
from repository.tables import UserRow


async def create_user(session: AsyncSession, data: UserCreate) -> User:
    row = UserRow(**data.model_dump())
    session.add(row)
    await session.flush()
    return User.model_validate(row)


async def _row(session: AsyncSession, user_id: uuid.UUID) -> UserRow:
    row = await session.get(UserRow, user_id)
    if row is None:
        raise NotFoundError(f"No user with id {user_id}.")
    return row


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    return User.model_validate(await _row(session, user_id))


async def get_user_by_email(session: AsyncSession, email: str) -> User:
    # lower() in SQL on both sides folds case exactly like the unique index (SQLite's lower() is ASCII-only).
    row = (
        await session.execute(select(UserRow).where(func.lower(UserRow.email) == func.lower(email)))
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"No user with email {email!r}.")
    return User.model_validate(row)


async def get_or_create_user_by_email(session: AsyncSession, email: str) -> User:
    """The user with this email, created if missing, in one statement (no check-then-insert race)."""
    stmt = (
        dialect_insert(session, UserRow)
        .values(id=uuid.uuid4(), email=email, user_data={}, created_at=utcnow(), updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=[func.lower(UserRow.email)])
    )
    await session.execute(stmt)
    return await get_user_by_email(session, email)


async def update_user(session: AsyncSession, user_id: uuid.UUID, data: UserUpdate) -> User:
    row = await _row(session, user_id)
    for field in data.model_fields_set:
        setattr(row, field, getattr(data, field))
    await session.flush()
    return User.model_validate(row)


async def delete_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Delete a user with their sessions, messages and memories (database cascades, never SET NULL)."""
    result = await session.execute(delete(UserRow).where(UserRow.id == user_id))
    if result.rowcount == 0:
        raise NotFoundError(f"No user with id {user_id}.")


async def list_users(
    session: AsyncSession, *, email_contains: str | None = None, limit: int = 50, offset: int = 0
) -> Page[User]:
    check_window(limit, offset)
    query = select(UserRow)
    if email_contains:
        query = query.where(func.lower(UserRow.email).contains(email_contains.lower(), autoescape=True))
    total = await count(session, query)
    rows = (await session.execute(query.order_by(UserRow.created_at, UserRow.id).limit(limit).offset(offset))).scalars()
    return page_of([User.model_validate(r) for r in rows], total, limit, offset)
