"""The database's lifecycle on both backends: stats, purging expired memories (the operation, the server's sweeper
and `purge --expired`), and `delete-user` (everything of one user goes, every other user's data stays)."""

from __future__ import annotations

import json
import logging
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from sqlalchemy import and_, select, text

from mcp_server.cli import main
from mcp_server.config import Settings
from mcp_server.state import AppState
from mcp_server.sweeper import start_sweeper, sweep_once
from repository import Operations
from repository.errors import InvalidInputError, NotFoundError
from repository.migrate import HEAD_REVISION
from repository.models import NewMessage
from repository.search_index import MEMORY_NEIGHBOUR_WINDOW, Neighbours, relink
from repository.tables import MemoryRow
from repository.visibility import expired, not_expired
from tests.http_server import SCRIPT
from tests.mcp_helpers import call, connect

pytestmark = pytest.mark.anyio

PAST = datetime(2001, 1, 1, tzinfo=UTC)
STATS_FIELDS = {
    "dialect",
    "schema_revision",
    "database_bytes",
    "users",
    "agents",
    "sessions",
    "messages",
    "memories",
    "expired_memories",
}


@pytest.fixture
async def ops(database_url):
    operations = await Operations.open(database_url)
    yield operations
    await operations.close()


async def _raw(ops: Operations, sql: str) -> Any:
    async with ops.database.transaction(readonly=True) as session:
        return (await session.execute(text(sql))).scalar()


async def _index_is_exact(ops: Operations) -> None:
    """The search statistics the triggers keep still count exactly the rows there are."""
    for kind, table in (("memory", "memories"), ("message", "messages")):
        counted = await _raw(ops, f"SELECT n_docs FROM search_stats WHERE kind = '{kind}'")
        assert counted == await _raw(ops, f"SELECT count(*) FROM {table}"), kind


async def _populate(ops: Operations, user: str, agent: str = "coder") -> dict[str, Any]:
    """A user with two sessions (three messages), user, session and agent-wide memories, one expired, and a token."""
    actor = await ops.identity.actor(user, agent)
    tag = user.split("@")[0]
    chats = [await ops.conversations.start_session(actor, name=f"{tag} chat {i}") for i in range(2)]
    await ops.conversations.append(actor, chats[0].id, [NewMessage(role="user", text_content=f"{tag} says hello")])
    await ops.conversations.append(
        actor,
        chats[1].id,
        [
            NewMessage(role="user", text_content=f"{tag} asks"),
            NewMessage(role="assistant", text_content=f"{tag} answered"),
        ],
    )
    memories = [
        (await ops.memories.remember(actor, f"{tag} keeps bees", name="hobby")).memory,
        (await ops.memories.remember(actor, f"{tag} booked a table", session_id=chats[0].id)).memory,
        (await ops.memories.remember(actor, f"{tag} used to like jazz", expires_at=PAST)).memory,
        (await ops.memories.remember(actor, f"{tag} team writes in British English", scope="agent")).memory,
    ]
    secret, _ = await ops.credentials.create(user, agent)
    return {"actor": actor, "sessions": chats, "memories": memories, "secret": secret}


async def test_stats_count_every_table_size_and_revision(ops):
    empty = await ops.lifecycle.stats()
    assert (empty.users, empty.sessions, empty.messages, empty.memories, empty.expired_memories) == (0, 0, 0, 0, 0)
    await _populate(ops, "ada@example.com")
    await _populate(ops, "bob@example.com", agent="writer")
    stats = await ops.lifecycle.stats()
    assert stats.dialect == ops.database.dialect and stats.schema_revision == HEAD_REVISION
    assert (stats.users, stats.agents, stats.sessions, stats.messages) == (2, 2, 4, 6)
    assert (stats.memories, stats.expired_memories) == (8, 2)
    assert stats.database_bytes is not None and stats.database_bytes > 0
    if ops.database.dialect == "sqlite":
        # The file and its write-ahead log: nothing else (the stats of an empty database were smaller or equal).
        path = ops.database.engine.url.database
        wal = anyio.Path(f"{path}-wal")
        on_disk = (await anyio.Path(path).stat()).st_size + ((await wal.stat()).st_size if await wal.exists() else 0)
        assert stats.database_bytes == on_disk


