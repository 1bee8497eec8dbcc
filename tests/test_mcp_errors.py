"""Hostile and mistaken input: every failure is a short tool error, nothing leaks, the server keeps serving."""

from __future__ import annotations

import pytest

from repository.paging import encode_cursor
from tests.mcp_helpers import call, connect

pytestmark = pytest.mark.anyio

LEAKS = ("Traceback", "sqlalchemy", "sqlite3", "asyncpg", "SELECT", "INSERT", "psycopg", 'File "', "errors.pydantic")
FTS_OPERATORS = [
    '"',
    '"unbalanced',
    "*",
    "-",
    ":",
    "NEAR(",
    "NEAR(a b)",
    "(",
    ")",
    "a AND",
    "OR",
    "NOT x",
    "^",
    "col:x",
    "'",
    "\\",
    "&|!",
    "<->",
    "a:*",
    "{}",
    "[]",
]


def assert_clean_error(result, tool: str) -> str:
    assert result.is_error, f"{tool} accepted bad input: {result.structured_content}"
    text = result.content[0].text
    assert len(text) < 400, text
    assert "\n" not in text, text
    for leak in LEAKS:
        assert leak not in text, f"{tool} leaked {leak!r}: {text}"
    return text


BAD_CALLS = [
    ("store_memory", {}),
    ("store_memory", {"content": 42}),
    ("store_memory", {"content": ""}),
    ("store_memory", {"content": "   "}),
    ("store_memory", {"content": "x", "scope": "everyone"}),
    ("store_memory", {"content": "x", "scope": "session"}),
    ("store_memory", {"content": "x", "scope": "agent", "session_id": "00000000-0000-0000-0000-000000000000"}),
    ("store_memory", {"content": "nul \x00 byte"}),
    ("store_memory", {"content": "x", "name": "nul\x00name"}),
    ("store_memory", {"content": "x", "metadata": {"k": "v\x00"}}),
    ("store_memory", {"content": "x", "metadata": "not an object"}),
    ("store_memory", {"content": "x", "expires_at": "tomorrow"}),
    ("store_memory", {"content": "x", "expires_at": "2030-01-01T00:00:00"}),
    ("store_memory", {"content": "x", "session_id": "not-a-uuid"}),
    ("store_memory", {"content": "x", "session_id": "00000000-0000-0000-0000-000000000000"}),
    ("search_memories", {}),
    ("search_memories", {"query": ["list"]}),
    ("search_memories", {"query": "x", "limit": 0}),
    ("search_memories", {"query": "x", "limit": 10_000}),
    ("search_memories", {"query": "x", "limit": "ten"}),
    ("search_memories", {"query": "x", "scopes": ["nowhere"]}),
    ("search_memories", {"query": "x", "session_id": "../../etc"}),
    ("search_memories", {"query": "x", "metadata": {'a"b': "x"}}),
    ("search_memories", {"query": "x", "metadata": {"": "x"}}),
    ("search_memories", {"query": "x", "metadata": {"k": {"nested": 1}}}),
    ("get_memory", {}),
    ("get_memory", {"memory_id": "nope"}),
    ("get_memory", {"memory_id": "00000000-0000-0000-0000-000000000000"}),
    ("get_memory", {"memory_id": "x" * 100_000}),
    ("get_memory", {"memory_id": "'; DROP TABLE memories; --"}),
    ("delete_memory", {"memory_id": "00000000-0000-0000-0000-000000000000"}),
    ("list_memories", {"cursor": "garbage"}),
    ("list_memories", {"cursor": encode_cursor("memories", o="abc")}),
    ("list_memories", {"cursor": encode_cursor("memories", o=-5)}),
    ("list_sessions", {"cursor": encode_cursor("memories", o=0)}),
    ("list_memories", {"limit": -1}),
    ("list_memories", {"scope": "mine"}),
    ("create_session", {"metadata": [1, 2]}),
    ("create_session", {"name": "x" * 1000}),
    ("add_message", {"session_id": "00000000-0000-0000-0000-000000000000", "role": "user", "text_content": "hi"}),
    ("add_message", {"session_id": "bad", "role": "user", "text_content": "hi"}),
    ("add_message", {"role": "user"}),
    ("add_messages", {"session_id": "00000000-0000-0000-0000-000000000000", "messages": []}),
    ("add_messages", {"session_id": "00000000-0000-0000-0000-000000000000", "messages": [{"role": "robot"}]}),
    ("get_session_history", {"session_id": "00000000-0000-0000-0000-000000000000"}),
    ("get_session_history", {"session_id": "bad"}),
    ("get_message", {"message_id": "00000000-0000-0000-0000-000000000000"}),
    ("list_sessions", {"cursor": "%%%"}),
    ("list_sessions", {"limit": 100_000}),
    ("search_history", {"query": "x", "session_id": "bad"}),
    ("search_history", {"query": None}),
    ("no_such_tool", {}),
]


async def test_bad_calls_give_clean_errors_and_the_server_keeps_serving(database_url):
    async with connect(database_url) as client:
        for tool, arguments in BAD_CALLS:
            assert_clean_error(await client.call_tool(tool, arguments), tool)
        # Still serving, and nothing was written by the failed calls.
        assert (await call(client, "list_memories"))["total"] == 0
        assert (await call(client, "store_memory", content="still here"))["outcome"] == "created"


