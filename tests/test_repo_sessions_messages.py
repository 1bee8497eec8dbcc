"""Sessions and messages: CRUD, listings with counts, batch appends, stable order, history cursors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from repository import (
    AgentUpdate,
    InvalidInputError,
    MessageCreate,
    MessageUpdate,
    NotFoundError,
    SessionCreate,
    SessionUpdate,
    add_message,
    add_messages,
    create_session,
    delete_message,
    delete_session,
    get_history,
    get_message,
    get_session,
    list_messages,
    list_sessions,
    update_agent,
    update_message,
    update_session,
)
from repository.paging import encode_cursor

pytestmark = pytest.mark.anyio


async def _append(db, session_id, texts, role="user"):
    async with db.transaction() as s:
        return await add_messages(s, [MessageCreate(session_id=session_id, role=role, text_content=t) for t in texts])


async def _walk(db, session_id, *, limit, start):
    """Follow next_cursor to the end; returns the pages' message texts."""
    pages, cursor = [], None
    while True:
        async with db.transaction(readonly=True) as s:
            page = await get_history(s, session_id, limit=limit, cursor=cursor, start=start)
        pages.append([m.text_content for m in page.messages])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


# --- sessions ----------------------------------------------------------------------------------------------------


async def test_create_get_update_session(db, world):
    alice, helper = world["alice"], world["helper"]
    async with db.transaction() as s:
        created = await create_session(
            s,
            SessionCreate(user_id=alice.id, agent_id=helper.id, name="n", platform="slack", metadata={"k": [1, "v"]}),
        )
    async with db.transaction(readonly=True) as s:
        fetched = await get_session(s, created.id)
    assert fetched == created
    assert (fetched.user_id, fetched.agent_id, fetched.platform, fetched.metadata) == (
        alice.id,
        helper.id,
        "slack",
        {"k": [1, "v"]},
    )
    assert fetched.run_finished_at is None
    finished = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    async with db.transaction() as s:
        updated = await update_session(s, created.id, SessionUpdate(name="renamed", run_finished_at=finished))
    assert (updated.name, updated.platform, updated.metadata) == ("renamed", "slack", {"k": [1, "v"]})
    async with db.transaction(readonly=True) as s:
        again = await get_session(s, created.id)
    assert again == updated
    # Stored as the same instant, returned in UTC.
    assert again.run_finished_at == finished and again.run_finished_at.utcoffset() == timedelta(0)


async def test_session_input_is_validated_by_the_model():
    with pytest.raises(ValidationError):
        SessionUpdate(run_finished_at=datetime(2030, 1, 1))  # naive: no time zone
    with pytest.raises(ValidationError):
        SessionUpdate(metadata=None)
    with pytest.raises(ValidationError):
        SessionCreate(user_id=uuid.uuid4(), agent_id=uuid.uuid4(), metadata={"a": "\x00"})
    with pytest.raises(ValidationError):
        SessionCreate(user_id="not-a-uuid", agent_id=uuid.uuid4())


async def test_session_belonging_to_another_user_is_not_found(db, world):
    chat, bob, alice = world["chat"], world["bob"], world["alice"]
    async with db.transaction() as s:
        assert (await get_session(s, chat.id, user_id=alice.id)).id == chat.id
        with pytest.raises(NotFoundError):
            await get_session(s, chat.id, user_id=bob.id)
        with pytest.raises(NotFoundError):
            await update_session(s, chat.id, SessionUpdate(name="stolen"), user_id=bob.id)
        with pytest.raises(NotFoundError):
            await delete_session(s, chat.id, user_id=bob.id)
    async with db.transaction(readonly=True) as s:
        assert (await get_session(s, chat.id)).name == "chat"


