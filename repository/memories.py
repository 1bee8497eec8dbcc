"""Memories: named, scoped facts an agent keeps.

A memory's scope is its (agent_id, user_id, session_id) triple; NULL widens it (no user_id: every user of the
agent). Names are unique within a scope and content is unique among the unnamed memories of a scope; both rules
are unique indexes, so upserts are single `INSERT ... ON CONFLICT` statements that stay correct under concurrency.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    delete,
    literal_column,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from repository._sync import in_async_session
from repository.clock import utcnow
from repository.errors import InvalidInputError, NotFoundError, ReadOnlyError
from repository.limits import BULK_MEMORIES_MAX
from repository.models import Memory, MemoryCreate, MemoryScope, MemoryUpdate, MemoryWrite, Page
from repository.paging import check_window, count, dialect_insert, page_of
from repository.runtime import runtime_of
from repository.scope_keys import SCOPE_COLUMNS, scope_key_exprs
from repository.search_index import MEMORY_NEIGHBOUR_WINDOW, Neighbours, batch_contexts, memory_body, relink
from repository.tables import MemoryRow, SessionRow
from repository.textsearch import Analyzer
from repository.visibility import not_expired, scope_is, scope_kind_is, visibility_partitions, visible_to

_table = cast(Table, MemoryRow.__table__)


# The columns of a `Memory`, for reads that return them as plain rows (no ORM instances; see messages.py).
MEMORY_COLUMNS = tuple(_table.c[name] for name in Memory.model_fields)


def content_hash(content: str) -> str:
    """Identity of a memory's content for de-duplication (surrounding whitespace does not count)."""
    return hashlib.sha256(content.strip().encode()).hexdigest()


def _values(analyzer: Analyzer, data: MemoryCreate, now: datetime) -> dict[str, Any]:
    values = data.model_dump()
    values.update(
        id=uuid.uuid4(),
        content_hash=content_hash(data.content),
        created_at=now,
        updated_at=now,
        search_body=memory_body(analyzer, data.name, data.description, data.content),
    )
    return values


def _same_scope(nulls: tuple[bool, ...]) -> ColumnElement[bool]:
    """`scope_is` with bind parameters (n_agent_id, n_user_id, n_session_id), for each pattern of NULL columns."""
    return and_(
        *(
            _table.c[name].is_(None) if null else _table.c[name] == bindparam(f"n_{name}")
            for name, null in zip(SCOPE_COLUMNS, nulls, strict=True)
        )
    )


def _relink(session: Session, seq: int, scope: MemoryScope) -> None:
    """Refresh the neighbour context of the memories around `seq` in its scope (see repository.search_index)."""
    values = (scope.agent_id, scope.user_id, scope.session_id)
    nulls = tuple(value is None for value in values)
    params = {f"n_{name}": value for name, value in zip(SCOPE_COLUMNS, values, strict=True) if value is not None}
    condition = runtime_of(session).statements.get(("same scope", nulls), lambda: _same_scope(nulls))
    neighbours = Neighbours(f"scope{nulls}", condition, params)
    relink(session, _table, neighbours, [seq], window=MEMORY_NEIGHBOUR_WINDOW)


def _scope_of(row: MemoryRow) -> MemoryScope:
    return MemoryScope(agent_id=row.agent_id, user_id=row.user_id, session_id=row.session_id)


def _check_session_scope(session: Session, data: MemoryCreate) -> None:
    """A session-scoped memory must name the session's own user, so a session can never widen visibility."""
    if data.session_id is None:
        return
    owner = (session.execute(select(SessionRow.user_id).where(SessionRow.id == data.session_id))).scalar()
    # Another user's session is reported as missing: its existence is not the caller's to learn.
    if owner is None or (data.user_id is not None and data.user_id != owner):
        raise NotFoundError(f"No session with id {data.session_id}.")
    if data.user_id is None:
        raise InvalidInputError("A session-scoped memory must carry the user_id of that session's user.")


