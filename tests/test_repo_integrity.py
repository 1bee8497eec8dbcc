"""Cross-cutting rules: cascades, transaction atomicity, full-text structures, JSON and unicode round trips,
pagination edges."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import insert, select, text

from repository import (
    AgentCreate,
    ConflictError,
    InvalidInputError,
    MemoryCreate,
    MemoryUpdate,
    MessageCreate,
    MessageUpdate,
    NotFoundError,
    SessionCreate,
    SessionUpdate,
    UserCreate,
    UserUpdate,
    add_messages,
    bulk_insert_memories,
    create_agent,
    create_memory,
    create_session,
    create_user,
    delete_agent,
    delete_memory,
    delete_message,
    delete_session,
    delete_user,
    get_agent,
    get_memory,
    get_message,
    get_session,
    get_user,
    list_agents,
    list_memories,
    list_messages,
    list_sessions,
    list_users,
    update_memory,
    update_message,
    update_session,
    update_user,
    upsert_memory,
)
from repository.tables import MemoryRow, MessageRow
from repository.textsearch import Analyzer

pytestmark = pytest.mark.anyio


@pytest.fixture
async def world(db, world):
    """The shared cast, with a session of alice with the other agent and one of bob, three messages in each session,
    and memories of every scope."""
    alice, bob, helper, other, a_chat = (world[k] for k in ("alice", "bob", "helper", "other", "chat"))
    async with db.transaction() as s:
        a_other = await create_session(s, SessionCreate(user_id=alice.id, agent_id=other.id))
        b_chat = await create_session(s, SessionCreate(user_id=bob.id, agent_id=helper.id))
        await add_messages(
            s,
            [
                MessageCreate(session_id=sid, role="user", text_content=f"msg {i}")
                for sid in (a_chat.id, a_other.id, b_chat.id)
                for i in range(3)
            ],
        )
        memories = {}
        for key, fields in {
            "alice": {"agent_id": helper.id, "user_id": alice.id},
            "alice_session": {"agent_id": helper.id, "user_id": alice.id, "session_id": a_chat.id},
            "alice_other": {"agent_id": other.id, "user_id": alice.id},
            "alice_everywhere": {"user_id": alice.id},
            "bob": {"agent_id": helper.id, "user_id": bob.id},
            "bob_session": {"agent_id": helper.id, "user_id": bob.id, "session_id": b_chat.id},
            "helper_wide": {"agent_id": helper.id},
            "other_wide": {"agent_id": other.id},
            "global": {},
        }.items():
            memories[key] = (await create_memory(s, MemoryCreate(content=f"memory {key}", **fields))).id
    return {
        "alice": alice,
        "bob": bob,
        "helper": helper,
        "other": other,
        "a_chat": a_chat,
        "a_other": a_other,
        "b_chat": b_chat,
        "memories": memories,
    }


async def _remaining_memories(db, world):
    async with db.transaction(readonly=True) as s:
        page = await list_memories(s, include_expired=True, limit=100)
    names = {v: k for k, v in world["memories"].items()}
    return {names[m.id] for m in page.items}, page.items


async def _message_sessions(db):
    """session_id -> number of messages, straight from the table."""
    async with db.transaction(readonly=True) as s:
        rows = (await s.execute(select(MessageRow.session_id))).scalars().all()
    counts: dict[uuid.UUID, int] = {}
    for sid in rows:
        counts[sid] = counts.get(sid, 0) + 1
    return counts


# --- cascades ----------------------------------------------------------------------------------------------------


async def test_delete_session_cascades_to_messages_and_session_memories(db, world):
    async with db.transaction() as s:
        await delete_session(s, world["a_chat"].id)
    assert await _message_sessions(db) == {world["a_other"].id: 3, world["b_chat"].id: 3}
    remaining, _ = await _remaining_memories(db, world)
    assert remaining == set(world["memories"]) - {"alice_session"}
    async with db.transaction(readonly=True) as s:
        assert (await get_user(s, world["alice"].id)).id == world["alice"].id


async def test_delete_user_cascades_and_never_widens_visibility(db, world):
    async with db.transaction() as s:
        await delete_user(s, world["alice"].id)
    remaining, items = await _remaining_memories(db, world)
    assert remaining == {"bob", "bob_session", "helper_wide", "other_wide", "global"}
    # What is left was shared before; nothing private became agent-wide or global.
    assert sum(1 for m in items if m.user_id is None) == 3
    assert await _message_sessions(db) == {world["b_chat"].id: 3}
    async with db.transaction(readonly=True) as s:
        sessions = await list_sessions(s)
        assert [i.id for i in sessions.items] == [world["b_chat"].id]
        assert (await list_agents(s)).total == 2
        with pytest.raises(NotFoundError):
            await get_session(s, world["a_chat"].id)
        # Raw check: no row anywhere still points at the deleted user or lost its owner.
        orphans = await s.execute(
            text("SELECT count(*) FROM memories WHERE session_id IS NOT NULL AND user_id IS NULL")
        )
        assert orphans.scalar() == 0


async def test_delete_agent_cascades(db, world):
    async with db.transaction() as s:
        await delete_agent(s, world["helper"].id)
    remaining, _ = await _remaining_memories(db, world)
    assert remaining == {"alice_other", "alice_everywhere", "other_wide", "global"}
    assert await _message_sessions(db) == {world["a_other"].id: 3}
    async with db.transaction(readonly=True) as s:
        assert [i.id for i in (await list_sessions(s)).items] == [world["a_other"].id]
        assert (await list_users(s)).total == 2
        with pytest.raises(NotFoundError):
            await get_agent(s, world["helper"].id)


async def test_database_itself_enforces_foreign_keys(db, world):
    """Rows written around the repository's own checks still cannot dangle (SQLite needs PRAGMA foreign_keys)."""
    from repository.clock import utcnow
    from repository.tables import SessionRow

    now = utcnow()
    dangling = [
        insert(MessageRow.__table__).values(
            id=uuid.uuid4(), session_id=uuid.uuid4(), role="user", flagged=False, created_at=now, updated_at=now
        ),
        insert(SessionRow.__table__).values(
            id=uuid.uuid4(),
            user_id=uuid.uuid4(),
            agent_id=world["helper"].id,
            metadata={},
            message_count=0,
            created_at=now,
            updated_at=now,
        ),
    ]
    for statement in dangling:
        with pytest.raises(InvalidInputError):
            async with db.transaction() as s:
                await s.execute(statement)
    with pytest.raises(InvalidInputError):
        async with db.transaction() as s:
            await create_memory(s, MemoryCreate(content="x", user_id=uuid.uuid4()))
    assert await _message_sessions(db) == {world["a_chat"].id: 3, world["a_other"].id: 3, world["b_chat"].id: 3}
    async with db.transaction(readonly=True) as s:
        assert (await list_sessions(s)).total == 3