async def test_session_with_dangling_reference_is_invalid_input(db, world):
    with pytest.raises(InvalidInputError):
        async with db.transaction() as s:
            await create_session(s, SessionCreate(user_id=uuid.uuid4(), agent_id=world["helper"].id))
    with pytest.raises(InvalidInputError):
        async with db.transaction() as s:
            await create_session(s, SessionCreate(user_id=world["alice"].id, agent_id=uuid.uuid4()))
    async with db.transaction(readonly=True) as s:
        assert (await list_sessions(s)).total == 1


async def test_missing_session_raises_not_found(db, world):
    missing = uuid.uuid4()
    async with db.transaction() as s:
        with pytest.raises(NotFoundError):
            await get_session(s, missing)
        with pytest.raises(NotFoundError):
            await update_session(s, missing, SessionUpdate(name="x"))
        with pytest.raises(NotFoundError):
            await delete_session(s, missing)
        with pytest.raises(NotFoundError):
            await add_message(s, MessageCreate(session_id=missing, role="user", text_content="hi"))


async def test_list_sessions_filters_and_carries_message_count_and_agent_name(db, world):
    alice, bob, helper, other, chat = (world[k] for k in ("alice", "bob", "helper", "other", "chat"))
    async with db.transaction() as s:
        s2 = await create_session(s, SessionCreate(user_id=alice.id, agent_id=other.id, platform="web"))
        s3 = await create_session(s, SessionCreate(user_id=bob.id, agent_id=helper.id, platform="web"))
    await _append(db, chat.id, ["a", "b", "c"])
    await _append(db, s3.id, ["x"])
    async with db.transaction(readonly=True) as s:
        everything = await list_sessions(s)
        by_alice = await list_sessions(s, user_id=alice.id)
        by_helper = await list_sessions(s, agent_id=helper.id)
        web = await list_sessions(s, platform="web")
        alice_helper = await list_sessions(s, user_id=alice.id, agent_id=helper.id)
    assert everything.total == 3
    summary = {item.id: (item.message_count, item.agent_name) for item in everything.items}
    assert summary == {chat.id: (3, "helper"), s2.id: (0, "other"), s3.id: (1, "helper")}
    # Newest first.
    keys = [(item.created_at, item.id) for item in everything.items]
    assert keys == sorted(keys, reverse=True)
    assert {i.id for i in by_alice.items} == {chat.id, s2.id} and by_alice.total == 2
    assert {i.id for i in by_helper.items} == {chat.id, s3.id} and by_helper.total == 2
    assert {i.id for i in web.items} == {s2.id, s3.id} and web.total == 2
    assert [i.id for i in alice_helper.items] == [chat.id] and alice_helper.total == 1

    # The count follows deletions; the agent name follows renames.
    async with db.transaction() as s:
        first = (await list_messages(s, chat.id)).items[0]
        await delete_message(s, first.id)
        await update_agent(s, helper.id, AgentUpdate(name="helper v2"))
    async with db.transaction(readonly=True) as s:
        item = (await list_sessions(s, user_id=alice.id, agent_id=helper.id)).items[0]
    assert (item.message_count, item.agent_name) == (2, "helper v2")


async def test_delete_session_removes_it(db, world):
    chat = world["chat"]
    async with db.transaction() as s:
        await delete_session(s, chat.id, user_id=world["alice"].id)
    async with db.transaction() as s:
        with pytest.raises(NotFoundError):
            await get_session(s, chat.id)
        assert (await list_sessions(s)).total == 0


# --- messages ----------------------------------------------------------------------------------------------------


async def test_add_message_fills_user_and_agent_from_the_session(db, world):
    chat = world["chat"]
    async with db.transaction() as s:
        message = await add_message(s, MessageCreate(session_id=chat.id, role="user", text_content="hello"))
    assert (message.user_id, message.agent_id, message.session_id) == (chat.user_id, chat.agent_id, chat.id)
    assert message.flagged is False
    async with db.transaction(readonly=True) as s:
        assert await get_message(s, message.id) == message


