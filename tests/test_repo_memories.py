"""Memories: CRUD, scoped look-ups by name, upserts by (name, scope), visibility, listings, bulk import."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from repository import (
    ConflictError,
    InvalidInputError,
    MemoryCreate,
    MemoryScope,
    MemoryUpdate,
    NotFoundError,
    ReadOnlyError,
    RepositoryError,
    bulk_insert_memories,
    create_memory,
    delete_memory,
    get_memory,
    get_memory_by_name,
    list_memories,
    update_memory,
    upsert_memory,
)

pytestmark = pytest.mark.anyio


async def _upsert(db, **fields):
    async with db.transaction() as s:
        return await upsert_memory(s, MemoryCreate(**fields))


async def _count(db, **filters):
    async with db.transaction(readonly=True) as s:
        return (await list_memories(s, include_expired=True, **filters)).total


# --- create / get / update / delete ------------------------------------------------------------------------------


async def test_create_and_get_memory_round_trips_every_field(db, world):
    expires = datetime(2099, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    data = MemoryCreate(
        content="Alice prefers tea",
        name="drink",
        description="beverage preference",
        agent_id=world["helper"].id,
        user_id=world["alice"].id,
        read_mode="system_prompt",
        access="read_only",
        metadata={"source": "chat", "confidence": 0.9},
        expires_at=expires,
    )
    async with db.transaction() as s:
        created = await create_memory(s, data)
    async with db.transaction(readonly=True) as s:
        fetched = await get_memory(s, created.id)
    assert fetched == created
    assert fetched.model_dump(include=set(MemoryCreate.model_fields)) == data.model_dump()
    assert fetched.session_id is None
    assert fetched.expires_at == expires


async def test_memory_defaults(db):
    async with db.transaction() as s:
        memory = await create_memory(s, MemoryCreate(content="a global fact"))
    assert (memory.name, memory.agent_id, memory.user_id, memory.session_id) == (None, None, None, None)
    assert (memory.read_mode, memory.access, memory.metadata, memory.expires_at) == ("tool", "read_write", {}, None)


async def test_create_memory_duplicate_name_in_scope_is_a_conflict(db, world):
    helper, alice, bob = world["helper"], world["alice"], world["bob"]
    async with db.transaction() as s:
        await create_memory(s, MemoryCreate(content="a", name="n", agent_id=helper.id, user_id=alice.id))
        await create_memory(s, MemoryCreate(content="b", name="n", agent_id=helper.id, user_id=bob.id))
        await create_memory(s, MemoryCreate(content="c", name="n", agent_id=helper.id))
        await create_memory(s, MemoryCreate(content="d", name="n"))
    # Same (name, scope) again, including scopes with NULL columns.
    for scope in ({"agent_id": helper.id, "user_id": alice.id}, {"agent_id": helper.id}, {}):
        with pytest.raises(ConflictError):
            async with db.transaction() as s:
                await create_memory(s, MemoryCreate(content="again", name="n", **scope))
    # Unnamed memories with the same content in one scope collide too.
    async with db.transaction() as s:
        await create_memory(s, MemoryCreate(content="fact", agent_id=helper.id))
    with pytest.raises(ConflictError):
        async with db.transaction() as s:
            await create_memory(s, MemoryCreate(content="fact", agent_id=helper.id))
    assert await _count(db) == 5


async def test_create_memory_with_dangling_reference_is_invalid_input(db, world):
    with pytest.raises(InvalidInputError):
        async with db.transaction() as s:
            await create_memory(s, MemoryCreate(content="x", agent_id=uuid.uuid4()))
    with pytest.raises(InvalidInputError):
        async with db.transaction() as s:
            await create_memory(s, MemoryCreate(content="x", agent_id=world["helper"].id, user_id=uuid.uuid4()))
    with pytest.raises(NotFoundError):
        async with db.transaction() as s:
            await create_memory(s, MemoryCreate(content="x", user_id=world["alice"].id, session_id=uuid.uuid4()))
    assert await _count(db) == 0


async def test_session_scoped_memory_must_carry_the_sessions_user(db, world):
    chat, alice, bob, helper = world["chat"], world["alice"], world["bob"], world["helper"]
    with pytest.raises(InvalidInputError):
        async with db.transaction() as s:
            await create_memory(s, MemoryCreate(content="x", agent_id=helper.id, session_id=chat.id))
    # Naming another user never widens visibility: refused (reported as missing or as invalid).
    with pytest.raises((NotFoundError, InvalidInputError)):
        async with db.transaction() as s:
            await upsert_memory(
                s, MemoryCreate(content="x", name="n", agent_id=helper.id, user_id=bob.id, session_id=chat.id)
            )
    assert await _count(db) == 0
    async with db.transaction() as s:
        ok = await create_memory(s, MemoryCreate(content="x", agent_id=helper.id, user_id=alice.id, session_id=chat.id))
    assert ok.session_id == chat.id


async def test_update_memory_changes_only_the_fields_set(db, world):
    async with db.transaction() as s:
        memory = await create_memory(
            s, MemoryCreate(content="v1", name="n", description="d", metadata={"a": 1}, agent_id=world["helper"].id)
        )
    async with db.transaction() as s:
        updated = await update_memory(s, memory.id, MemoryUpdate(content="v2", metadata={"b": 2}))
    assert (updated.content, updated.name, updated.description, updated.metadata) == ("v2", "n", "d", {"b": 2})
    assert updated.created_at == memory.created_at and updated.updated_at >= memory.updated_at
    async with db.transaction(readonly=True) as s:
        assert await get_memory(s, memory.id) == updated


async def test_update_memory_keeps_content_dedup_in_step(db, world):
    helper = world["helper"]
    async with db.transaction() as s:
        memory = await create_memory(s, MemoryCreate(content="old fact", agent_id=helper.id))
        await update_memory(s, memory.id, MemoryUpdate(content="new fact"))
    # The stored content identity follows the update: the new content is "already there".
    again = await _upsert(db, content="new fact", agent_id=helper.id)
    assert (again.outcome, again.memory.id) == ("unchanged", memory.id)
    # And the old content is free again.
    fresh = await _upsert(db, content="old fact", agent_id=helper.id)
    assert fresh.outcome == "created" and fresh.memory.id != memory.id


async def test_update_memory_to_taken_name_is_a_conflict(db, world):
    helper = world["helper"]
    async with db.transaction() as s:
        await create_memory(s, MemoryCreate(content="a", name="first", agent_id=helper.id))
        second = await create_memory(s, MemoryCreate(content="b", name="second", agent_id=helper.id))
    with pytest.raises(ConflictError):
        async with db.transaction() as s:
            await update_memory(s, second.id, MemoryUpdate(name="first"))
    async with db.transaction(readonly=True) as s:
        assert (await get_memory(s, second.id)).name == "second"


async def test_read_only_memory_is_fixed_for_agents(db, world):
    async with db.transaction() as s:
        memory = await create_memory(s, MemoryCreate(content="policy", name="rules", access="read_only"))
    with pytest.raises(ReadOnlyError):
        async with db.transaction() as s:
            await update_memory(s, memory.id, MemoryUpdate(content="hacked"), allow_read_only=False)
    with pytest.raises(ReadOnlyError):
        async with db.transaction() as s:
            await delete_memory(s, memory.id, allow_read_only=False)
    async with db.transaction(readonly=True) as s:
        assert (await get_memory(s, memory.id)).content == "policy"
    # The operator path may change it.
    async with db.transaction() as s:
        assert (await update_memory(s, memory.id, MemoryUpdate(content="new policy"))).content == "new policy"
        await delete_memory(s, memory.id)
    assert await _count(db) == 0


async def test_delete_memory_returns_it_and_missing_ids_are_not_found(db):
    async with db.transaction() as s:
        memory = await create_memory(s, MemoryCreate(content="bye", name="n"))
    async with db.transaction() as s:
        deleted = await delete_memory(s, memory.id)
    assert deleted == memory
    async with db.transaction() as s:
        with pytest.raises(NotFoundError):
            await get_memory(s, memory.id)
        with pytest.raises(NotFoundError):
            await delete_memory(s, memory.id)
        with pytest.raises(NotFoundError):
            await update_memory(s, memory.id, MemoryUpdate(content="x"))


async def test_get_update_delete_respect_visibility(db, world):
    alice, bob, helper, other = world["alice"], world["bob"], world["helper"], world["other"]
    async with db.transaction() as s:
        alices = await create_memory(s, MemoryCreate(content="alice's", agent_id=helper.id, user_id=alice.id))
        shared = await create_memory(s, MemoryCreate(content="agent-wide", agent_id=helper.id))
        everyone = await create_memory(s, MemoryCreate(content="global"))
        others = await create_memory(s, MemoryCreate(content="other agent", agent_id=other.id))
    async with db.transaction() as s:
        for memory in (alices, shared, everyone):
            assert (await get_memory(s, memory.id, user_id=alice.id, agent_id=helper.id)).id == memory.id
        for memory, user, agent in ((alices, bob.id, helper.id), (others, alice.id, helper.id)):
            with pytest.raises(NotFoundError):
                await get_memory(s, memory.id, user_id=user, agent_id=agent)
            with pytest.raises(NotFoundError):
                await update_memory(s, memory.id, MemoryUpdate(content="x"), user_id=user, agent_id=agent)
            with pytest.raises(NotFoundError):
                await delete_memory(s, memory.id, user_id=user, agent_id=agent)
        assert (await get_memory(s, shared.id, user_id=bob.id, agent_id=helper.id)).id == shared.id
    assert await _count(db) == 4


# --- look-up by name ---------------------------------------------------------------------------------------------


async def test_get_memory_by_name_is_exact_and_scoped(db, world):
    alice, bob, helper, other, chat = (world[k] for k in ("alice", "bob", "helper", "other", "chat"))
    alice_scope = MemoryScope(agent_id=helper.id, user_id=alice.id)
    async with db.transaction() as s:
        mine = await create_memory(s, MemoryCreate(content="alice tea", name="drink", **alice_scope.model_dump()))
        await create_memory(s, MemoryCreate(content="x", name="drink preference", **alice_scope.model_dump()))
        await create_memory(s, MemoryCreate(content="x", name="my drink", **alice_scope.model_dump()))
        bobs = await create_memory(
            s, MemoryCreate(content="bob coffee", name="favourite", agent_id=helper.id, user_id=bob.id)
        )
        wide = await create_memory(s, MemoryCreate(content="agent-wide", name="style", agent_id=helper.id))
        in_chat = await create_memory(
            s, MemoryCreate(content="chat", name="topic", agent_id=helper.id, user_id=alice.id, session_id=chat.id)
        )
    async with db.transaction(readonly=True) as s:
        assert (await get_memory_by_name(s, "drink", alice_scope)).id == mine.id
        assert (await get_memory_by_name(s, "style", MemoryScope(agent_id=helper.id))).id == wide.id
        topic_scope = MemoryScope(agent_id=helper.id, user_id=alice.id, session_id=chat.id)
        assert (await get_memory_by_name(s, "topic", topic_scope)).id == in_chat.id
        assert (await get_memory_by_name(s, "favourite", MemoryScope(agent_id=helper.id, user_id=bob.id))).id == bobs.id
        misses = [
            ("drin", alice_scope),  # prefix
            ("rink", alice_scope),  # substring
            ("drink%", alice_scope),  # LIKE pattern
            ("dr_nk", alice_scope),
            ("favourite", alice_scope),  # another user's memory
            ("drink", MemoryScope(agent_id=helper.id, user_id=bob.id)),
            ("drink", MemoryScope(agent_id=helper.id)),  # wider scope than the memory's
            ("drink", MemoryScope()),
            ("drink", MemoryScope(agent_id=other.id, user_id=alice.id)),  # another agent
            ("style", alice_scope),  # narrower scope than the memory's
            ("topic", alice_scope),  # session memory asked for without its session
        ]
        for name, scope in misses:
            with pytest.raises(NotFoundError):
                await get_memory_by_name(s, name, scope)


# --- upsert ------------------------------------------------------------------------------------------------------


async def test_upsert_by_name_reports_created_updated_unchanged_and_keeps_the_id(db, world):
    scope = {"agent_id": world["helper"].id, "user_id": world["alice"].id}
    first = await _upsert(db, content="v1", name="fact", description="about", **scope)
    second = await _upsert(db, content="v2", name="fact", **scope)
    third = await _upsert(db, content="v2", name="fact", **scope)
    assert [w.outcome for w in (first, second, third)] == ["created", "updated", "unchanged"]
    assert first.memory.id == second.memory.id == third.memory.id
    assert second.memory.content == "v2"
    # Fields the caller did not set are kept.
    assert second.memory.description == "about"
    assert second.memory.created_at == first.memory.created_at
    assert second.memory.updated_at >= first.memory.updated_at
    assert third.memory.updated_at == second.memory.updated_at
    # A change to another field alone is an update too.
    fourth = await _upsert(db, content="v2", name="fact", description="changed", metadata={"m": 1}, **scope)
    assert (fourth.outcome, fourth.memory.description, fourth.memory.metadata) == ("updated", "changed", {"m": 1})
    assert await _count(db) == 1


async def test_upsert_keeps_scopes_apart(db, world):
    alice, bob, helper, other = world["alice"], world["bob"], world["helper"], world["other"]
    scopes = [
        {"agent_id": helper.id, "user_id": alice.id},
        {"agent_id": helper.id, "user_id": bob.id},
        {"agent_id": helper.id},
        {"agent_id": other.id},
        {"user_id": alice.id},
        {},
    ]
    written = [await _upsert(db, content=f"in scope {i}", name="same", **scope) for i, scope in enumerate(scopes)]
    assert [w.outcome for w in written] == ["created"] * len(scopes)
    assert len({w.memory.id for w in written}) == len(scopes)
    async with db.transaction(readonly=True) as s:
        for i, scope in enumerate(scopes):
            assert (await get_memory_by_name(s, "same", MemoryScope(**scope))).content == f"in scope {i}"


async def test_upsert_with_null_scope_columns_collides(db, world):
    helper = world["helper"]
    # Two agent-wide memories (user_id NULL) with one name are one memory.
    first = await _upsert(db, content="agent-wide v1", name="tone", agent_id=helper.id)
    second = await _upsert(db, content="agent-wide v2", name="tone", agent_id=helper.id)
    assert (first.outcome, second.outcome) == ("created", "updated")
    assert first.memory.id == second.memory.id
    # The same for global memories (every scope column NULL).
    g1 = await _upsert(db, content="global v1", name="tone")
    g2 = await _upsert(db, content="global v2", name="tone")
    assert (g1.outcome, g2.outcome) == ("created", "updated") and g1.memory.id == g2.memory.id
    assert g1.memory.id != first.memory.id
    assert await _count(db) == 2


async def test_upsert_unnamed_identical_content_in_same_scope_is_unchanged(db, world):
    helper, alice = world["helper"], world["alice"]
    first = await _upsert(db, content="Alice is vegetarian", agent_id=helper.id, user_id=alice.id)
    again = await _upsert(db, content="  Alice is vegetarian\n", agent_id=helper.id, user_id=alice.id)
    assert (first.outcome, again.outcome) == ("created", "unchanged")
    assert again.memory.id == first.memory.id and again.memory.content == "Alice is vegetarian"
    # Different content, or another scope, is a new memory.
    other = await _upsert(db, content="Alice is vegan", agent_id=helper.id, user_id=alice.id)
    wide = await _upsert(db, content="Alice is vegetarian", agent_id=helper.id)
    assert other.outcome == wide.outcome == "created"
    # NULL scope columns compare equal for content de-duplication as well.
    wide_again = await _upsert(db, content="Alice is vegetarian", agent_id=helper.id)
    assert (wide_again.outcome, wide_again.memory.id) == ("unchanged", wide.memory.id)
    # A named memory with the same content is separate from the unnamed one.
    named = await _upsert(db, content="Alice is vegetarian", name="diet", agent_id=helper.id, user_id=alice.id)
    assert named.outcome == "created" and named.memory.id != first.memory.id
    assert await _count(db) == 4


async def test_upsert_never_overwrites_a_read_only_memory(db, world):
    helper = world["helper"]
    async with db.transaction() as s:
        locked = await create_memory(
            s, MemoryCreate(content="fixed", name="policy", agent_id=helper.id, access="read_only")
        )
    for attempt in (
        {"content": "changed"},
        {"content": "fixed"},  # nothing to change is still a write to a read-only memory
        {"content": "changed", "access": "read_write"},
    ):
        with pytest.raises(ReadOnlyError):
            await _upsert(db, name="policy", agent_id=helper.id, **attempt)
    async with db.transaction(readonly=True) as s:
        stored = await get_memory(s, locked.id)
    assert (stored.content, stored.access, stored.updated_at) == ("fixed", "read_only", locked.updated_at)


async def test_upsert_session_scoped_memory(db, world):
    chat, alice, helper = world["chat"], world["alice"], world["helper"]
    scope = {"agent_id": helper.id, "user_id": alice.id, "session_id": chat.id}
    a = await _upsert(db, content="v1", name="topic", **scope)
    b = await _upsert(db, content="v2", name="topic", **scope)
    assert (a.outcome, b.outcome, a.memory.id == b.memory.id) == ("created", "updated", True)
    assert b.memory.session_id == chat.id


# --- listing -----------------------------------------------------------------------------------------------------


async def test_list_memories_filters(db, world):
    alice, bob, helper, other, chat = (world[k] for k in ("alice", "bob", "helper", "other", "chat"))
    past = datetime.now(UTC) - timedelta(days=1)
    future = datetime.now(UTC) + timedelta(days=1)
    async with db.transaction() as s:
        made = {}
        for key, fields in {
            "alice": {"agent_id": helper.id, "user_id": alice.id, "read_mode": "system_prompt", "name": "n1"},
            "bob": {"agent_id": helper.id, "user_id": bob.id},
            "agent": {"agent_id": helper.id, "name": "n1"},
            "other": {"agent_id": other.id},
            "global": {},
            "session": {"agent_id": helper.id, "user_id": alice.id, "session_id": chat.id},
            "expired": {"agent_id": helper.id, "user_id": alice.id, "expires_at": past},
            "later": {"agent_id": helper.id, "user_id": alice.id, "expires_at": future},
        }.items():
            made[key] = (await create_memory(s, MemoryCreate(content=f"memory {key}", **fields))).id

    async def keys(**filters):
        async with db.transaction(readonly=True) as s:
            page = await list_memories(s, limit=100, **filters)
        assert page.total == len(page.items)
        found = {v: k for k, v in made.items()}
        return [found[m.id] for m in page.items]

    everything = await keys()
    # Newest first, expired ones left out unless asked for.
    assert everything == ["later", "session", "global", "other", "agent", "bob", "alice"]
    assert await keys(include_expired=True) == [
        "later",
        "expired",
        "session",
        "global",
        "other",
        "agent",
        "bob",
        "alice",
    ]
    assert set(await keys(user_id=alice.id)) == {"alice", "session", "later"}
    assert set(await keys(agent_id=other.id)) == {"other"}
    assert set(await keys(session_id=chat.id)) == {"session"}
    assert set(await keys(read_mode="system_prompt")) == {"alice"}
    assert set(await keys(name="n1")) == {"alice", "agent"}
    assert set(await keys(name="n")) == set()
    assert set(await keys(scope_kind="session")) == {"session"}
    assert set(await keys(scope_kind="user")) == {"alice", "bob", "later"}
    assert set(await keys(scope_kind="agent")) == {"agent", "other"}
    assert set(await keys(scope_kind="global")) == {"global"}
    assert set(await keys(visible_to_pair=(alice.id, helper.id))) == {"alice", "agent", "global", "session", "later"}
    assert set(await keys(visible_to_pair=(bob.id, helper.id))) == {"bob", "agent", "global"}
    assert set(await keys(visible_to_pair=(bob.id, other.id))) == {"other", "global"}
    with pytest.raises(InvalidInputError):
        await keys(scope_kind="planet")


# --- bulk --------------------------------------------------------------------------------------------------------


async def test_bulk_insert_counts_only_rows_inserted(db, world):
    helper = world["helper"]
    batch = [MemoryCreate(content=f"fact {i}", name=f"n{i}", agent_id=helper.id) for i in range(5)]
    async with db.transaction() as s:
        assert await bulk_insert_memories(s, batch) == 5
    async with db.transaction() as s:
        assert await bulk_insert_memories(s, batch) == 0
    overlap = [MemoryCreate(content=f"changed {i}", name=f"n{i}", agent_id=helper.id) for i in range(3, 8)]
    unnamed = [MemoryCreate(content="same", agent_id=helper.id), MemoryCreate(content="same", agent_id=helper.id)]
    async with db.transaction() as s:
        assert await bulk_insert_memories(s, overlap + unnamed) == 4  # n5, n6, n7 and one "same"
        assert await bulk_insert_memories(s, []) == 0
    assert await _count(db) == 9
    async with db.transaction(readonly=True) as s:
        # Skipped duplicates leave the stored row as it was.
        kept = await get_memory_by_name(s, "n3", MemoryScope(agent_id=helper.id))
    assert kept.content == "fact 3"


async def test_bulk_insert_rejects_oversized_batch(db):
    with pytest.raises(InvalidInputError):
        async with db.transaction() as s:
            await bulk_insert_memories(s, [MemoryCreate(content="x")] * 10_001)


# --- model validation --------------------------------------------------------------------------------------------


async def test_memory_input_is_validated_by_the_model():
    for bad in (
        {"content": ""},
        {"content": "a\x00b"},
        {"content": "x", "name": ""},
        {"content": "x", "name": "n\x00"},
        {"content": "x", "metadata": {"k": ["\x00"]}},
        {"content": "x", "read_mode": "always"},
        {"content": "x", "access": "admin"},
        {"content": "x", "expires_at": datetime(2030, 1, 1)},  # naive: no time zone
    ):
        with pytest.raises(ValidationError):
            MemoryCreate(**bad)
    for bad in ({"content": "\x00"}, {"metadata": None}, {"expires_at": datetime(2030, 1, 1)}):
        with pytest.raises(ValidationError):
            MemoryUpdate(**bad)
    assert issubclass(ReadOnlyError, RepositoryError)


async def test_storing_a_neighbour_leaves_earlier_memories_untouched(db, world):
    # Storing a memory re-indexes its neighbours' context; to the caller they must look exactly as before.
    scope = {"user_id": world["alice"].id, "agent_id": world["helper"].id}
    first = (await _upsert(db, content="Booked the flight to Lisbon", **scope)).memory
    await _upsert(db, content="Hotel near the river", **scope)
    async with db.transaction(readonly=True) as s:
        again = await get_memory(s, first.id)
    assert again.updated_at == first.updated_at and again == first
