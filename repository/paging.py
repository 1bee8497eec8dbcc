"""Shared helpers for listings: bounded limits, totals, opaque cursors."""

from __future__ import annotations

import base64
import json
from typing import Any, TypeAlias, TypeGuard, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from repository.errors import InvalidInputError
from repository.limits import REPOSITORY_PAGE_MAX
from repository.models import Page
from repository.runtime import runtime_of

T = TypeVar("T")
# A select of any columns (Select is variadic in its column types).
AnySelect: TypeAlias = Select[*tuple[Any, ...]]


def check_window(limit: int, offset: int = 0, maximum: int = REPOSITORY_PAGE_MAX) -> None:
    """`limit` within 1..maximum (the repositories' own bound by default; operations pass their per-call one)."""
    if not 1 <= limit <= maximum:
        raise InvalidInputError(f"limit must be between 1 and {maximum}, got {limit}.")
    if offset < 0:
        raise InvalidInputError(f"offset must be 0 or more, got {offset}.")


def count(session: Session, query: AnySelect) -> int:
    """The number of rows `query` would return, ignoring its ordering and window, up to the count cap + 1 (= "more").

    The cap (`Bounds.count_cap`) keeps a listing from reading every matching row (at 1M memories, a sequential scan
    on each list call).
    """
    cap = runtime_of(session).bounds.count_cap
    counted = select(func.count()).select_from(query.order_by(None).limit(cap + 1).offset(None).subquery())
    return int(session.execute(counted).scalar_one())


def page_of(session: Session, items: list[T], counted: int, limit: int, offset: int) -> Page[T]:
    """A page whose total is `counted` from `count`, flagged when the count stopped at the cap."""
    cap = runtime_of(session).bounds.count_cap
    return Page[T](items=items, total=min(counted, cap), total_capped=counted > cap, limit=limit, offset=offset)


def encode_cursor(kind: str, **values: Any) -> str:
    raw = json.dumps({"k": kind, **values}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> dict[str, Any]:
    """Parse a cursor made by `encode_cursor(kind, ...)`; anything else is the caller's mistake, said plainly."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or data.get("k") != kind:
            raise ValueError
        return data
    except (ValueError, TypeError, UnicodeError):
        raise InvalidInputError(
            "cursor is not valid: pass the next_cursor value from the previous page unchanged, or omit it."
        ) from None


def dialect_insert(session: AsyncSession | Session | str, table: Any) -> Any:
    """An INSERT with ON CONFLICT support for the session's backend, or for a dialect named directly (statements
    built ahead of any session). Both dialects spell it the same way."""
    dialect = session if isinstance(session, str) else session.get_bind().dialect.name
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


# The largest OFFSET or seq SQLite (INTEGER) and PostgreSQL (bigint) take: a forged cursor past it is invalid
# input, not a driver overflow.
INT64_MAX = 2**63 - 1


def is_int64(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and -INT64_MAX - 1 <= value <= INT64_MAX


def offset_from_cursor(cursor: str | None, kind: str) -> int:
    """The offset an offset-paged listing's cursor points at (0 without a cursor)."""
    if cursor is None:
        return 0
    offset = decode_cursor(cursor, kind).get("o")
    if not is_int64(offset) or offset < 0:
        raise InvalidInputError("cursor is not valid: pass the next_cursor value from the previous page unchanged.")
    return offset


def next_offset_cursor(kind: str, page: Page[Any]) -> str | None:
    """The cursor of the page after `page`, or None when it was the last."""
    end = page.offset + len(page.items)
    # Past a capped total the count says nothing more: a full page means there may be another.
    more = end < page.total or (page.total_capped and len(page.items) == page.limit)
    return encode_cursor(kind, o=end) if more else None