async def test_message_round_trips_every_field(db, world):
    data = MessageCreate(
        session_id=world["chat"].id,
        role="tool",
        name="Zoë 🛠",
        text_content="result",
        media_url="https://example.com/a.png",
        mime_type="image/png",
        message_type="tool_result",
        raw_payload={"raw": True},
        tool_calls=[{"id": "c1"}],
        tool_outputs=[{"id": "c1", "ok": True}],
        context={"turn": 3},
        user_feedback="useful",
        flagged=True,
        created_at=datetime(2023, 5, 8, 13, 56, tzinfo=UTC),  # imported from a past conversation
    )
    async with db.transaction() as s:
        written = await add_message(s, data)
    async with db.transaction(readonly=True) as s:
        stored = await get_message(s, written.id)
    assert stored == written
    expected = data.model_dump(exclude={"user_id", "agent_id"})
    assert stored.model_dump(include=set(expected)) == expected


@pytest.mark.parametrize("value", [None, "null", 0, [], {"a": None}, [None]])
async def test_json_fields_round_trip_through_every_read(db, world, value):
    # JSON null is decoded without the parser (database._json_loads); the string "null" and falsy values are not null.
    data = MessageCreate(session_id=world["chat"].id, role="tool", text_content="x", tool_calls=value, context=value)
    async with db.transaction() as s:
        written = await add_message(s, data)
    async with db.transaction(readonly=True) as s:
        reads = [
            await get_message(s, written.id),
            (await get_history(s, world["chat"].id)).messages[-1],
            (await list_messages(s, world["chat"].id)).items[-1],
        ]
    for message in reads:
        assert message.tool_calls == value and message.context == value
        assert type(message.tool_calls) is type(value)
    assert reads[0] == reads[1] == reads[2] == written


async def test_add_message_keeps_explicit_user_and_agent(db, world):
    chat, bob, other = world["chat"], world["bob"], world["other"]
    async with db.transaction() as s:
        message = await add_message(
            s, MessageCreate(session_id=chat.id, role="assistant", user_id=bob.id, agent_id=other.id)
        )
    assert (message.user_id, message.agent_id) == (bob.id, other.id)


async def test_add_message_with_dangling_user_is_invalid_input(db, world):
    with pytest.raises(InvalidInputError):
        async with db.transaction() as s:
            await add_message(s, MessageCreate(session_id=world["chat"].id, role="user", user_id=uuid.uuid4()))
    async with db.transaction(readonly=True) as s:
        assert (await list_messages(s, world["chat"].id)).total == 0
        assert (await get_session(s, world["chat"].id)).id == world["chat"].id


async def test_add_messages_batch_keeps_order_and_counts(db, world):
    alice, helper, chat = world["alice"], world["helper"], world["chat"]
    async with db.transaction() as s:
        second = await create_session(s, SessionCreate(user_id=alice.id, agent_id=helper.id))
        batch = [
            MessageCreate(
                session_id=chat.id if i % 3 else second.id, role="user" if i % 2 else "assistant", text_content=f"m{i}"
            )
            for i in range(30)
        ]
        written = await add_messages(s, batch)
    assert [m.text_content for m in written] == [f"m{i}" for i in range(30)]
    assert [m.seq for m in written] == sorted(m.seq for m in written)
    assert len({m.seq for m in written}) == 30
    assert all((m.user_id, m.agent_id) == (alice.id, helper.id) for m in written)
    async with db.transaction(readonly=True) as s:
        in_chat = await list_messages(s, chat.id, limit=100)
        in_second = await list_messages(s, second.id, limit=100)
        counts = {item.id: item.message_count for item in (await list_sessions(s)).items}
    assert [m.text_content for m in in_chat.items] == [f"m{i}" for i in range(30) if i % 3]
    assert [m.text_content for m in in_second.items] == [f"m{i}" for i in range(30) if not i % 3]
    assert counts == {chat.id: 20, second.id: 10}