async def test_purge_deletes_only_expired_memories_in_bounded_batches_and_keeps_the_index_exact(ops):
    actor = await ops.identity.actor("ada@example.com", "coder")
    soon = datetime.now(UTC) + timedelta(hours=1)
    # Expired ones interleaved with kept ones, so the purge must re-index the neighbours around each gap.
    kept = []
    for i in range(5):
        kept.append((await ops.memories.remember(actor, f"lasting fact {i} zebra")).memory)
        await ops.memories.remember(actor, f"stale quokka {i}", expires_at=PAST)
    later = (await ops.memories.remember(actor, "expires tomorrow zebra", expires_at=soon)).memory
    await _populate(ops, "bob@example.com")
    assert (await ops.lifecycle.stats()).expired_memories == 6
    assert await ops.lifecycle.purge_expired(batch=5) == 6
    assert await ops.lifecycle.purge_expired(batch=5) == 0
    stats = await ops.lifecycle.stats()
    assert (stats.memories, stats.expired_memories) == (6 + 3, 0)
    listed = {m.id for m in (await ops.memories.list(actor, limit=100)).items}
    assert {m.id for m in kept} | {later.id} <= listed
    # The neighbours no longer lend the deleted memories' words: a search for them finds nothing at all.
    assert (await ops.memories.recall(actor, "quokka")).hits == []
    assert await _raw(ops, "SELECT count(*) FROM memories WHERE search_ctx LIKE '%quokka%'") == 0
    assert len((await ops.memories.recall(actor, "zebra")).hits) == 6
    await _index_is_exact(ops)
    await _contexts_are_current(ops, actor)


async def _contexts_are_current(ops: Operations, actor: Any) -> None:
    """Re-indexing every row of the actor's user scope from scratch changes no row's context: the purge left the
    neighbour index exactly as writes alone would have."""
    owner = (MemoryRow.agent_id == actor.agent_id, MemoryRow.user_id == actor.user_id)
    scope = and_(*owner, MemoryRow.session_id.is_(None))

    def contexts(session: Any) -> dict[int, str]:
        return dict(session.execute(select(MemoryRow.seq, MemoryRow.search_ctx).where(scope)).all())

    def rebuild(session: Any) -> dict[int, str]:
        before = contexts(session)
        table = MemoryRow.__table__
        relink(session, table, Neighbours("test scope", scope, {}), before, window=MEMORY_NEIGHBOUR_WINDOW)
        return before

    before = await ops.database.write(rebuild)
    assert len(before) == 6 and before == await ops.database.read(contexts)


async def test_expired_is_exactly_what_reads_hide_and_the_sweep_reads_the_expiry_index(ops):
    actor = await ops.identity.actor("ada@example.com", "coder")
    for expires_at in (None, PAST, datetime.now(UTC) + timedelta(hours=1)):
        await ops.memories.remember(actor, f"fact expiring {expires_at}", expires_at=expires_at)
    now = datetime.now(UTC)

    def check(session: Any) -> str:
        gone = set(session.execute(select(MemoryRow.seq).where(expired(now))).scalars())
        live = set(session.execute(select(MemoryRow.seq).where(not_expired(now))).scalars())
        assert len(gone) == 1 and gone.isdisjoint(live) and gone | live == set(session.scalars(select(MemoryRow.seq)))
        postgres = session.bind.dialect.name == "postgresql"
        statement = select(MemoryRow.seq).where(expired(now)).order_by(MemoryRow.seq).limit(10)
        sql = str(statement.compile(session.bind, compile_kwargs={"literal_binds": True}))
        if not postgres:
            return " ".join(str(row[-1]) for row in session.execute(text("EXPLAIN QUERY PLAN " + sql)))
        session.execute(text("SET enable_seqscan = off"))  # three rows: show that the index is usable at all
        try:
            return " ".join(str(row[0]) for row in session.execute(text("EXPLAIN " + sql)))
        finally:
            session.execute(text("RESET enable_seqscan"))

    assert "ix_memories_expires_at" in await ops.database.read(check)