# --- transactions ------------------------------------------------------------------------------------------------


class Boom(Exception):
    pass


async def test_error_inside_a_transaction_leaves_nothing_written(db, world):
    alice = world["alice"]
    with pytest.raises(Boom):
        async with db.transaction() as s:
            user = await create_user(s, UserCreate(email="new@example.com"))
            agent = await create_agent(s, AgentCreate(name="new agent"))
            session = await create_session(s, SessionCreate(user_id=user.id, agent_id=agent.id))
            await add_messages(s, [MessageCreate(session_id=world["a_chat"].id, role="user", text_content="lost")])
            await add_messages(s, [MessageCreate(session_id=session.id, role="user", text_content="lost too")])
            await upsert_memory(s, MemoryCreate(content="lost", name="lost", user_id=user.id))
            await update_user(s, alice.id, UserUpdate(phone_number="555"))
            await delete_memory(s, world["memories"]["global"])
            raise Boom
    async with db.transaction(readonly=True) as s:
        assert (await list_users(s)).total == 2
        assert (await list_agents(s)).total == 2
        assert (await list_sessions(s)).total == 3
        assert (await get_user(s, alice.id)).phone_number is None
        assert (await get_memory(s, world["memories"]["global"])).content == "memory global"
        assert (await list_memories(s, limit=100)).total == 9
        counts = {i.id: i.message_count for i in (await list_sessions(s)).items}
    assert set(counts.values()) == {3}
    assert await _message_sessions(db) == {world["a_chat"].id: 3, world["a_other"].id: 3, world["b_chat"].id: 3}