async def test_add_messages_empty_batch_writes_nothing(db, world):
    async with db.transaction() as s:
        assert await add_messages(s, []) == []
        assert (await list_messages(s, world["chat"].id)).total == 0


async def test_add_messages_rejects_oversized_batch(db, world):
    items = [MessageCreate(session_id=world["chat"].id, role="user", text_content="x")] * 1001
    with pytest.raises(InvalidInputError):
        async with db.transaction() as s:
            await add_messages(s, items)


async def test_add_messages_for_another_users_session_writes_nothing(db, world):
    alice, bob, helper, chat = world["alice"], world["bob"], world["helper"], world["chat"]
    async with db.transaction() as s:
        bobs = await create_session(s, SessionCreate(user_id=bob.id, agent_id=helper.id))
    items = [
        MessageCreate(session_id=chat.id, role="user", text_content="mine"),
        MessageCreate(session_id=bobs.id, role="user", text_content="not mine"),
    ]
    with pytest.raises(NotFoundError):
        async with db.transaction() as s:
            await add_messages(s, items, user_id=alice.id)
    async with db.transaction(readonly=True) as s:
        assert (await list_messages(s, chat.id)).total == 0
        assert (await list_messages(s, bobs.id)).total == 0
        assert {i.message_count for i in (await list_sessions(s)).items} == {0}


async def test_messages_in_one_batch_keep_order_despite_identical_timestamps(db, world):
    chat = world["chat"]
    texts = [f"same instant {i:02d}" for i in range(60)]
    written = await _append(db, chat.id, texts)
    assert len({m.created_at for m in written}) == 1  # the clock cannot order these
    async with db.transaction(readonly=True) as s:
        listed = await list_messages(s, chat.id, limit=100)
        oldest = await get_history(s, chat.id, limit=100, start="oldest")
        latest = await get_history(s, chat.id, limit=100)
    assert [m.text_content for m in listed.items] == texts
    assert [m.text_content for m in oldest.messages] == texts
    assert [m.text_content for m in latest.messages] == texts
    assert [m.id for m in listed.items] == [m.id for m in written]


async def test_update_message(db, world):
    (message,) = await _append(db, world["chat"].id, ["draft"])
    async with db.transaction() as s:
        updated = await update_message(
            s, message.id, MessageUpdate(text_content="final", flagged=True, user_feedback="👍", context={"a": 1})
        )
    assert (updated.text_content, updated.flagged, updated.user_feedback, updated.context) == (
        "final",
        True,
        "👍",
        {"a": 1},
    )
    assert updated.created_at == message.created_at and updated.seq == message.seq
    async with db.transaction(readonly=True) as s:
        assert await get_message(s, message.id) == updated
    async with db.transaction() as s:
        partial = await update_message(s, message.id, MessageUpdate(flagged=False))
    assert (partial.text_content, partial.flagged, partial.user_feedback) == ("final", False, "👍")


async def test_message_of_another_user_is_not_found(db, world):
    (message,) = await _append(db, world["chat"].id, ["private"])
    bob = world["bob"]
    async with db.transaction() as s:
        with pytest.raises(NotFoundError):
            await get_message(s, message.id, user_id=bob.id)
        with pytest.raises(NotFoundError):
            await update_message(s, message.id, MessageUpdate(text_content="x"), user_id=bob.id)
        with pytest.raises(NotFoundError):
            await delete_message(s, message.id, user_id=bob.id)
        with pytest.raises(NotFoundError):
            await get_history(s, world["chat"].id, user_id=bob.id)
    async with db.transaction(readonly=True) as s:
        assert (await get_message(s, message.id, user_id=world["alice"].id)).text_content == "private"


