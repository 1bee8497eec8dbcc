"""Moving whole rows out and in: keyset-paged export, and inserts that keep the rows' ids.

Export reads each table in pages (by id for users, agents and sessions, by seq for messages and memories) and hands
every row, as a JSON-ready dict, to a sink, so memory stays flat whatever the size. Derived columns are left out:
`seq` (the export's order is seq order, and an import inserts in that order), `content_hash`, `message_count` and
the search columns, which the import recomputes the way every write does (repository.search_index).

Inserts keep ids and never overwrite: a row whose id (a memory: its name or content in its scope) is stored already
is skipped, so a second import changes nothing. A user or agent stored under the same email or name with another id
is reused: the file's rows that refer to it go to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import ColumnElement, Table, and_, bindparam, func, select, union, update
from sqlalchemy.orm import Session

from repository.errors import InvalidInputError
from repository.memories import content_hash
from repository.models import INT32_MAX, INT32_MIN, MemoryFields, MessageFields, reject_nul
from repository.paging import dialect_insert
from repository.runtime import runtime_of
from repository.scope_keys import SCOPE_COLUMNS
from repository.search_index import MEMORY_NEIGHBOUR_WINDOW, Neighbours, batch_contexts, memory_body, message_body
from repository.search_index import relink as relink_rows
from repository.tables import AgentRow, MemoryRow, MessageRow, SessionRow, UserRow
from repository.users import get_user_by_email_sync

EXPORT_PAGE = 1_000  # rows per page: round trips do not dominate, and memory stays flat
Kind = Literal["user", "agent", "session", "message", "memory"]
KINDS: tuple[Kind, ...] = ("user", "agent", "session", "message", "memory")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _text_without_nul(cls, value: Any) -> Any:
        return reject_nul(value)


class _Timed(_Record):
    """Every stored row's times, kept as they were (an import is not an edit)."""

    created_at: AwareDatetime
    updated_at: AwareDatetime


class UserRecord(_Timed):
    id: uuid.UUID
    email: str | None = Field(default=None, max_length=320)
    phone_number: str | None = Field(default=None, max_length=64)
    user_data: dict[str, Any] = Field(default_factory=dict)


class AgentRecord(_Timed):
    id: uuid.UUID
    name: str = Field(min_length=1, max_length=200)
    type: str | None = Field(default=None, max_length=100)
    model: str | None = Field(default=None, max_length=200)
    description: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    active: bool = True
    run_id: int = Field(default=1, ge=INT32_MIN, le=INT32_MAX)
    system_prompt: str | None = None


class SessionRecord(_Timed):
    id: uuid.UUID
    user_id: uuid.UUID
    agent_id: uuid.UUID
    name: str | None = Field(default=None, max_length=500)
    platform: str | None = Field(default=None, max_length=100)
    metadata: dict[str, Any] = Field(default_factory=dict)
    run_finished_at: AwareDatetime | None = None


class MessageRecord(_Timed, MessageFields):
    id: uuid.UUID


class MemoryRowRecord(_Timed, MemoryFields):
    id: uuid.UUID


RECORD_MODELS: dict[Kind, type[_Record]] = dict(
    zip(KINDS, (UserRecord, AgentRecord, SessionRecord, MessageRecord, MemoryRowRecord), strict=True)
)
_TABLES: dict[Kind, Table] = {
    kind: cast(Table, row.__table__)
    for kind, row in zip(KINDS, (UserRow, AgentRow, SessionRow, MessageRow, MemoryRow), strict=True)
}


# --- export ------------------------------------------------------------------------------------------------------

Sink = Callable[[dict[str, Any]], None]