async def test_purge_refuses_a_bad_batch_size(ops):
    for batch in (0, 10_001):
        with pytest.raises(InvalidInputError, match="batch must be between 1 and"):
            await ops.lifecycle.purge_expired(batch=batch)


async def test_delete_user_removes_everything_of_theirs_and_nothing_of_anyone_else(ops):
    ada = await _populate(ops, "ada@example.com")
    bob = await _populate(ops, "bob@example.com")
    before = await ops.lifecycle.footprint("ADA@example.com")  # names match case-insensitively, as identities do
    assert (before.user, before.sessions, before.messages, before.memories, before.tokens) == (
        "ada@example.com",
        2,
        3,
        3,
        1,
    )
    owned = f"WHERE user_id = '{_key(ops, ada)}'"
    raw = {t: f"SELECT count(*) FROM {t} {owned}" for t in ("sessions", "messages", "api_tokens")}
    assert [await _raw(ops, sql) for sql in raw.values()] == [2, 3, 1]
    assert await ops.lifecycle.delete_user("ada@example.com") == before
    with pytest.raises(NotFoundError, match=r"No user 'ada@example\.com'"):
        await ops.lifecycle.footprint("ada@example.com")
    assert await ops.credentials.verify(ada["secret"]) is None
    assert await ops.credentials.verify(bob["secret"]) is not None
    after = await ops.lifecycle.footprint("bob@example.com")
    assert (after.sessions, after.messages, after.memories, after.tokens) == (2, 3, 3, 1)
    stats = await ops.lifecycle.stats()
    # Bob's four memories and ada's agent-wide one (shared notes, no one's own) remain.
    assert (stats.users, stats.sessions, stats.messages, stats.memories) == (1, 2, 3, 5)
    hits = (await ops.memories.recall(bob["actor"], "bees")).hits
    assert [h.memory.content for h in hits] == ["bob keeps bees"]
    said = [h.message.text_content for h in (await ops.conversations.search(bob["actor"], "answered")).hits]
    assert said[0] == "bob answered" and all(t.startswith("bob ") for t in said)
    assert [await _raw(ops, sql) for sql in raw.values()] == [0, 0, 0]
    await _index_is_exact(ops)


def _key(ops: Operations, data: dict[str, Any]) -> str:
    user_id = data["actor"].user_id
    return user_id.hex if ops.database.dialect == "sqlite" else str(user_id)


async def test_delete_user_of_an_unknown_user_is_a_short_error(ops):
    await _populate(ops, "bob@example.com")
    for attempt in (ops.lifecycle.delete_user("nobody"), ops.lifecycle.footprint("nobody")):
        with pytest.raises(NotFoundError) as raised:
            await attempt
        assert len(str(raised.value)) < 120 and "\n" not in str(raised.value)
    assert (await ops.lifecycle.stats()).users == 1


async def test_the_server_sweeps_expired_memories_by_itself(database_url, ops, caplog):
    caplog.set_level(logging.INFO, logger="mcp_server.sweeper")
    async with connect(database_url, sweep_interval_s=0.2) as client:
        kept = await call(client, "store_memory", content="Ada keeps bees")
        soon = (datetime.now(UTC) + timedelta(seconds=0.5)).isoformat()
        await call(client, "store_memory", content="Ada is in Lisbon this week", expires_at=soon)
        await call(client, "store_memory", content="Ada used to like jazz", expires_at=PAST.isoformat())
        with anyio.fail_after(15):
            while await _raw(ops, "SELECT count(*) FROM memories") > 1:
                await anyio.sleep(0.1)
        assert (await call(client, "get_memory", memory_id=kept["id"]))["content"] == "Ada keeps bees"
    assert any("deleted" in r.getMessage() for r in caplog.records if r.name == "mcp_server.sweeper")
    await _index_is_exact(ops)