def create_memory_sync(session: Session, data: MemoryCreate) -> Memory:
    """Insert a new memory; a taken name in the same scope raises ConflictError."""
    _check_session_scope(session, data)
    values = _values(runtime_of(session).analyzer, data, utcnow())
    row = MemoryRow(**{("metadata_" if k == "metadata" else k): v for k, v in values.items()})
    session.add(row)
    session.flush()
    _relink(session, row.seq, data.scope)
    return Memory.model_validate(row)


_UPDATABLE = frozenset({"description", "read_mode", "access", "metadata", "expires_at"})


def _upsert_statement(dialect: str, named: bool, fields: frozenset[str]) -> Any:
    """The upsert for this backend, for a named or unnamed memory, updating these optional fields on conflict.

    Built once per shape (the runtime's statement cache), with the values bound at execution: building and
    cache-keying a fresh INSERT ... ON CONFLICT (its `excluded` namespace proxies every column) was a third of a
    store's Python time.
    """
    statement = dialect_insert(dialect, _table)
    excluded = statement.excluded
    if named:
        # updated_at takes the inserted row's value: the time of this write.
        changes: dict[str, Any] = {
            field: excluded[field] for field in ("content", "content_hash", "search_body", *sorted(fields))
        }
        differs = or_(*(_table.c[field].is_distinct_from(excluded[field]) for field in changes))
        changes["updated_at"] = excluded.updated_at
        statement = statement.on_conflict_do_update(
            index_elements=[literal_column("name"), *scope_key_exprs(dialect)],
            index_where=text("name IS NOT NULL"),
            set_=changes,
            where=and_(_table.c.access == "read_write", differs),
        )
    else:
        statement = statement.on_conflict_do_nothing(
            index_elements=[literal_column("content_hash"), *scope_key_exprs(dialect)],
            index_where=text("name IS NULL"),
        )
    return statement.returning(_table.c.seq, _table.c.search_body, *MEMORY_COLUMNS)


def upsert_memory_sync(session: Session, data: MemoryCreate, *, replace: Collection[str] | None = None) -> MemoryWrite:
    """Write a memory in one statement and say what happened.

    With a name: insert, or update the memory of that name in the same scope: its content, and of the optional
    fields (description, read_mode, access, metadata, expires_at) those named in `replace`; without `replace`, the
    fields set on `data`. Without a name: insert, or return the existing unnamed memory of the same scope with the
    same content. A read-only memory is never overwritten (ReadOnlyError).
    """
    _check_session_scope(session, data)
    runtime = runtime_of(session)
    now = utcnow()
    values = _values(runtime.analyzer, data, now)
    fields = frozenset(data.model_fields_set if replace is None else replace) & _UPDATABLE
    shape = (runtime.dialect, data.name is not None, fields)
    statement = runtime.statements.get(("upsert", *shape), lambda: _upsert_statement(*shape))
    written = session.execute(statement, values).mappings().first()
    if written is not None:
        memory = Memory.model_validate(dict(written))
        body = memory_body(runtime.analyzer, memory.name, memory.description, memory.content)
        if written["search_body"] != body:
            # An update that kept the stored description: the inserted values could not know it.
            fix = update(_table).where(_table.c.seq == written["seq"]).values(search_body=body, updated_at=now)
            session.execute(fix)
        _relink(session, written["seq"], data.scope)
        return MemoryWrite(memory=memory, outcome="created" if memory.created_at == now else "updated")
    # Nothing written: an identical memory exists, or a read-only one holds the name.
    scope = data.scope
    if data.name is not None:
        existing = _one(session, and_(scope_is(scope), MemoryRow.name == data.name))
        if existing.access == "read_only":
            raise ReadOnlyError(f"Memory {data.name!r} is read-only and cannot be changed by an agent.")
    else:
        existing = _one(
            session, and_(scope_is(scope), MemoryRow.name.is_(None), MemoryRow.content_hash == values["content_hash"])
        )
    return MemoryWrite(memory=Memory.model_validate(existing), outcome="unchanged")