async def test_delete_message_and_missing_message(db, world):
    chat = world["chat"]
    first, second = await _append(db, chat.id, ["one", "two"])
    async with db.transaction() as s:
        await delete_message(s, first.id)
    async with db.transaction() as s:
        with pytest.raises(NotFoundError):
            await get_message(s, first.id)
        with pytest.raises(NotFoundError):
            await delete_message(s, first.id)
        with pytest.raises(NotFoundError):
            await update_message(s, uuid.uuid4(), MessageUpdate(flagged=True))
        assert [m.id for m in (await list_messages(s, chat.id)).items] == [second.id]
        assert (await list_sessions(s)).items[0].message_count == 1


async def test_list_messages_filters_by_role_and_flag(db, world):
    chat = world["chat"]
    async with db.transaction() as s:
        await add_messages(
            s,
            [
                MessageCreate(session_id=chat.id, role="user", text_content="u1"),
                MessageCreate(session_id=chat.id, role="assistant", text_content="a1", flagged=True),
                MessageCreate(session_id=chat.id, role="tool", text_content="t1"),
                MessageCreate(session_id=chat.id, role="user", text_content="u2", flagged=True),
                MessageCreate(session_id=chat.id, role="system", text_content="s1"),
            ],
        )
    async with db.transaction(readonly=True) as s:
        users = await list_messages(s, chat.id, role="user")
        flagged = await list_messages(s, chat.id, flagged=True)
        unflagged_users = await list_messages(s, chat.id, role="user", flagged=False)
        everything = await list_messages(s, chat.id)
        elsewhere = await list_messages(s, uuid.uuid4())
    assert [m.text_content for m in users.items] == ["u1", "u2"] and users.total == 2
    assert [m.text_content for m in flagged.items] == ["a1", "u2"] and flagged.total == 2
    assert [m.text_content for m in unflagged_users.items] == ["u1"] and unflagged_users.total == 1
    assert [m.text_content for m in everything.items] == ["u1", "a1", "t1", "u2", "s1"]
    assert (elsewhere.items, elsewhere.total) == ([], 0)


async def test_message_input_is_validated_by_the_model():
    sid = uuid.uuid4()
    with pytest.raises(ValidationError):
        MessageCreate(session_id=sid, role="robot")
    with pytest.raises(ValidationError):
        MessageCreate(session_id=sid, role="user", text_content="a\x00b")
    with pytest.raises(ValidationError):
        MessageCreate(session_id=sid, role="user", tool_calls=[{"name": "f", "args": {"q": "\x00"}}])
    with pytest.raises(ValidationError):
        MessageCreate(session_id=sid, role="user", raw_payload={"\x00": 1})
    with pytest.raises(ValidationError):
        MessageUpdate(text_content="\x00")


# --- history -----------------------------------------------------------------------------------------------------


async def test_history_of_an_empty_session(db, world):
    # Ownership is checked inside the page query; an empty page must still tell "yours, empty" from "not yours".
    async with db.transaction(readonly=True) as s:
        for start in ("latest", "oldest"):
            page = await get_history(s, world["chat"].id, start=start)
            assert (page.messages, page.next_cursor) == ([], None)
            page = await get_history(s, world["chat"].id, start=start, user_id=world["alice"].id)
            assert (page.messages, page.next_cursor) == ([], None)
            with pytest.raises(NotFoundError):
                await get_history(s, world["chat"].id, start=start, user_id=world["bob"].id)
            with pytest.raises(NotFoundError):
                await get_history(s, uuid.uuid4(), start=start, user_id=world["alice"].id)


