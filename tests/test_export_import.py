"""`export` and `import` of our own format: lossless across SQLite and PostgreSQL, idempotent, and strict with bad
files (the place and the problem, nothing of a failed batch written)."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from mcp_server.cli_transfer import export_to
from mcp_server.config import Settings
from mcp_server.formats.source import ImportProblem, Source
from mcp_server.importer import import_file
from repository import (
    AgentUpdate,
    Database,
    MemoryCreate,
    MessageCreate,
    NewMessage,
    Operations,
    SessionUpdate,
    UserUpdate,
    create_memory,
    ensure_schema,
    update_agent,
    update_session,
    update_user,
)
from repository.errors import InvalidInputError
from repository.messages import add_messages_sync
from repository.migrate import HEAD_REVISION
from repository.tables import MemoryRow, MessageRow, SessionRow, UserRow
from tests.conftest import create_pg_database, drop_pg_database
from tests.test_e2e import SCRIPT

pytestmark = pytest.mark.anyio
LONG_SESSION = 2_100  # more rows than one restore batch: the neighbour index is rebuilt across batch edges


@pytest.fixture
def other_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path):
    """An empty migrated database on the other backend than the test's."""
    if backend == "postgres":
        path = tmp_path / "other.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url = create_pg_database()

    async def migrate() -> None:
        database = Database(url)
        await ensure_schema(database.engine)
        await database.dispose()

    asyncio.run(migrate())
    yield url
    drop_pg_database(url)


async def seed(url: str) -> dict[str, Any]:
    """Every kind of row with every field set, for two users (ada's data and bob's)."""
    ops = await Operations.open(url)
    try:
        ada = await ops.identity.actor("ada@example.com", "helper")
        bob = await ops.identity.actor("Bob@Example.com", "other")
        async with ops.database.transaction() as s:
            await update_user(s, ada.user_id, UserUpdate(phone_number="+351 912", user_data={"n": [1, 2.5, None]}))
            prompt = "You are {{persona}}"
            agent = AgentUpdate(
                type="a", model="m-1", description="d", config={"t": 0.2}, run_id=7, system_prompt=prompt
            )
            await update_agent(s, ada.agent_id, agent)
        chat = await ops.conversations.start_session(ada, name="Lisbon ✈ trip", platform="cli", metadata={"k": ["x"]})
        said = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
        await ops.conversations.append(
            ada,
            chat.id,
            [
                NewMessage(role="user", name="Ada", text_content="Book flights to Lisbon for May", created_at=said),
                NewMessage(role="assistant", tool_calls=[{"name": "search", "args": {"to": "LIS"}}], context={"c": 1}),
                NewMessage(role="tool", tool_outputs={"flights": 3}, message_type="json", media_url="https://x/y.png"),
            ],
        )
        extra = MessageCreate(
            session_id=chat.id,
            role="assistant",
            text_content="TAP flies daily to Lisbon; 🙂",
            raw_payload={"raw": [True, None]},
            user_feedback="thumbs up",
            flagged=True,
            mime_type="text/plain",
        )
        await ops.database.write(add_messages_sync, [extra])
        async with ops.database.transaction() as s:
            await update_session(s, chat.id, SessionUpdate(run_finished_at=said + timedelta(hours=1)))
        long = await ops.conversations.start_session(ada, name="long")
        for start in range(0, LONG_SESSION, 1_000):
            batch = [
                MessageCreate(session_id=long.id, role="user", text_content=f"note {i} about topic{i % 37}")
                for i in range(start, min(LONG_SESSION, start + 1_000))
            ]
            await ops.database.write(add_messages_sync, batch)
        expiry = datetime(2031, 1, 1, tzinfo=UTC)
        await ops.memories.remember(
            ada, "Likes teal", name="colour", description="favourite", metadata={"a": 1}, expires_at=expiry
        )
        await ops.memories.remember(ada, "Speaks Portuguese", name="persona", read_mode="system_prompt")
        await ops.memories.remember(ada, "Window seat on this trip", session_id=chat.id)
        await ops.memories.remember(ada, "Office closes at 6pm", scope="agent")
        async with ops.database.transaction() as s:
            await create_memory(s, MemoryCreate(content="The company is called Acme"))
            fixed = MemoryCreate(content="Never delete", user_id=ada.user_id, agent_id=ada.agent_id, access="read_only")
            await create_memory(s, fixed)
        bob_chat = await ops.conversations.start_session(bob, name="bob's")
        await ops.conversations.append(bob, bob_chat.id, [NewMessage(role="user", text_content="bob's secret")])
        await ops.memories.remember(bob, "bob likes red")
        return {"ada": ada, "bob": bob, "chat": chat.id, "bob_chat": bob_chat.id}
    finally:
        await ops.close()


