"""Users: create, read, update, delete, list; look-up by email (case-insensitive).

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
from repository.models import Page, User, UserCreate, UserUpdate
from repository.paging import check_window, count, dialect_insert, page_of
from repository.tables import UserRow


def create_user_sync(session: Session, data: UserCreate) -> User:
    row = UserRow(**data.model_dump())
    session.add(row)
    session.flush()
    return User.model_validate(row)


def _row(session: Session, user_id: uuid.UUID) -> UserRow:
    row = session.get(UserRow, user_id)
    if row is None:
        raise NotFoundError(f"No user with id {user_id}.")
    return row


def get_user_sync(session: Session, user_id: uuid.UUID) -> User:
    return User.model_validate(_row(session, user_id))


def get_user_by_email_sync(session: Session, email: str) -> User:
    # lower() in SQL on both sides folds case exactly like the unique index (SQLite's lower() is ASCII-only).
    row = session.execute(select(UserRow).where(func.lower(UserRow.email) == func.lower(email))).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"No user with email {email!r}.")
    return User.model_validate(row)


def get_or_create_user_by_email_sync(session: Session, email: str) -> User:
    """The user with this email, created if missing, in one statement (no check-then-insert race)."""
    now = utcnow()
    stmt = (
        dialect_insert(session, UserRow)
        .values(id=uuid.uuid4(), email=email, user_data={}, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=[func.lower(UserRow.email)])
    )
    session.execute(stmt)
    return get_user_by_email_sync(session, email)


def update_user_sync(session: Session, user_id: uuid.UUID, data: UserUpdate) -> User:
    row = _row(session, user_id)
    for field in data.model_fields_set:
        setattr(row, field, getattr(data, field))
    session.flush()
    return User.model_validate(row)


def delete_user_sync(session: Session, user_id: uuid.UUID) -> None:
    """Delete a user with their sessions, messages and memories (database cascades, never SET NULL)."""
    result = session.execute(delete(UserRow).where(UserRow.id == user_id))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFoundError(f"No user with id {user_id}.")


def list_users_sync(
    session: Session, *, email_contains: str | None = None, limit: int = 50, offset: int = 0
) -> Page[User]:
    check_window(limit, offset)
    query = select(UserRow)
    if email_contains:
        query = query.where(func.lower(UserRow.email).contains(email_contains.lower(), autoescape=True))
    total = count(session, query)
    rows = session.execute(query.order_by(UserRow.created_at, UserRow.id).limit(limit).offset(offset)).scalars()
    return page_of(session, [User.model_validate(r) for r in rows], total, limit, offset)


create_user = in_async_session(create_user_sync)
get_user = in_async_session(get_user_sync)
get_user_by_email = in_async_session(get_user_by_email_sync)
get_or_create_user_by_email = in_async_session(get_or_create_user_by_email_sync)
update_user = in_async_session(update_user_sync)
delete_user = in_async_session(delete_user_sync)
list_users = in_async_session(list_users_sync)