async def test_repository_error_midway_rolls_back_earlier_steps(db, world):
    with pytest.raises(ConflictError):
        async with db.transaction() as s:
            await create_user(s, UserCreate(email="first@example.com"))
            await update_session(s, world["a_chat"].id, SessionUpdate(name="renamed"))
            await create_user(s, UserCreate(email="ALICE@example.com"))  # taken
    with pytest.raises(NotFoundError):
        async with db.transaction() as s:
            await create_agent(s, AgentCreate(name="doomed"))
            await get_user(s, uuid.uuid4())
    async with db.transaction(readonly=True) as s:
        assert (await list_users(s)).total == 2
        assert (await get_session(s, world["a_chat"].id)).name == "chat"  # not "renamed"
        assert (await list_agents(s)).total == 2


async def test_committed_work_survives_a_new_connection(db, database_url, world):
    from repository import Database

    async with db.transaction() as s:
        await update_user(s, world["alice"].id, UserUpdate(phone_number="123"))
    fresh = Database(database_url)
    try:
        async with fresh.transaction(readonly=True) as s:
            assert (await get_user(s, world["alice"].id)).phone_number == "123"
    finally:
        await fresh.dispose()


# --- full-text structures ----------------------------------------------------------------------------------------
# Queried with SQL text, straight from SQLite's FTS5 tables and PostgreSQL's tsvector column. The words used are
# their own stems, so the checks do not depend on the analyzer; a row also matches through its neighbours'
# context when the index keeps one, hence the subset checks where neighbours exist.


def _term(word: str) -> str:
    return Analyzer().index_text(word)


async def _fts_seqs(session, table: str, word: str) -> set[int]:
    """Seqs of `table` rows whose full-text entry matches `word`."""
    term = _term(word)
    assert term == word, "pick a test word that is its own stem"
    if session.get_bind().dialect.name == "sqlite":
        sql = f"SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH :q"
        return set((await session.execute(text(sql), {"q": f'"{term}"'})).scalars().all())
    column = (
        await session.execute(
            text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = :t AND data_type = 'tsvector' AND table_schema = current_schema()"
            ),
            {"t": table},
        )
    ).scalar_one()
    sql = f"SELECT seq FROM {table} WHERE {column} @@ to_tsquery('simple', :q)"
    return set((await session.execute(text(sql), {"q": term})).scalars().all())


async def _check_fts_integrity(session) -> None:
    """SQLite: FTS5 verifies its index against the content table (stale or missing entries raise)."""
    if session.get_bind().dialect.name == "sqlite":
        for table in ("memories", "messages"):
            await session.execute(text(f"INSERT INTO {table}_fts({table}_fts, rank) VALUES ('integrity-check', 1)"))


async def _seq(session, row_type, row_id) -> int:
    return (await session.execute(select(row_type.seq).where(row_type.id == row_id))).scalar_one()


async def test_memory_full_text_follows_insert_update_delete(db):
    async with db.transaction() as s:
        memory = await create_memory(
            s, MemoryCreate(content="the kumquat sits here", name="instrument", description="zeppelin jar")
        )
        seq = await _seq(s, MemoryRow, memory.id)
        # Visible inside the writing transaction already.
        assert await _fts_seqs(s, "memories", "kumquat") == {seq}
        assert await _fts_seqs(s, "memories", "zeppelin") == {seq}
        assert await _fts_seqs(s, "memories", "instrument") == {seq}
        await _check_fts_integrity(s)
    async with db.transaction() as s:
        assert await _fts_seqs(s, "memories", "kumquat") == {seq}
        await update_memory(s, memory.id, MemoryUpdate(content="now a banjo"))
        assert await _fts_seqs(s, "memories", "kumquat") == set()
        assert await _fts_seqs(s, "memories", "banjo") == {seq}
        await update_memory(s, memory.id, MemoryUpdate(name="brass", description="honey pot"))
        assert await _fts_seqs(s, "memories", "instrument") == set()
        assert await _fts_seqs(s, "memories", "zeppelin") == set()
        assert await _fts_seqs(s, "memories", "brass") == {seq}
        assert await _fts_seqs(s, "memories", "banjo") == {seq}
        await _check_fts_integrity(s)
    async with db.transaction() as s:
        # An upsert that updates in place moves the index too.
        written = await upsert_memory(s, MemoryCreate(content="a glockenspiel", name="brass"))
        assert written.outcome == "updated" and written.memory.id == memory.id
        assert await _fts_seqs(s, "memories", "banjo") == set()
        assert await _fts_seqs(s, "memories", "glockenspiel") == {seq}
    async with db.transaction() as s:
        await delete_memory(s, memory.id)
        assert await _fts_seqs(s, "memories", "glockenspiel") == set()
        await _check_fts_integrity(s)
    async with db.transaction(readonly=True) as s:
        assert await _fts_seqs(s, "memories", "glockenspiel") == set()
        assert await _fts_seqs(s, "memories", "brass") == set()