async def test_session_bound_bad_input(database_url):
    async with connect(database_url) as client:
        sid = (await call(client, "create_session"))["id"]
        cases = [
            ("add_message", {"session_id": sid, "role": "wizard", "text_content": "hi"}),
            ("add_message", {"session_id": sid, "role": "user"}),
            ("add_message", {"session_id": sid, "role": "user", "text_content": "nul\x00"}),
            ("add_message", {"session_id": sid, "role": "user", "tool_calls": {"a": "\x00"}}),
            ("get_session_history", {"session_id": sid, "cursor": "not-a-cursor"}),
            ("get_session_history", {"session_id": sid, "start": "middle"}),
            ("add_messages", {"session_id": sid, "messages": [{"role": "user", "text_content": "ok"}, {"role": "x"}]}),
        ]
        for tool, arguments in cases:
            assert_clean_error(await client.call_tool(tool, arguments), tool)
        # The batch with one bad message wrote nothing (all or none).
        assert (await call(client, "get_session_history", session_id=sid))["messages"] == []
        # A cursor from another session is refused rather than silently mixing sessions.
        other = (await call(client, "create_session"))["id"]
        await call(
            client,
            "add_messages",
            session_id=other,
            messages=[{"role": "user", "text_content": str(i)} for i in range(3)],
        )
        cursor = (await call(client, "get_session_history", session_id=other, limit=1))["next_cursor"]
        assert_clean_error(
            await client.call_tool("get_session_history", {"session_id": sid, "cursor": cursor}), "history"
        )


async def test_oversize_content_is_refused_with_the_limit(database_url):
    async with connect(database_url, max_content_bytes=10_000) as client:
        sid = (await call(client, "create_session"))["id"]
        big = "é" * 6_000  # 12,000 bytes in UTF-8 though only 6,000 characters
        for tool, arguments in [
            ("store_memory", {"content": big}),
            ("store_memory", {"content": "x", "metadata": {"blob": big}}),
            ("add_message", {"session_id": sid, "role": "user", "text_content": big}),
            ("search_memories", {"query": big}),
        ]:
            text = assert_clean_error(await client.call_tool(tool, arguments), tool)
            assert "10000 bytes" in text
        assert (await call(client, "store_memory", content="é" * 4_000))["outcome"] == "created"


async def test_default_limit_is_one_megabyte(database_url):
    async with connect(database_url) as client:
        assert_clean_error(await client.call_tool("store_memory", {"content": "a" * 1_000_001}), "store_memory")
        assert (await call(client, "store_memory", content="a" * 999_000))["outcome"] == "created"


@pytest.mark.parametrize("tool", ["search_memories", "search_history"])
async def test_full_text_operators_never_raise(database_url, tool):
    async with connect(database_url) as client:
        sid = (await call(client, "create_session"))["id"]
        await call(client, "store_memory", content='He said "NEAR(the door)" -- col:x * AND OR NOT')
        await call(client, "add_message", session_id=sid, role="user", text_content="NEAR the door: a * b - c")
        for query in [*FTS_OPERATORS, '"NEAR(the door)"', "door*", "-door", "door:", "(door OR)", "\x00door"]:
            result = await client.call_tool(tool, {"query": query})
            if result.is_error:
                # Only the NUL byte may be refused, and then cleanly.
                assert "\x00" in query
                assert_clean_error(result, tool)
            else:
                assert isinstance(result.structured_content["results"], list)
        found = await call(client, tool, query="the door")
        assert len(found["results"]) == 1


async def test_server_recovers_when_the_database_becomes_available(tmp_path):
    """A database that cannot be opened at first is retried on the next call, not given up on for good."""
    blocker = tmp_path / "data"
    blocker.write_text("a file where the database directory should be")
    async with connect(f"sqlite+aiosqlite:///{blocker / 'memory.db'}") as client:
        failed = await client.call_tool("store_memory", {"content": "hello"})
        text = assert_clean_error(failed, "store_memory")
        assert "could not be opened" in text
        blocker.unlink()
        assert (await call(client, "store_memory", content="hello"))["outcome"] == "created"
        assert (await call(client, "list_memories"))["total"] == 1


async def test_a_newer_schema_is_refused_with_a_clear_message(tmp_path):
    from sqlalchemy import text

    from repository import Database, ensure_schema

    url = f"sqlite+aiosqlite:///{tmp_path / 'future.db'}"
    database = Database(url)
    await ensure_schema(database.engine)
    async with database.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    await database.dispose()
    async with connect(url) as client:
        for _ in range(2):  # refused every time, not retried into a migration
            text_ = assert_clean_error(await client.call_tool("list_memories", {}), "list_memories")
            assert "9999_from_the_future" in text_ and "newer version" in text_


@pytest.mark.parametrize("offset", ["abc", -5, True, 1.5])
async def test_forged_listing_cursors_are_named_as_the_problem(database_url, offset):
    async with connect(database_url) as client:
        for tool, kind in (("list_memories", "memories"), ("list_sessions", "sessions")):
            result = await client.call_tool(tool, {"cursor": encode_cursor(kind, o=offset)})
            assert "cursor is not valid" in assert_clean_error(result, tool)