def bulk_insert_memories_sync(session: Session, items: Sequence[MemoryCreate]) -> int:
    """Import many memories in one round trip; duplicates (same name or content in a scope) are skipped.

    Returns the number of rows inserted. Session-scoped items are not checked against their session's user here:
    an import is a trusted, operator-side path.
    """
    if not items:
        return 0
    if len(items) > BULK_MEMORIES_MAX:
        raise InvalidInputError(f"At most {BULK_MEMORIES_MAX} memories per bulk insert, got {len(items)}.")
    now = utcnow()
    analyzer = runtime_of(session).analyzer
    rows = [_values(analyzer, item, now) for item in items]
    # Neighbour context within the imported batch, per scope, in the order given.
    by_scope: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_scope.setdefault((row["agent_id"], row["user_id"], row["session_id"]), []).append(row)
    for group in by_scope.values():
        found = batch_contexts([(r["created_at"], r["search_body"]) for r in group], MEMORY_NEIGHBOUR_WINDOW)
        for row, ctx in zip(group, found, strict=True):
            row["search_ctx"] = ctx
    # RETURNING yields exactly the rows inserted (skipped duplicates return nothing): executemany's rowcount is
    # not a reliable count of inserted rows on every driver.
    stmt = dialect_insert(session, _table).on_conflict_do_nothing().returning(_table.c.seq)
    result = session.execute(stmt, rows)
    return len(result.all())


