"""Concurrency: racing upserts and get-or-creates on both backends, and several OS processes on one SQLite file."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repository import (
    AgentCreate,
    MemoryCreate,
    MemoryScope,
    UserCreate,
    create_agent,
    create_user,
    get_memory_by_name,
    get_or_create_agent_by_name,
    get_or_create_user_by_email,
    list_agents,
    list_memories,
    list_users,
    upsert_memory,
)

pytestmark = pytest.mark.anyio

RACERS = 20


async def test_concurrent_upserts_of_one_name_make_one_row(db):
    async with db.transaction() as s:
        user = await create_user(s, UserCreate(email="racer@example.com"))
        agent = await create_agent(s, AgentCreate(name="racer"))

    async def write(i: int, **scope):
        async with db.transaction() as s:
            return await upsert_memory(s, MemoryCreate(content=f"value {i}", name="contested", **scope))

    for scope in ({"agent_id": agent.id, "user_id": user.id}, {"agent_id": agent.id}):
        results = await asyncio.gather(*(write(i, **scope) for i in range(RACERS)))
        outcomes = [r.outcome for r in results]
        assert outcomes.count("created") == 1
        assert set(outcomes) <= {"created", "updated", "unchanged"}
        assert len({r.memory.id for r in results}) == 1
        async with db.transaction(readonly=True) as s:
            stored = await get_memory_by_name(s, "contested", MemoryScope(**scope))
            assert stored.id == results[0].memory.id
            assert stored.content in {f"value {i}" for i in range(RACERS)}
    async with db.transaction(readonly=True) as s:
        assert (await list_memories(s, name="contested")).total == 2


async def test_concurrent_unnamed_upserts_of_one_content_make_one_row(db):
    async def write():
        async with db.transaction() as s:
            return await upsert_memory(s, MemoryCreate(content="the same fact"))

    results = await asyncio.gather(*(write() for _ in range(RACERS)))
    assert sorted(r.outcome for r in results) == ["created"] + ["unchanged"] * (RACERS - 1)
    assert len({r.memory.id for r in results}) == 1
    async with db.transaction(readonly=True) as s:
        assert (await list_memories(s)).total == 1


async def test_concurrent_get_or_create_by_key_make_one_row(db):
    async def user(i: int):
        async with db.transaction() as s:
            return await get_or_create_user_by_email(s, "Shared@Example.com" if i % 2 else "shared@example.COM")

    async def agent(i: int):
        async with db.transaction() as s:
            return await get_or_create_agent_by_name(s, "Shared Agent" if i % 2 else "SHARED agent")

    users = await asyncio.gather(*(user(i) for i in range(RACERS)))
    agents = await asyncio.gather(*(agent(i) for i in range(RACERS)))
    assert len({u.id for u in users}) == 1
    assert len({a.id for a in agents}) == 1
    async with db.transaction(readonly=True) as s:
        assert (await list_users(s)).total == 1
        assert (await list_agents(s)).total == 1


WRITER = r"""
import asyncio, sys, time

from repository import Database, MemoryCreate, create_memory


async def main(url, worker, count, start_at):
    db = Database(url)
    try:
        while time.time() < start_at:  # start together, after the imports
            await asyncio.sleep(0.005)
        for i in range(count):
            async with db.transaction() as s:
                await create_memory(s, MemoryCreate(content=f"worker {worker} wrote fact {i}", name=f"w{worker}-{i}"))
    finally:
        await db.dispose()


asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
"""
PROCESSES = 4
WRITES_EACH = 500


@pytest.mark.slow
def test_processes_writing_one_sqlite_file_lose_nothing(sqlite_template: Path, tmp_path: Path):
    path = tmp_path / "shared.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"
    start_at = time.time() + 1.0
    repo_root = Path(__file__).resolve().parent.parent
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(worker), str(WRITES_EACH), str(start_at)],
            cwd=repo_root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(PROCESSES)
    ]
    failures = []
    for worker in workers:
        try:
            _, err = worker.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            worker.kill()
            _, err = worker.communicate()
        if worker.returncode != 0 or "locked" in err.lower():
            failures.append((worker.returncode, err[-2000:]))
    assert failures == []

    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM memories").fetchone() == (PROCESSES * WRITES_EACH,)
        names = {row[0] for row in conn.execute("SELECT name FROM memories")}
        assert names == {f"w{w}-{i}" for w in range(PROCESSES) for i in range(WRITES_EACH)}
        # The full-text index took every write too.
        matches = conn.execute("SELECT count(*) FROM memories_fts WHERE memories_fts MATCH '\"worker\"'").fetchone()
        assert matches == (PROCESSES * WRITES_EACH,)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.execute("INSERT INTO memories_fts(memories_fts, rank) VALUES ('integrity-check', 1)")


async def test_concurrent_writes_in_one_scope_never_deadlock(db):
    # Each write re-indexes its neighbours and, on PostgreSQL, upserts shared term counts from triggers; racing
    # writers once took those locks in different orders ("deadlock detected" under 32 HTTP clients).
    from repository import MessageCreate, SessionCreate, create_session
    from repository.memories import upsert_memory_sync
    from repository.messages import add_messages_sync

    async with db.transaction() as s:
        user = await create_user(s, UserCreate(email="busy@example.com"))
        agent = await create_agent(s, AgentCreate(name="busy"))
        chat = await create_session(s, SessionCreate(user_id=user.id, agent_id=agent.id))
    words = [
        "alpha",
        "bravo",
        "charlie",
        "delta",
        "echo",
        "foxtrot",
        "golf",
        "hotel",
        "india",
        "juliet",
        "kilo",
        "lima",
        "mike",
        "november",
    ]

    async def store(i: int):
        text = " ".join(words[(i * 3 + k) % len(words)] for k in range(6)) + f" fact {i}"
        return await db.write(upsert_memory_sync, MemoryCreate(content=text, user_id=user.id, agent_id=agent.id))

    async def say(i: int):
        text = " ".join(words[(i * 5 + k) % len(words)] for k in range(6))
        return await db.write(add_messages_sync, [MessageCreate(session_id=chat.id, role="user", text_content=text)])

    for _ in range(3):
        await asyncio.gather(*(store(i) for i in range(RACERS)), *(say(i) for i in range(RACERS)))
    async with db.transaction(readonly=True) as s:
        assert (await list_memories(s)).total == RACERS


@pytest.mark.postgres
async def test_a_deadlock_with_another_writer_is_a_retryable_error_not_a_driver_error(pg_url):
    # Our own writers queue on one lock; a deadlock can still come from another client of the same database.
    from sqlalchemy import text

    from repository import Database, DatabaseUnavailableError
    from repository.database import translate_errors

    db = Database(pg_url)
    try:
        async with db.engine.begin() as setup:
            await setup.execute(text("CREATE TABLE IF NOT EXISTS deadlock_probe (id int PRIMARY KEY)"))
            await setup.execute(text("INSERT INTO deadlock_probe VALUES (1), (2) ON CONFLICT DO NOTHING"))
        both_hold_one = asyncio.Barrier(2)

        async def writer(first: int, second: int) -> None:
            with translate_errors():
                async with db.engine.begin() as conn:
                    await conn.execute(text("UPDATE deadlock_probe SET id = id WHERE id = :i"), {"i": first})
                    await both_hold_one.wait()
                    await conn.execute(text("UPDATE deadlock_probe SET id = id WHERE id = :i"), {"i": second})

        outcomes = await asyncio.gather(writer(1, 2), writer(2, 1), return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, Exception)]
        assert len(failures) == 1 and isinstance(failures[0], DatabaseUnavailableError)
        assert "try again" in str(failures[0]) and "deadlock" not in str(failures[0])
    finally:
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP TABLE IF EXISTS deadlock_probe"))
        await db.dispose()


@pytest.mark.postgres
async def test_connections_the_server_dropped_are_replaced(pg_url):
    """A restart or a network cut leaves dead connections in the pool: one idle for a while is checked and replaced
    before use; one in steady use fails that one call with a short "try again", and the next call works."""
    from sqlalchemy import text

    from repository import Database, DatabaseUnavailableError, EngineOptions, get_or_create_user_by_email

    eager = Database(pg_url, EngineOptions(idle_ping_s=0.0))  # every pooled connection counts as idle
    steady = Database(pg_url, EngineOptions(idle_ping_s=3600.0))  # in steady use: never checked

    async def kill_our_connections() -> None:
        admin = Database(pg_url.rsplit("/", 1)[0] + "/postgres")
        try:
            async with admin.engine.connect() as conn:
                await conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :db AND application_name = 'agent-memory-mcp' AND pid <> pg_backend_pid()"
                    ),
                    {"db": pg_url.rsplit("/", 1)[1]},
                )
        finally:
            await admin.dispose()

    def users(session):
        return session.execute(text("SELECT count(*) FROM users")).scalar()

    try:
        async with eager.transaction() as s:
            await get_or_create_user_by_email(s, "ada@example.com")
        assert await eager.read(users) == 1
        assert await steady.read(users) == 1

        await kill_our_connections()
        assert await eager.read(users) == 1  # checked, found dead, replaced: the caller sees nothing

        with pytest.raises(DatabaseUnavailableError, match="connection was lost: try again"):
            await steady.read(users)
        assert await steady.read(users) == 1
        assert await steady.write(lambda session: session.execute(text("SELECT 1")).scalar()) == 1
    finally:
        await eager.dispose()
        await steady.dispose()


@pytest.mark.postgres
async def test_postgres_reads_run_without_a_transaction_and_writes_in_one(pg_url):
    """`Database.read` sends no BEGIN/COMMIT (two round trips saved; under READ COMMITTED each statement has its own
    snapshot either way); `Database.write` stays one transaction. Two statements asking for a transaction id show
    which: outside a transaction each statement is its own."""
    from sqlalchemy import text

    from repository import Database

    def two_ids(session):
        return [session.execute(text("SELECT txid_current()")).scalar() for _ in range(2)]

    db = Database(pg_url)
    try:
        first, second = await db.read(two_ids)
        assert first != second
        first, second = await db.write(two_ids)
        assert first == second
        async with db.transaction(readonly=True) as s:  # the public unit of work keeps its transaction
            assert len(set(await s.run_sync(two_ids))) == 1
        assert len(set(await db.read(two_ids))) == 2  # the pooled connection went back without autocommit leaking
        assert len(set(await db.write(two_ids))) == 1
    finally:
        await db.dispose()