async def export_lines(url: str, *, everything: bool = True, user: str = "ada@example.com") -> list[dict[str, Any]]:
    stream = io.StringIO()
    await export_to(Settings(database_url=url, user=user), stream, everything=everything)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def restore(url: str, lines: list[dict[str, Any]] | str) -> str:
    body = lines if isinstance(lines, str) else "".join(json.dumps(line) + "\n" for line in lines)
    return await import_file(Settings(database_url=url), Source(io.StringIO(body)))


def rows_only(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if "format" not in line]


async def index_of(url: str) -> dict[str, Any]:
    """What the search index holds for each row, and the collection statistics."""
    database = Database(url)
    try:
        async with database.transaction(readonly=True) as s:
            found: dict[str, Any] = {}
            for table in (MessageRow, MemoryRow):
                rows = await s.execute(select(table.id, table.search_body, table.search_ctx))
                found[table.__tablename__] = {row[0]: (row[1], row[2]) for row in rows}
            stats = await s.execute(text("SELECT kind, n_docs, body_len, ctx_len FROM search_stats ORDER BY kind"))
            found["stats"] = [tuple(row) for row in stats]
            counts = await s.execute(select(SessionRow.id, SessionRow.message_count))
            found["counts"] = dict(counts.all())
        return found
    finally:
        await database.dispose()


async def test_export_import_on_the_other_backend_is_lossless_and_idempotent(database_url, other_url):
    cast = await seed(database_url)
    exported = await export_lines(database_url)
    header, end = exported[0], exported[-1]
    assert header["format"] == "agent-memory-mcp/export" and header["version"] == 1
    assert header["schema_revision"] == HEAD_REVISION and header["scope"] == "all"
    assert end == {
        "kind": "end",
        "counts": {"user": 2, "agent": 2, "session": 3, "message": 5 + LONG_SESSION, "memory": 7},
    }
    assert not any(key in line for line in exported for key in ("seq", "search_body", "content_hash"))

    first = await restore(other_url, exported)
    assert f"imported 2 users, 2 agents, 3 sessions, {5 + LONG_SESSION} messages, 7 memories" in first
    assert rows_only(await export_lines(other_url)) == rows_only(exported)
    # The index is rebuilt by the normal indexing, so it is the source's, row for row, statistics included.
    source_index = await index_of(database_url)
    assert any(ctx for _body, ctx in source_index["messages"].values())
    assert await index_of(other_url) == source_index

    again = await restore(other_url, exported)
    assert "imported 0 users, 0 agents, 0 sessions, 0 messages, 0 memories" in again
    assert f"skipped {len(exported) - 2} already stored" in again
    assert rows_only(await export_lines(other_url)) == rows_only(exported)

    ops = await Operations.open(other_url)
    try:
        ada = await ops.identity.actor("ada@example.com", "helper")
        assert ada == cast["ada"]
        found = await ops.conversations.search(ada, "When did I book flights to Lisbon?")
        assert found.hits[0].message.text_content == "Book flights to Lisbon for May"
        assert found.hits[0].message.created_at == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
        page = await ops.conversations.history(ada, cast["chat"], start="oldest")
        assert [m.role for m in page.messages] == ["user", "assistant", "tool", "assistant"]
        assert (await ops.memories.recall(ada, "favourite colour")).hits[0].memory.content == "Likes teal"
        assert "Speaks Portuguese" in await ops.memories.agent_prompt(ada)
    finally:
        await ops.close()