def _json_ready(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _owned_filters(user_id: uuid.UUID) -> dict[Kind, ColumnElement[bool]]:
    """What a user owns: themselves, their sessions with every message in them, and the memories whose user_id is
    theirs (user and session scope); the agents all of these refer to come along so the file stands on its own."""
    sessions = select(SessionRow.id).where(SessionRow.user_id == user_id)
    agents: Any = union(
        select(SessionRow.agent_id).where(SessionRow.user_id == user_id),
        select(MemoryRow.agent_id).where(MemoryRow.user_id == user_id, MemoryRow.agent_id.is_not(None)),
        select(MessageRow.agent_id).where(MessageRow.session_id.in_(sessions), MessageRow.agent_id.is_not(None)),
    )
    return {
        "user": UserRow.id == user_id,
        "agent": AgentRow.id.in_(select(agents.subquery().c[0])),
        "session": SessionRow.user_id == user_id,
        "message": MessageRow.session_id.in_(sessions),
        "memory": and_(
            MemoryRow.user_id == user_id, (MemoryRow.session_id.is_(None)) | MemoryRow.session_id.in_(sessions)
        ),
    }


def _pages(session: Session, kind: Kind, condition: ColumnElement[bool] | None) -> Iterator[list[dict[str, Any]]]:
    """The rows of one table in keyset-ordered pages, as dicts of the record's fields."""
    table = _TABLES[kind]
    key = table.c.seq if "seq" in table.c else table.c.id
    names = sorted(RECORD_MODELS[kind].model_fields, key=lambda name: name in ("created_at", "updated_at"))
    columns = [table.c[name] for name in names]
    last: Any = None
    while True:
        query = select(key, *columns).order_by(key).limit(EXPORT_PAGE)
        if condition is not None:
            query = query.where(condition)
        if last is not None:
            query = query.where(key > last)
        rows = session.execute(query).all()
        if not rows:
            return
        last = rows[-1][0]
        yield [{name: _json_ready(value) for name, value in zip(names, row[1:], strict=True)} for row in rows]
        if len(rows) < EXPORT_PAGE:
            return


def export_rows_sync(
    session: Session, sink: Sink, header: dict[str, Any], user_email: str | None = None
) -> dict[str, int]:
    """Hand `header`, then every row (the user's, or all with no email) as {"kind": kind, **fields} in dependency
    order (users, agents, sessions, messages, memories), then {"kind": "end", "counts": ...} to `sink`."""
    filters: dict[Kind, ColumnElement[bool]] = {}
    if user_email is not None:
        filters = _owned_filters(get_user_by_email_sync(session, user_email).id)
    sink(header)
    counts: dict[str, int] = {}
    for kind in KINDS:
        counts[kind] = 0
        for page in _pages(session, kind, filters.get(kind)):
            for row in page:
                sink({"kind": kind, **row})
            counts[kind] += len(page)
    sink({"kind": "end", "counts": counts})
    return counts


# --- inserts that keep ids ---------------------------------------------------------------------------------------


@dataclass
class RestoreBatch:
    """Validated rows to insert in one transaction. `users`/`agents` map ids of the file to ids of this database
    (an identity already stored under the same email or name); they are read and extended."""

    users: list[UserRecord] = field(default_factory=list)
    agents: list[AgentRecord] = field(default_factory=list)
    sessions: list[tuple[str, SessionRecord]] = field(default_factory=list)
    messages: list[MessageRecord] = field(default_factory=list)
    memories: list[MemoryRowRecord] = field(default_factory=list)
    user_ids: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    agent_ids: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(len(rows) for rows in (self.users, self.agents, self.sessions, self.messages, self.memories))


def _mapped(ids: dict[uuid.UUID, uuid.UUID], value: uuid.UUID | None) -> uuid.UUID | None:
    return None if value is None else ids.get(value, value)


def _insert_identity(session: Session, kind: Kind, record: UserRecord | AgentRecord) -> tuple[bool, uuid.UUID]:
    """Insert a user or agent with its id unless stored; (inserted, the id its rows use in this database)."""
    table = _TABLES[kind]
    statement = dialect_insert(session, table).on_conflict_do_nothing().returning(table.c.id)
    if session.execute(statement, [record.model_dump()]).first() is not None:
        return True, record.id
    if session.execute(select(table.c.id).where(table.c.id == record.id)).first() is not None:
        return False, record.id
    # The email (users) or name (agents) is taken by another id: the file's rows belong to that one here.
    label = table.c.email if kind == "user" else table.c.name
    key = record.email if isinstance(record, UserRecord) else record.name
    return False, session.execute(select(table.c.id).where(func.lower(label) == func.lower(key))).scalar_one()


def _insert_identities(session: Session, batch: RestoreBatch) -> dict[str, int]:
    counts = {"user": 0, "agent": 0}
    for record in batch.users:
        inserted, stored = _insert_identity(session, "user", record)
        counts["user"] += inserted
        if stored != record.id:
            batch.user_ids[record.id] = stored
    for agent in batch.agents:
        inserted, stored = _insert_identity(session, "agent", agent)
        counts["agent"] += inserted
        if stored != agent.id:
            batch.agent_ids[agent.id] = stored
    return counts


def _insert_sessions(session: Session, batch: RestoreBatch) -> int:
    if not batch.sessions:
        return 0
    rows = []
    for _label, record in batch.sessions:
        values = record.model_dump()
        values.update(
            user_id=_mapped(batch.user_ids, record.user_id), agent_id=_mapped(batch.agent_ids, record.agent_id)
        )
        rows.append(values)
    ids = [row["id"] for row in rows]
    owners = dict(session.execute(select(SessionRow.id, SessionRow.user_id).where(SessionRow.id.in_(ids))).all())
    for (label, _record), row in zip(batch.sessions, rows, strict=True):
        if row["id"] in owners and owners[row["id"]] != row["user_id"]:
            # Never attach a file's messages to someone else's conversation.
            raise InvalidInputError(
                f"{label}: session {row['id']} already exists in this database for another user; "
                "nothing of this batch was written."
            )
    table = _TABLES["session"]
    statement = dialect_insert(session, table).on_conflict_do_nothing().returning(table.c.id)
    return len(session.execute(statement, rows).all())


def _session_neighbours(session_id: uuid.UUID) -> Neighbours:
    condition = MessageRow.session_id == bindparam("n_session_id")
    return Neighbours("transfer-session", condition, {"n_session_id": session_id})


def _scope_neighbours(scope: tuple[uuid.UUID | None, ...]) -> Neighbours:
    """The memories of exactly this scope (NULL matches NULL), as a condition with bind parameters."""
    table = _TABLES["memory"]
    parts = [
        table.c[name].is_(None) if value is None else table.c[name] == bindparam(f"n_{name}")
        for name, value in zip(SCOPE_COLUMNS, scope, strict=True)
    ]
    params = {f"n_{name}": value for name, value in zip(SCOPE_COLUMNS, scope, strict=True) if value is not None}
    return Neighbours(f"transfer-scope{tuple(v is None for v in scope)}", and_(*parts), params)


def _with_contexts(rows: list[dict[str, Any]], group: Callable[[dict[str, Any]], Any], window: Any) -> None:
    """Each row's context from its neighbours within the batch (the same rule as every write), so that after the
    insert only the rows at a batch's edges need re-indexing."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(group(row), []).append(row)
    for members in groups.values():
        found = batch_contexts([(r["created_at"], r["search_body"]) for r in members], window)
        for row, ctx in zip(members, found, strict=True):
            row["search_ctx"] = ctx


def _new(session: Session, kind: Kind, records: list[Any]) -> list[Any]:
    """The records whose id is not stored yet: a re-import skips the rest before analysing their text."""
    table = _TABLES[kind]
    stored = set(session.scalars(select(table.c.id).where(table.c.id.in_([r.id for r in records])))) if records else ()
    return [record for record in records if record.id not in stored]


def _owned_rows(batch: RestoreBatch, records: Sequence[Any], extra: Callable[[Any], dict[str, Any]]) -> list[Any]:
    """The insert values of `records`: their fields, owners mapped to the ids stored here, and `extra(record)`."""
    users, agents = batch.user_ids, batch.agent_ids
    owned = ({"user_id": _mapped(users, r.user_id), "agent_id": _mapped(agents, r.agent_id)} for r in records)
    return [record.model_dump() | owners | extra(record) for record, owners in zip(records, owned, strict=True)]


def insert_messages_sync(session: Session, batch: RestoreBatch) -> int:
    """Insert the batch's messages in order, skipping stored ids; re-index and recount the sessions touched."""
    records = _new(session, "message", batch.messages)
    if not records:
        return 0
    analyzer = runtime_of(session).analyzer
    rows = _owned_rows(batch, records, lambda r: {"search_body": message_body(analyzer, r.text_content)})
    _with_contexts(rows, lambda row: row["session_id"], None)
    table = _TABLES["message"]
    statement = dialect_insert(session, table).on_conflict_do_nothing().returning(table.c.seq, table.c.session_id)
    inserted = session.execute(statement, rows).all()
    by_session: dict[uuid.UUID, list[int]] = {}
    for seq, session_id in inserted:
        by_session.setdefault(session_id, []).append(seq)
    for session_id, seqs in by_session.items():
        relink_rows(session, table, _session_neighbours(session_id), seqs)
    if by_session:
        counted = select(func.count()).where(MessageRow.session_id == SessionRow.id).scalar_subquery()
        # updated_at stays the file's: recounting is bookkeeping, not an edit.
        session.execute(
            update(SessionRow)
            .where(SessionRow.id.in_(list(by_session)))
            .values(message_count=counted, updated_at=SessionRow.updated_at)
        )
    return len(inserted)


def insert_memories_sync(session: Session, batch: RestoreBatch) -> int:
    """Insert the batch's memories in order, skipping stored ids and taken names or contents of a scope."""
    records = _new(session, "memory", batch.memories)
    if not records:
        return 0
    analyzer = runtime_of(session).analyzer
    rows = _owned_rows(
        batch,
        records,
        lambda r: {
            "content_hash": content_hash(r.content),
            "search_body": memory_body(analyzer, r.name, r.description, r.content),
        },
    )
    _with_contexts(rows, lambda row: tuple(row[name] for name in SCOPE_COLUMNS), MEMORY_NEIGHBOUR_WINDOW)
    table = _TABLES["memory"]
    returning = (table.c.seq, *(table.c[name] for name in SCOPE_COLUMNS))
    statement = dialect_insert(session, table).on_conflict_do_nothing().returning(*returning)
    inserted = session.execute(statement, rows).all()
    by_scope: dict[tuple[uuid.UUID | None, ...], list[int]] = {}
    for seq, agent_id, user_id, session_id in inserted:
        by_scope.setdefault((agent_id, user_id, session_id), []).append(seq)
    for scope, seqs in by_scope.items():
        relink_rows(session, table, _scope_neighbours(scope), seqs, window=MEMORY_NEIGHBOUR_WINDOW)
    return len(inserted)


def restore_sync(session: Session, batch: RestoreBatch) -> dict[str, int]:
    """Insert one batch (users, agents, sessions, messages, memories, in that order); how many of each were new."""
    counts = _insert_identities(session, batch)
    counts["session"] = _insert_sessions(session, batch)
    counts["message"] = insert_messages_sync(session, batch)
    counts["memory"] = insert_memories_sync(session, batch)
    return counts
