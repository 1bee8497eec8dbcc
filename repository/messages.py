"""Messages: the conversation of a session, tool calls included, in a stable per-session order.

Order is the integer `seq` (assigned by the database on insert), never the timestamp: two messages written in the
same microsecond keep the order they were added in, and cursors built on `seq` stay exact while new messages are
appended.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, timedelta
from typing import Any, Literal, cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.orm import Session

from repository._sync import in_async_session
from repository.clock import utcnow
from repository.errors import InvalidInputError, NotFoundError
from repository.limits import REPOSITORY_MESSAGE_BATCH_MAX
from repository.models import HistoryPage, Message, MessageCreate, MessageUpdate, Page
from repository.paging import check_window, count, decode_cursor, encode_cursor, is_int64, page_of
from repository.runtime import runtime_of
from repository.search_index import Neighbours, message_body, relink
from repository.tables import MessageRow, SessionRow

# How far ahead of this server's clock an imported created_at may be (the client's clock may run a little fast).
CLOCK_SKEW = timedelta(minutes=5)


def add_message_sync(session: Session, data: MessageCreate) -> Message:
    return add_messages_sync(session, [data])[0]


def add_messages_sync(
    session: Session, items: Sequence[MessageCreate], *, user_id: uuid.UUID | None = None
) -> list[Message]:
    """Append messages in the order given. Missing user_id/agent_id are taken from the message's session.

    With `user_id`, every target session must belong to that user (else NotFoundError, and nothing is written).
    """
    if not items:
        return []
    if len(items) > REPOSITORY_MESSAGE_BATCH_MAX:
        raise InvalidInputError(f"At most {REPOSITORY_MESSAGE_BATCH_MAX} messages per batch, got {len(items)}.")
    session_ids = {item.session_id for item in items}
    owners = {
        sid: (uid, aid)
        for sid, uid, aid in (
            session.execute(
                select(SessionRow.id, SessionRow.user_id, SessionRow.agent_id).where(SessionRow.id.in_(session_ids))
            )
        ).all()
    }
    for sid in session_ids:
        if sid not in owners or (user_id is not None and owners[sid][0] != user_id):
            raise NotFoundError(f"No session with id {sid}.")
    now = utcnow()
    analyzer = runtime_of(session).analyzer
    rows = []
    for item in items:
        values = item.model_dump()
        # Stored and read back in UTC: the answer to the write shows what a later read shows, not the caller's offset.
        created_at = (values.pop("created_at") or now).astimezone(UTC)
        if created_at > now + CLOCK_SKEW:
            raise InvalidInputError(
                f"created_at {created_at.isoformat()} is in the future; omit it to use the current time."
            )
        session_user, session_agent = owners[item.session_id]
        values["user_id"] = values["user_id"] or session_user
        values["agent_id"] = values["agent_id"] or session_agent
        rows.append(
            MessageRow(
                id=uuid.uuid4(),
                created_at=created_at,
                updated_at=now,
                search_body=message_body(analyzer, item.text_content),
                **values,
            )
        )
    # add_all + flush inserts in list order, so seq follows the caller's order.
    session.add_all(rows)
    session.flush()
    for sid in session_ids:
        _relink(session, sid, [row.seq for row in rows if row.session_id == sid])
    for sid in session_ids:
        added = sum(1 for item in items if item.session_id == sid)
        session.execute(
            update(SessionRow)
            .where(SessionRow.id == sid)
            .values(message_count=SessionRow.message_count + added, updated_at=now)
        )
    return [Message.model_validate(row) for row in rows]


# The columns of a `Message`, for reads that return them: selected as plain rows they skip the ORM's identity map
# and instance set-up (measured: docs/benchmarks.md, "History").
_table = cast(Table, MessageRow.__table__)
MESSAGE_COLUMNS = tuple(_table.c[name] for name in Message.model_fields)


def messages_of(rows: Any) -> list[Message]:
    """`Message`s from the result of a select of MESSAGE_COLUMNS."""
    return [Message.model_validate(dict(row)) for row in rows.mappings()]


_SAME_SESSION = MessageRow.session_id == bindparam("n_session_id")


def _relink(session: Session, session_id: uuid.UUID, seqs: list[int]) -> None:
    """Refresh the neighbour context of the messages around `seqs` (see repository.search_index)."""
    relink(session, _table, Neighbours("session", _SAME_SESSION, {"n_session_id": session_id}), seqs)


def _row(session: Session, message_id: uuid.UUID, user_id: uuid.UUID | None) -> MessageRow:
    row = (session.execute(select(MessageRow).where(MessageRow.id == message_id))).scalar_one_or_none()
    if row is None or (user_id is not None and row.user_id != user_id):
        raise NotFoundError(f"No message with id {message_id}.")
    return row


def get_message_sync(session: Session, message_id: uuid.UUID, *, user_id: uuid.UUID | None = None) -> Message:
    return Message.model_validate(_row(session, message_id, user_id))


def update_message_sync(
    session: Session, message_id: uuid.UUID, data: MessageUpdate, *, user_id: uuid.UUID | None = None
) -> Message:
    row = _row(session, message_id, user_id)
    for field in data.model_fields_set:
        setattr(row, field, getattr(data, field))
    if "text_content" in data.model_fields_set:
        row.search_body = message_body(runtime_of(session).analyzer, row.text_content)
    session.flush()
    if "text_content" in data.model_fields_set:
        _relink(session, row.session_id, [row.seq])
    return Message.model_validate(row)


def delete_message_sync(session: Session, message_id: uuid.UUID, *, user_id: uuid.UUID | None = None) -> None:
    row = _row(session, message_id, user_id)
    session.execute(delete(MessageRow).where(MessageRow.seq == row.seq))
    _relink(session, row.session_id, [row.seq])
    session.execute(
        update(SessionRow).where(SessionRow.id == row.session_id).values(message_count=SessionRow.message_count - 1)
    )


def list_messages_sync(
    session: Session,
    session_id: uuid.UUID,
    *,
    role: str | None = None,
    flagged: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page[Message]:
    """Messages of a session, oldest first, with filters and offset pagination."""
    check_window(limit, offset)
    query = select(*MESSAGE_COLUMNS).where(MessageRow.session_id == session_id)
    if role is not None:
        query = query.where(MessageRow.role == role)
    if flagged is not None:
        query = query.where(MessageRow.flagged.is_(flagged))
    total = count(session, query)
    messages = messages_of(session.execute(query.order_by(MessageRow.seq).limit(limit).offset(offset)))
    return page_of(session, messages, total, limit, offset)


def get_history_sync(
    session: Session,
    session_id: uuid.UUID,
    *,
    limit: int = 50,
    cursor: str | None = None,
    start: Literal["latest", "oldest"] = "latest",
    user_id: uuid.UUID | None = None,
) -> HistoryPage:
    """A page of a session's messages, in chronological order within the page.

    `start="latest"` (the default) begins with the most recent messages and each next page goes further back;
    `start="oldest"` begins at the first message and walks forward. Following `next_cursor` until it is None visits
    every message exactly once, also while new messages are being appended (new ones are past a backward walk's
    starting point; a forward walk reaches them at its end).

    Synchronous, for `Database.read`; `get_history` is the async form with the same arguments.
    """
    check_window(limit)
    query = select(*MESSAGE_COLUMNS).where(MessageRow.session_id == session_id)
    if user_id is not None:
        # Ownership is checked inside the page query (a round trip fewer); an empty page says which it was below.
        owned = select(SessionRow.id).where(SessionRow.id == session_id, SessionRow.user_id == user_id)
        query = query.where(owned.exists())
    direction = start
    if cursor is not None:
        position = decode_cursor(cursor, "history")
        if (
            position.get("s") != str(session_id)
            or not is_int64(position.get("q"))
            or position.get("d") not in ("latest", "oldest")
        ):
            raise InvalidInputError("cursor belongs to another session or listing: omit it to start again.")
        direction = position["d"]
        query = query.where(MessageRow.seq < position["q"] if direction == "latest" else MessageRow.seq > position["q"])
    order = MessageRow.seq.desc() if direction == "latest" else MessageRow.seq.asc()
    # One row more than asked tells whether another page exists without a count.
    messages = messages_of(session.execute(query.order_by(order).limit(limit + 1)))
    if not messages and user_id is not None:
        owner = session.execute(select(SessionRow.user_id).where(SessionRow.id == session_id)).scalar()
        if owner != user_id:
            raise NotFoundError(f"No session with id {session_id}.")
    more = len(messages) > limit
    messages = messages[:limit]
    next_cursor = (
        encode_cursor("history", s=str(session_id), q=messages[-1].seq, d=direction) if more and messages else None
    )
    if direction == "latest":
        messages.reverse()
    return HistoryPage(messages=messages, next_cursor=next_cursor)


# The async API (an AsyncSession first); the *_sync forms run in one worker-thread hop through Database.write/read.
add_message = in_async_session(add_message_sync)
add_messages = in_async_session(add_messages_sync)
get_message = in_async_session(get_message_sync)
update_message = in_async_session(update_message_sync)
delete_message = in_async_session(delete_message_sync)
list_messages = in_async_session(list_messages_sync)
get_history = in_async_session(get_history_sync)