async def test_a_users_export_holds_their_rows_only(database_url, other_url):
    cast = await seed(database_url)
    lines = rows_only(await export_lines(database_url, everything=False))
    kinds = [line["kind"] for line in lines]
    assert kinds.count("user") == 1 and lines[0]["email"] == "ada@example.com"
    assert [line["name"] for line in lines if line["kind"] == "agent"] == ["helper"]
    sessions = {line["id"] for line in lines if line["kind"] == "session"}
    assert str(cast["bob_chat"]) not in sessions and str(cast["chat"]) in sessions
    memories = [line for line in lines if line["kind"] == "memory"]
    # The user's own memories and session notes; not the agent's shared notes nor global ones (other users' too).
    assert {m["content"] for m in memories} == {
        "Likes teal",
        "Speaks Portuguese",
        "Window seat on this trip",
        "Never delete",
    }
    assert all(m["user_id"] == str(cast["ada"].user_id) for m in memories)
    assert not any("bob" in json.dumps(line).lower() for line in lines)

    # The target already knows ada and the helper agent under other ids: the file's rows go to them.
    ops = await Operations.open(other_url)
    try:
        existing = await ops.identity.actor("ADA@example.com", "Helper")
        assert existing.user_id != cast["ada"].user_id
        summary = await restore(other_url, await export_lines(database_url, everything=False))
        assert "imported 0 users, 0 agents, 2 sessions" in summary and "2 users or agents already here" in summary
        listing = await ops.conversations.list_sessions(existing)
        assert {s.name for s in listing.items} == {"Lisbon ✈ trip", "long"}
        assert {s.message_count for s in listing.items} == {4, LONG_SESSION}
        assert (await ops.memories.recall(existing, "teal")).hits[0].memory.name == "colour"
    finally:
        await ops.close()


async def row_counts(url: str) -> list[int]:
    database = Database(url)
    try:
        async with database.transaction(readonly=True) as s:
            return [
                (await s.execute(select(func.count()).select_from(t))).scalar_one()
                for t in (UserRow, SessionRow, MessageRow)
            ]
    finally:
        await database.dispose()


def small_export() -> list[dict[str, Any]]:
    user = {
        "kind": "user",
        "id": "6a395151-8b72-41de-8588-d25ed6e6f17d",
        "email": "eve@example.com",
        "phone_number": None,
        "user_data": {},
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
    }
    agent = {
        "kind": "agent",
        "id": "62fc3526-d181-4630-9d6e-4fe8817dc776",
        "name": "bot",
        "type": None,
        "model": None,
        "description": None,
        "config": {},
        "active": True,
        "run_id": 1,
        "system_prompt": None,
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
    }
    session = {
        "kind": "session",
        "id": "5b8d3f27-0a6e-4bd5-9a4c-6f0a3f5f2e11",
        "user_id": user["id"],
        "agent_id": agent["id"],
        "name": "s",
        "platform": None,
        "metadata": {},
        "run_finished_at": None,
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
    }
    message = {
        "kind": "message",
        "id": "0b7c2d44-1e2f-4a3b-8c9d-0e1f2a3b4c5d",
        "session_id": session["id"],
        "user_id": user["id"],
        "agent_id": agent["id"],
        "role": "user",
        "text_content": "hello",
        "created_at": "2026-01-01T00:00:01+00:00",
        "updated_at": "2026-01-01T00:00:01+00:00",
    }
    header = {"format": "agent-memory-mcp/export", "version": 1, "schema_revision": "0007"}
    end = {"kind": "end", "counts": {"user": 1, "agent": 1, "session": 1, "message": 1, "memory": 0}}
    return [header, user, agent, session, message, end]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda f: f[0].update(version=2), "line 1: export format version 2 is not one this version reads"),
        (lambda f: f[0].update(schema_revision="0099"), "line 1: the export comes from schema revision '0099'"),
        (lambda f: f[4].update(role="robot"), "line 5: role: Input should be"),
        (lambda f: f[4].update(colour="red"), "line 5: colour: Extra inputs are not permitted"),
        (lambda f: f[4].update(kind="note"), "line 5: kind must be one of user, agent, session, message, memory"),
        (
            lambda f: f[4].update(session_id="7b8d3f27-0a6e-4bd5-9a4c-6f0a3f5f2e11"),
            "line 5: its session 7b8d3f27-0a6e-4bd5-9a4c-6f0a3f5f2e11 is not defined earlier in the file",
        ),
        (lambda f: f[4].update(created_at="2026-01-01T00:00:01"), "line 5: created_at: Input should have timezone"),
        (lambda f: f[4].update(text_content="nul \x00 byte"), "line 5: text_content: Value error, text must not"),
        (lambda f: f[5]["counts"].update(message=2), "line 6: the end line counts"),
        (lambda f: f.pop(), "the end of the file: no end line, so the export was cut short"),
        (lambda f: f.append({"kind": "user"}), "line 7: nothing may follow the end line"),
    ],
)
async def test_a_bad_export_line_is_reported_and_its_batch_not_written(database_url, change, problem):
    lines = small_export()
    change(lines)
    with pytest.raises((ImportProblem, InvalidInputError)) as raised:
        await restore(database_url, lines)
    assert str(raised.value).startswith(problem), raised.value
    written = await row_counts(database_url)
    # The rows before the problem were in the same (only) batch: none of them stays, except when the problem is
    # found after the last batch was written (a missing end line: every row before it was valid).
    assert written == ([1, 1, 1] if "end of the file" in problem else [0, 0, 0])