def _one(session: Session, condition: ColumnElement[bool]) -> MemoryRow:
    row = (
        session.execute(select(MemoryRow).where(condition).execution_options(populate_existing=True))
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError("No such memory.")
    return row


def get_memory_sync(
    session: Session,
    memory_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None = None,
    agent_id: uuid.UUID | None = None,
) -> Memory:
    """The memory; with user_id and agent_id, only if that pair may see it (else NotFoundError)."""
    condition = MemoryRow.id == memory_id
    if user_id is not None and agent_id is not None:
        condition = and_(condition, visible_to(user_id, agent_id))
    try:
        return Memory.model_validate(_one(session, condition))
    except NotFoundError:
        raise NotFoundError(f"No memory with id {memory_id}.") from None


def get_memory_by_name_sync(session: Session, name: str, scope: MemoryScope) -> Memory:
    """The memory with exactly this name in exactly this scope (no substring match, no wider scope)."""
    try:
        return Memory.model_validate(_one(session, and_(MemoryRow.name == name, scope_is(scope))))
    except NotFoundError:
        raise NotFoundError(f"No memory named {name!r} in that scope.") from None


def update_memory_sync(
    session: Session,
    memory_id: uuid.UUID,
    data: MemoryUpdate,
    *,
    user_id: uuid.UUID | None = None,
    agent_id: uuid.UUID | None = None,
    allow_read_only: bool = True,
) -> Memory:
    """Change the fields set in `data`. Agents pass allow_read_only=False so read-only memories stay fixed."""
    condition = MemoryRow.id == memory_id
    if user_id is not None and agent_id is not None:
        condition = and_(condition, visible_to(user_id, agent_id))
    row = _one(session, condition)
    if not allow_read_only and row.access == "read_only":
        raise ReadOnlyError(f"Memory {memory_id} is read-only and cannot be changed by an agent.")
    for field in data.model_fields_set:
        setattr(row, "metadata_" if field == "metadata" else field, getattr(data, field))
    if "content" in data.model_fields_set and data.content is not None:
        row.content_hash = content_hash(data.content)
    text_changed = bool(data.model_fields_set & {"content", "name", "description"})
    if text_changed:
        row.search_body = memory_body(runtime_of(session).analyzer, row.name, row.description, row.content)
    session.flush()
    if text_changed:
        _relink(session, row.seq, _scope_of(row))
    return Memory.model_validate(row)


def delete_memory_sync(
    session: Session,
    memory_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None = None,
    agent_id: uuid.UUID | None = None,
    allow_read_only: bool = True,
) -> Memory:
    """Delete and return the memory (visible to the pair, when given)."""
    condition = MemoryRow.id == memory_id
    if user_id is not None and agent_id is not None:
        condition = and_(condition, visible_to(user_id, agent_id))
    try:
        row = _one(session, condition)
    except NotFoundError:
        raise NotFoundError(f"No memory with id {memory_id}.") from None
    if not allow_read_only and row.access == "read_only":
        raise ReadOnlyError(f"Memory {memory_id} is read-only and cannot be deleted by an agent.")
    memory = Memory.model_validate(row)
    session.execute(delete(MemoryRow).where(MemoryRow.seq == row.seq))
    _relink(session, row.seq, _scope_of(row))
    return memory


def list_memories_sync(
    session: Session,
    *,
    user_id: uuid.UUID | None = None,
    agent_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    visible_to_pair: tuple[uuid.UUID, uuid.UUID] | None = None,
    read_mode: str | None = None,
    name: str | None = None,
    scope_kind: str | None = None,
    include_expired: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> Page[Memory]:
    """Memories newest first. Column filters match exactly; `visible_to_pair=(user, agent)` applies read rules."""
    check_window(limit, offset)
    query = select(*MEMORY_COLUMNS)
    for column, value in (
        (MemoryRow.user_id, user_id),
        (MemoryRow.agent_id, agent_id),
        (MemoryRow.session_id, session_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if visible_to_pair is not None:
        query = query.where(visible_to(*visible_to_pair))
    if read_mode is not None:
        query = query.where(MemoryRow.read_mode == read_mode)
    if name is not None:
        query = query.where(MemoryRow.name == name)
    if scope_kind is not None:
        query = query.where(scope_kind_is(scope_kind))
    if not include_expired:
        query = query.where(not_expired())
    total = count(session, query)
    if visible_to_pair is None:
        page = query.order_by(MemoryRow.seq.desc()).limit(limit).offset(offset)
    else:
        page = _newest_visible(query, visible_to_pair, limit, offset)
    rows = session.execute(page).mappings()
    return page_of(session, [Memory.model_validate(dict(r)) for r in rows], total, limit, offset)


def _newest_visible(query: Any, pair: tuple[uuid.UUID, uuid.UUID], limit: int, offset: int) -> Any:
    """The page of `query` newest first, one branch per visibility partition. Why: with visible_to's ORs the
    planners (SQLite at least) read every visible row and sort them for ORDER BY seq DESC LIMIT n; each partition
    is a key prefix of ix_memories_agent_user_seq, so each branch reads its newest limit+offset rows from the
    index and only those are merged."""
    branches = [
        query.add_columns(MemoryRow.seq.label("newest"))
        .where(partition)
        .order_by(MemoryRow.seq.desc())
        .limit(limit + offset)
        .subquery()
        for partition in visibility_partitions(*pair)
    ]
    merged = union_all(*(select(branch) for branch in branches)).subquery()
    return (
        select(*(merged.c[c.name] for c in MEMORY_COLUMNS)).order_by(merged.c.newest.desc()).limit(limit).offset(offset)
    )


# The async API (an AsyncSession first); the *_sync forms run in one worker-thread hop through Database.write/read.
create_memory = in_async_session(create_memory_sync)
upsert_memory = in_async_session(upsert_memory_sync)
bulk_insert_memories = in_async_session(bulk_insert_memories_sync)
get_memory = in_async_session(get_memory_sync)
get_memory_by_name = in_async_session(get_memory_by_name_sync)
update_memory = in_async_session(update_memory_sync)
delete_memory = in_async_session(delete_memory_sync)
list_memories = in_async_session(list_memories_sync)