async def test_rolled_back_memory_write_leaves_no_full_text_entry(db):
    with pytest.raises(Boom):
        async with db.transaction() as s:
            await create_memory(s, MemoryCreate(content="ephemeral kumquat"))
            raise Boom
    async with db.transaction(readonly=True) as s:
        assert await _fts_seqs(s, "memories", "kumquat") == set()
        await _check_fts_integrity(s)


async def test_bulk_inserted_memories_are_indexed(db):
    async with db.transaction() as s:
        await bulk_insert_memories(s, [MemoryCreate(content=f"aardvark number {i}") for i in range(5)])
        seqs = set((await s.execute(select(MemoryRow.seq))).scalars().all())
        assert await _fts_seqs(s, "memories", "aardvark") == seqs and len(seqs) == 5
        await _check_fts_integrity(s)


async def test_message_full_text_follows_insert_update_delete_and_cascade(db, world):
    async with db.transaction() as s:
        first, second = await add_messages(
            s,
            [
                MessageCreate(session_id=world["a_chat"].id, role="user", text_content="ask about the aardvark"),
                MessageCreate(session_id=world["b_chat"].id, role="user", text_content="another aardvark"),
            ],
        )
        seq1, seq2 = await _seq(s, MessageRow, first.id), await _seq(s, MessageRow, second.id)
        a_chat = set(
            (await s.execute(select(MessageRow.seq).where(MessageRow.session_id == world["a_chat"].id))).scalars()
        )
        assert {seq1, seq2} <= await _fts_seqs(s, "messages", "aardvark")
        await _check_fts_integrity(s)
    async with db.transaction() as s:
        await update_message(s, first.id, MessageUpdate(text_content="a pangolin now"))
        # Nothing in first's session matches the old word any more, itself or through its neighbours.
        aardvark = await _fts_seqs(s, "messages", "aardvark")
        assert seq2 in aardvark and aardvark & a_chat == set()
        assert seq1 in await _fts_seqs(s, "messages", "pangolin")
        # Changing other columns leaves the index alone.
        await update_message(s, first.id, MessageUpdate(flagged=True))
        assert seq1 in await _fts_seqs(s, "messages", "pangolin")
        await _check_fts_integrity(s)
    async with db.transaction() as s:
        await delete_message(s, second.id)
        assert await _fts_seqs(s, "messages", "aardvark") == set()
        await _check_fts_integrity(s)
    async with db.transaction() as s:
        # Messages removed by a cascade leave the index too.
        await delete_session(s, world["a_chat"].id)
        assert await _fts_seqs(s, "messages", "pangolin") == set()
        await _check_fts_integrity(s)
    async with db.transaction(readonly=True) as s:
        assert await _fts_seqs(s, "messages", "pangolin") == set()
        with pytest.raises(NotFoundError):
            await get_message(s, first.id)


# --- JSON and unicode round trips --------------------------------------------------------------------------------