async def test_a_cut_line_and_another_users_session_are_refused(database_url):
    body = "".join(json.dumps(line) + "\n" for line in small_export())
    with pytest.raises(ImportProblem, match=r"^line 5: not JSON"):
        await restore(database_url, body[: body.index('"kind": "message"') + 20] + "\n")
    assert await row_counts(database_url) == [0, 0, 0]
    await restore(database_url, small_export())
    hijack = small_export()
    hijack[1].update(id="1a395151-8b72-41de-8588-d25ed6e6f17d", email="mallory@example.com")
    hijack[3].update(user_id=hijack[1]["id"])
    hijack[4].update(user_id=hijack[1]["id"], text_content="injected")
    with pytest.raises(InvalidInputError, match=r"^line 4: session .* already exists in this database for another"):
        await restore(database_url, hijack)
    assert await row_counts(database_url) == [1, 1, 1]


@pytest.mark.slow  # runs the CLI as a subprocess
async def test_the_commands_write_files_and_pipes(tmp_path):
    source, target = tmp_path / "a.db", tmp_path / "b.db"
    await seed(f"sqlite+aiosqlite:///{source}")
    common = ["--database-url", f"sqlite+aiosqlite:///{source}"]
    out = tmp_path / "all.jsonl"
    done = subprocess.run([SCRIPT, "export", "--all", "-o", str(out), *common], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "", done.stderr
    assert "exported 2 users, 2 agents, 3 sessions" in done.stderr and not Path(f"{out}.partial").exists()
    piped = subprocess.run([SCRIPT, "export", "--user", "ada@example.com", *common], capture_output=True, text=True)
    assert piped.returncode == 0 and json.loads(piped.stdout.splitlines()[0])["scope"] == "user"
    loaded = subprocess.run(
        [SCRIPT, "import", "-", "--database-url", f"sqlite+aiosqlite:///{target}"],
        input=out.read_text(),
        capture_output=True,
        text=True,
    )
    assert loaded.returncode == 0 and "imported 2 users" in loaded.stderr
    assert "\r" not in loaded.stderr  # no progress counter on a pipe
    missing = subprocess.run(
        [SCRIPT, "export", "--user", "nobody", "-o", str(tmp_path / "x.jsonl"), *common], capture_output=True, text=True
    )
    assert missing.returncode == 1 and "No user 'nobody' in this database" in missing.stderr
    assert "Traceback" not in missing.stderr and not list(tmp_path.glob("x.jsonl*"))