async def test_the_sweeper_survives_database_errors_and_stops_when_cancelled(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="mcp_server.sweeper")
    # A database that cannot open: its directory is a file.
    (tmp_path / "not-a-dir").write_text("")
    state = AppState(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'not-a-dir' / 'm.db'}"))
    async with anyio.create_task_group() as tasks:
        state.attach(tasks)
        assert await sweep_once(state) is None
        scope = start_sweeper(tasks, state, 0.05)
        with anyio.fail_after(10):
            while sum(r.name == "mcp_server.sweeper" for r in caplog.records) < 3:
                await anyio.sleep(0.05)
        scope.cancel()
    swept = [r for r in caplog.records if r.name == "mcp_server.sweeper"]
    assert all(r.levelno == logging.WARNING and "sweep failed" in r.getMessage() for r in swept)
    assert all("Traceback" not in r.getMessage() and "\n" not in r.getMessage() for r in swept)
    await state.close()


# --- the command line ---------------------------------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str, str]:
    status = main([*args, "--database-url", url])
    out, err = capsys.readouterr()
    return status, out, err


def _short_error(err: str) -> None:
    assert err.startswith("agent-memory-mcp: ") and err.count("\n") == 1 and len(err) < 300, err
    assert "Traceback" not in err and "Error" not in err.split(":", 1)[1], err


def _setup(url: str) -> None:
    async def fill() -> None:
        operations = await Operations.open(url)
        try:
            await _populate(operations, "ada@example.com")
            await _populate(operations, "bob@example.com", agent="writer")
        finally:
            await operations.close()

    anyio.run(fill)


def test_cli_stats_and_purge(database_url, capsys):
    _setup(database_url)
    status, out, err = _cli(capsys, database_url, "stats", "--json")
    assert status == 0 and err == ""
    stats = json.loads(out)
    assert set(stats) == STATS_FIELDS and stats["schema_revision"] == HEAD_REVISION
    assert (stats["users"], stats["memories"], stats["expired_memories"], stats["messages"]) == (2, 8, 2, 6)
    status, out, _ = _cli(capsys, database_url, "stats")
    assert status == 0 and "memories         8 (2 expired)" in out and "schema revision  " + HEAD_REVISION in out
    assert _cli(capsys, database_url, "purge", "--expired")[:2] == (0, "deleted 2 expired memories\n")
    assert _cli(capsys, database_url, "purge", "--expired")[:2] == (0, "deleted 0 expired memories\n")
    assert json.loads(_cli(capsys, database_url, "stats", "--json")[1])["expired_memories"] == 0
    with pytest.raises(SystemExit) as usage:
        main(["purge", "--database-url", database_url])
    assert usage.value.code == 2 and "--expired" in capsys.readouterr().err


def test_cli_delete_user_refuses_without_yes_then_deletes(database_url, capsys):
    _setup(database_url)
    status, out, err = _cli(capsys, database_url, "delete-user", "ada@example.com")
    assert status == 1 and out == ""
    _short_error(err)
    assert "2 sessions, 3 messages, 3 memories and 1 token" in err and "--yes" in err
    assert json.loads(_cli(capsys, database_url, "stats", "--json")[1])["users"] == 2
    status, out, err = _cli(capsys, database_url, "delete-user", "ada@example.com", "--yes")
    assert (status, err) == (0, "")
    assert out == "deleted user 'ada@example.com' with 2 sessions, 3 messages, 3 memories and 1 token\n"
    stats = json.loads(_cli(capsys, database_url, "stats", "--json")[1])
    assert (stats["users"], stats["sessions"], stats["messages"], stats["memories"]) == (1, 2, 3, 5)
    for args in (("delete-user", "ada@example.com", "--yes"), ("delete-user", "nobody")):
        status, out, err = _cli(capsys, database_url, *args)
        assert status == 1 and out == ""
        _short_error(err)
        assert "No user" in err


@pytest.mark.slow
def test_console_script_keeps_stdout_for_results(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    run = [SCRIPT, "stats", "--json", "--database-url", url]
    result = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and json.loads(result.stdout)["users"] == 0, result.stderr
    refused = subprocess.run([*run[:1], "delete-user", "x", *run[3:]], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and refused.stdout == "" and "No user 'x'" in refused.stderr