NESTED = {
    "string": "text",
    "int": 42,
    "negative": -7,
    "big": 2**53 + 1,
    "float": 3.25,
    "small": -0.5,
    "true": True,
    "false": False,
    "null": None,
    "empty_list": [],
    "empty_object": {},
    "list": [1, "two", 3.5, None, True, {"nested": ["deep", {"deeper": [False]}]}],
    "object": {"a": {"b": {"c": {"d": [1, 2, 3]}}}},
    "unicode": "héllo 🌍 漢字 עברית",
    "ключ 🔑": "key in unicode",
    "escapes": 'quote " backslash \\ newline \n tab \t',
}
UNICODE_TEXTS = [
    "emoji 🧠💾 family 👩‍👩‍👧‍👦 flag 🇯🇵 skin 👋🏽",
    "CJK 漢字 かな カナ 한국어 中文",
    "RTL עברית ושלום, العربية مرحبا",
    "combining e\u0301 a\u0308 n\u0303 (not normalised) and precomposed é ä ñ",
    "zero width\u200bjoiner\u200d, bidi \u202eoverride\u202c, astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "  leading and trailing spaces and\nnew lines\r\n\ttabs  ",
]


async def test_json_round_trips_in_every_json_column(db):
    async with db.transaction() as s:
        user = await create_user(s, UserCreate(email="json@example.com", user_data=NESTED))
        agent = await create_agent(s, AgentCreate(name="json", config=NESTED))
        session = await create_session(s, SessionCreate(user_id=user.id, agent_id=agent.id, metadata=NESTED))
        (message,) = await add_messages(
            s,
            [
                MessageCreate(
                    session_id=session.id,
                    role="tool",
                    tool_calls=[{"id": "call_1", "function": {"name": "f", "arguments": NESTED}}],
                    tool_outputs=[NESTED, "plain", 1, None],
                    raw_payload=NESTED,
                    context=NESTED,
                )
            ],
        )
        memory = await create_memory(s, MemoryCreate(content="json", metadata=NESTED))
    async with db.transaction(readonly=True) as s:
        assert (await get_user(s, user.id)).user_data == NESTED
        assert (await get_agent(s, agent.id)).config == NESTED
        assert (await get_session(s, session.id)).metadata == NESTED
        assert (await list_sessions(s)).items[0].metadata == NESTED
        stored = await get_message(s, message.id)
        assert (await get_memory(s, memory.id)).metadata == NESTED
    assert stored.tool_calls == [{"id": "call_1", "function": {"name": "f", "arguments": NESTED}}]
    assert stored.tool_outputs == [NESTED, "plain", 1, None]
    assert stored.raw_payload == NESTED and stored.context == NESTED
    # Types survive, not only values (True is not 1, 3.25 stays a float, big ints stay exact).
    assert type(stored.raw_payload["true"]) is bool and type(stored.raw_payload["float"]) is float
    assert type(stored.raw_payload["big"]) is int and stored.raw_payload["big"] == 2**53 + 1


@pytest.mark.parametrize("payload", [[1, 2, 3], "just a string", 12.5, 0, False, None], ids=repr)
async def test_message_json_fields_accept_any_json_value(db, world, payload):
    async with db.transaction() as s:
        (message,) = await add_messages(
            s,
            [
                MessageCreate(
                    session_id=world["a_chat"].id,
                    role="assistant",
                    raw_payload=payload,
                    tool_calls=payload,
                    tool_outputs=payload,
                    context=payload,
                )
            ],
        )
    async with db.transaction(readonly=True) as s:
        stored = await get_message(s, message.id)
    for field in ("raw_payload", "tool_calls", "tool_outputs", "context"):
        value = getattr(stored, field)
        assert value == payload and type(value) is type(payload)