@pytest.mark.parametrize("count", [1, 9, 10, 11, 30])
async def test_history_walks_visit_every_message_once(db, world, count):
    chat = world["chat"]
    texts = [f"m{i}" for i in range(count)]
    await _append(db, chat.id, texts)

    latest = await _walk(db, chat.id, limit=10, start="latest")
    # Each page is chronological; pages go further back.
    assert all(page == sorted(page, key=lambda t: int(t[1:])) for page in latest)
    assert [t for page in reversed(latest) for t in page] == texts
    assert latest[0] == texts[-10:]

    oldest = await _walk(db, chat.id, limit=10, start="oldest")
    assert [t for page in oldest for t in page] == texts
    assert oldest[0] == texts[:10]
    # A walk ends on its last page, without an empty page after an exact multiple.
    assert len(latest) == len(oldest) == max(1, -(-count // 10))


async def test_history_walks_survive_appends_between_pages(db, world):
    chat = world["chat"]
    await _append(db, chat.id, [f"old{i}" for i in range(7)])

    seen, cursor, round_ = [], None, 0
    while True:
        async with db.transaction(readonly=True) as s:
            page = await get_history(s, chat.id, limit=3, cursor=cursor)
        seen.extend(m.text_content for m in page.messages)
        await _append(db, chat.id, [f"new{round_}a", f"new{round_}b"])
        round_ += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    # Backwards from the start point: every message that existed then, exactly once, nothing newer.
    assert sorted(seen) == sorted(f"old{i}" for i in range(7))
    assert len(seen) == 7

    other_chat = await _new_session(db, world)
    await _append(db, other_chat, ["f0", "f1", "f2", "f3"])
    seen, cursor, appended = [], None, ["f0", "f1", "f2", "f3"]
    for round_ in range(20):
        async with db.transaction(readonly=True) as s:
            page = await get_history(s, other_chat, limit=2, cursor=cursor, start="oldest")
        seen.extend(m.text_content for m in page.messages)
        if page.next_cursor is None:
            break
        extra = [f"g{round_}"]
        await _append(db, other_chat, extra)
        appended += extra
        cursor = page.next_cursor
    assert appended == ["f0", "f1", "f2", "f3", "g0", "g1"]
    # Forwards: the walk reaches the messages appended while it ran, each exactly once, in order.
    assert seen == appended


async def _new_session(db, world):
    async with db.transaction() as s:
        created = await create_session(s, SessionCreate(user_id=world["alice"].id, agent_id=world["helper"].id))
    return created.id


async def test_history_rejects_invalid_and_foreign_cursors(db, world):
    chat = world["chat"]
    await _append(db, chat.id, [f"m{i}" for i in range(5)])
    other = await _new_session(db, world)
    await _append(db, other, ["x", "y", "z"])
    async with db.transaction(readonly=True) as s:
        foreign = (await get_history(s, other, limit=1)).next_cursor
        assert foreign is not None
        good = (await get_history(s, chat.id, limit=2)).next_cursor
    bad_cursors = [
        foreign,  # another session's cursor
        "not a cursor",
        "!!!!",
        "",
        good[:-3],  # truncated
        encode_cursor("memories", s=str(chat.id), q=3, d="latest"),  # another listing's cursor
        encode_cursor("history", s=str(chat.id), q="3", d="latest"),
        encode_cursor("history", s=str(chat.id), q=3),  # no direction
        encode_cursor("history", s=str(chat.id), q=3, d="sideways"),
    ]
    for bad in bad_cursors:
        with pytest.raises(InvalidInputError):
            async with db.transaction(readonly=True) as s:
                await get_history(s, chat.id, limit=2, cursor=bad)
    async with db.transaction(readonly=True) as s:
        page = await get_history(s, chat.id, limit=2, cursor=good)
    assert [m.text_content for m in page.messages] == ["m1", "m2"]


async def test_history_limit_out_of_range_is_invalid_input(db, world):
    for limit in (0, -1, 1001):
        with pytest.raises(InvalidInputError):
            async with db.transaction(readonly=True) as s:
                await get_history(s, world["chat"].id, limit=limit)


async def test_history_timestamps_are_aware_utc(db, world):
    before = datetime.now(UTC)
    (message,) = await _append(db, world["chat"].id, ["t"])
    async with db.transaction(readonly=True) as s:
        stored = (await get_history(s, world["chat"].id)).messages[0]
    assert stored.created_at == message.created_at
    assert stored.created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=5) <= stored.created_at <= datetime.now(UTC) + timedelta(seconds=5)