async def test_unicode_text_round_trips_exactly(db):
    async with db.transaction() as s:
        user = await create_user(s, UserCreate(email="ユーザー@例え.jp", phone_number="٠١٢٣٤"))
        agent = await create_agent(
            s, AgentCreate(name="エージェント 🤖", description=UNICODE_TEXTS[0], system_prompt=UNICODE_TEXTS[2])
        )
        session = await create_session(s, SessionCreate(user_id=user.id, agent_id=agent.id, name=UNICODE_TEXTS[1]))
        messages = await add_messages(
            s,
            [MessageCreate(session_id=session.id, role="user", text_content=t, user_feedback=t) for t in UNICODE_TEXTS],
        )
        memories = [
            await create_memory(s, MemoryCreate(content=t, name=t.strip()[:40], description=t)) for t in UNICODE_TEXTS
        ]
    async with db.transaction(readonly=True) as s:
        assert (await get_user(s, user.id)).email == "ユーザー@例え.jp"
        assert (await get_user(s, user.id)).phone_number == "٠١٢٣٤"
        stored_agent = await get_agent(s, agent.id)
        assert (stored_agent.name, stored_agent.description, stored_agent.system_prompt) == (
            "エージェント 🤖",
            UNICODE_TEXTS[0],
            UNICODE_TEXTS[2],
        )
        assert (await get_session(s, session.id)).name == UNICODE_TEXTS[1]
        listed = await list_messages(s, session.id)
        assert [m.text_content for m in listed.items] == UNICODE_TEXTS
        assert [m.user_feedback for m in listed.items] == UNICODE_TEXTS
        assert [m.id for m in listed.items] == [m.id for m in messages]
        for memory, original in zip(memories, UNICODE_TEXTS, strict=True):
            stored = await get_memory(s, memory.id)
            assert (stored.content, stored.description, stored.name) == (original, original, original.strip()[:40])
    # Combining sequences are not normalised into precomposed characters (or the reverse).
    assert "e\u0301" in UNICODE_TEXTS[3] and len("e\u0301") == 2


# --- pagination edges --------------------------------------------------------------------------------------------


async def test_pagination_edges_for_every_listing(db):
    async with db.transaction() as s:
        empty = {"items": [], "total": 0, "total_capped": False, "limit": 50, "offset": 0}
        assert (await list_users(s)).model_dump() == empty
        assert (await list_agents(s)).total == 0
        assert (await list_sessions(s)).total == 0
        assert (await list_memories(s)).total == 0
        users = [await create_user(s, UserCreate(email=f"u{i}@example.com")) for i in range(6)]
        agents = [await create_agent(s, AgentCreate(name=f"agent {i}")) for i in range(6)]
        sessions = [await create_session(s, SessionCreate(user_id=users[0].id, agent_id=a.id)) for a in agents]
        assert (await list_messages(s, sessions[0].id)).total == 0
        await add_messages(
            s, [MessageCreate(session_id=sessions[0].id, role="user", text_content=str(i)) for i in range(6)]
        )
        for i in range(6):
            await create_memory(s, MemoryCreate(content=f"fact {i}"))

    listings = {
        "users": lambda s, **w: list_users(s, **w),
        "agents": lambda s, **w: list_agents(s, **w),
        "sessions": lambda s, **w: list_sessions(s, **w),
        "messages": lambda s, **w: list_messages(s, sessions[0].id, **w),
        "memories": lambda s, **w: list_memories(s, **w),
    }
    async with db.transaction(readonly=True) as s:
        for name, listing in listings.items():
            whole = await listing(s, limit=100)
            assert whole.total == 6 and len(whole.items) == 6, name
            # 6 is an exact multiple of 3: two full pages, then an empty one, the total stays right.
            pages = [await listing(s, limit=3, offset=offset) for offset in (0, 3, 6)]
            assert [len(p.items) for p in pages] == [3, 3, 0], name
            assert [p.total for p in pages] == [6, 6, 6], name
            assert [i.id for p in pages for i in p.items] == [i.id for i in whole.items], name
            # Offset far past the end.
            beyond = await listing(s, limit=5, offset=1000)
            assert (beyond.items, beyond.total, beyond.offset) == ([], 6, 1000), name
            # A page that is cut short by the end.
            tail = await listing(s, limit=4, offset=4)
            assert [i.id for i in tail.items] == [i.id for i in whole.items[4:]], name
            single = await listing(s, limit=1)
            assert len(single.items) == 1 and single.limit == 1, name
            assert len((await listing(s, limit=1000)).items) == 6
            for bad in ({"limit": 0}, {"limit": -1}, {"limit": 1001}, {"offset": -1}):
                with pytest.raises(InvalidInputError):
                    await listing(s, **bad)
