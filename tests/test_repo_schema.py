"""Schema: Alembic round trips on both backends, the start-up version check, and the package's public surface."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

import repository
from repository import (
    Database,
    MemoryCreate,
    MessageCreate,
    SchemaVersionError,
    SessionCreate,
    UserCreate,
    add_messages,
    create_memory,
    create_session,
    create_user,
    ensure_schema,
    get_or_create_agent_by_name,
    get_or_create_user_by_email,
    get_user,
    list_memories,
    search_messages,
)
from repository.migrate import HEAD_REVISION, KNOWN_REVISIONS, current_revision, downgrade, upgrade
from repository.runtime import Bounds
from repository.textsearch import Analyzer
from repository.visibility import session_token

pytestmark = pytest.mark.anyio


async def fts_count(session, table: str, term: str) -> int:
    """Rows of `table`'s SQLite full-text index holding `term` (a stem or a scope token)."""
    found = await session.execute(text(f"SELECT count(*) FROM {table}_fts WHERE {table}_fts MATCH '\"{term}\"'"))
    return found.scalar()


async def assert_downgrade_rebuilds_the_index(db, revision: str, table: str, word: str, expected: int) -> None:
    """Downgrading to `revision` rebuilds SQLite's older two-column index, complete. Counted in the index itself:
    the current code needs the newer index to search."""
    await downgrade(db.engine, revision)
    if db.dialect == "sqlite":
        async with db.transaction(readonly=True) as s:
            assert await fts_count(s, table, Analyzer().query_terms(word)[0]) == expected


APP_TABLES = {"users", "agents", "sessions", "messages", "memories"}


@pytest.fixture
def empty_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it, of the test's backend."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    from conftest import create_pg_database, drop_pg_database

    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
async def empty_db(empty_url: str):
    database = Database(empty_url)
    try:
        yield database
    finally:
        await database.dispose()


async def _objects(database: Database) -> set[str]:
    """Every table, index, trigger, view, sequence and function in the database (FTS shadow tables too)."""
    async with database.engine.connect() as conn:
        if database.dialect == "sqlite":
            rows = await conn.execute(text("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))
        else:
            rows = await conn.execute(
                text(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' "
                    "UNION ALL SELECT t.tgname FROM pg_trigger t WHERE NOT t.tgisinternal "
                    "UNION ALL SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                    "WHERE n.nspname = 'public'"
                )
            )
        return set(rows.scalars().all())


async def _tables(database: Database) -> set[str]:
    async with database.engine.connect() as conn:
        if database.dialect == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            sql = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        return set((await conn.execute(text(sql))).scalars().all())


async def _smoke(database: Database) -> None:
    """The migrated schema works end to end, full-text structures included."""
    async with database.transaction() as s:
        user = await create_user(s, UserCreate(email="m@example.com"))
        await create_memory(s, MemoryCreate(content="migrated pangolin", user_id=user.id))
    async with database.transaction(readonly=True) as s:
        assert (await get_user(s, user.id)).email == "m@example.com"
        assert (await list_memories(s)).total == 1
        if database.dialect == "sqlite":
            sql = "SELECT count(*) FROM memories_fts WHERE memories_fts MATCH '\"pangolin\"'"
        else:
            column = (
                await s.execute(
                    text(
                        "SELECT column_name FROM information_schema.columns WHERE table_name = 'memories' "
                        "AND data_type = 'tsvector' AND table_schema = current_schema()"
                    )
                )
            ).scalar_one()
            sql = f"SELECT count(*) FROM memories WHERE {column} @@ to_tsquery('simple', 'pangolin')"
        assert (await s.execute(text(sql))).scalar() == 1


async def test_head_revision_matches_alembic_script_head():
    from alembic.script import ScriptDirectory

    from migrations import SCRIPT_LOCATION

    script = ScriptDirectory(SCRIPT_LOCATION)
    assert script.get_heads() == [HEAD_REVISION]
    assert script.get_current_head() == HEAD_REVISION
    assert set(KNOWN_REVISIONS) == {rev.revision for rev in script.walk_revisions()}


async def test_migration_round_trip(empty_db):
    assert await current_revision(empty_db.engine) is None
    assert await ensure_schema(empty_db.engine) == "migrated"
    assert await current_revision(empty_db.engine) == HEAD_REVISION
    assert await _tables(empty_db) >= APP_TABLES
    if empty_db.dialect == "sqlite":
        assert {"memories_fts", "messages_fts"} <= await _tables(empty_db)
    await _smoke(empty_db)
    assert await ensure_schema(empty_db.engine) == "current"

    await downgrade(empty_db.engine, "base")
    assert await _tables(empty_db) == {"alembic_version"}
    leftovers = {name for name in await _objects(empty_db) if not name.startswith("alembic_version")}
    assert leftovers == set()
    assert await current_revision(empty_db.engine) is None

    await upgrade(empty_db.engine)
    assert await current_revision(empty_db.engine) == HEAD_REVISION
    await _smoke(empty_db)


async def test_ensure_schema_refuses_a_newer_database(empty_db):
    await ensure_schema(empty_db.engine)
    async with empty_db.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(SchemaVersionError):
        await ensure_schema(empty_db.engine)
    with pytest.raises(SchemaVersionError):
        await ensure_schema(empty_db.engine, auto_migrate=False)
    # Nothing was touched.
    assert await current_revision(empty_db.engine) == "9999_from_the_future"


async def test_ensure_schema_without_auto_migrate_refuses_an_unmigrated_database(empty_db):
    with pytest.raises(SchemaVersionError):
        await ensure_schema(empty_db.engine, auto_migrate=False)
    assert await _tables(empty_db) & APP_TABLES == set()
    assert await current_revision(empty_db.engine) is None
    # A current database passes the check without migrating.
    assert await ensure_schema(empty_db.engine) == "migrated"
    assert await ensure_schema(empty_db.engine, auto_migrate=False) == "current"


async def test_failing_migration_is_not_recorded_and_leaves_no_partial_schema(empty_db):
    # A table in the way makes revision 0001 fail halfway (after users, agents, sessions and messages exist).
    async with empty_db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE memories (blocker integer)"))
    with pytest.raises(DBAPIError):
        await ensure_schema(empty_db.engine)
    assert await current_revision(empty_db.engine) is None
    assert await _tables(empty_db) & APP_TABLES == {"memories"}
    # Once the obstacle is gone the migration runs from the start.
    async with empty_db.engine.begin() as conn:
        await conn.execute(text("DROP TABLE memories"))
    assert await ensure_schema(empty_db.engine) == "migrated"
    await _smoke(empty_db)


async def test_concurrent_ensure_schema_migrates_once(empty_url):
    import asyncio

    databases = [Database(empty_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(ensure_schema(d.engine) for d in databases))
    finally:
        for database in databases:
            await database.dispose()
    assert "migrated" in results and set(results) <= {"migrated", "current"}
    database = Database(empty_url)
    try:
        assert await current_revision(database.engine) == HEAD_REVISION
        await _smoke(database)
    finally:
        await database.dispose()


# --- public surface ----------------------------------------------------------------------------------------------

PUBLIC = {
    # users
    "create_user", "get_user", "get_user_by_email", "get_or_create_user_by_email", "update_user", "delete_user",
    "list_users",
    # agents
    "create_agent", "get_agent", "get_agent_by_name", "get_or_create_agent_by_name", "update_agent", "delete_agent",
    "list_agents",
    # sessions
    "create_session", "get_session", "update_session", "delete_session", "list_sessions",
    # messages
    "add_message", "add_messages", "get_message", "update_message", "delete_message", "list_messages", "get_history",
    # memories
    "create_memory", "get_memory", "get_memory_by_name", "update_memory", "delete_memory", "list_memories",
    "upsert_memory", "bulk_insert_memories",
    # models
    "User", "UserCreate", "UserUpdate", "Agent", "AgentCreate", "AgentUpdate", "Session", "SessionCreate",
    "SessionUpdate", "SessionSummary", "Message", "MessageCreate", "MessageUpdate", "Memory", "MemoryCreate",
    "MemoryUpdate", "MemoryScope", "MemoryWrite", "Page", "HistoryPage",
    # errors
    "RepositoryError", "NotFoundError", "ConflictError", "InvalidInputError", "ReadOnlyError", "SchemaVersionError",
    "DatabaseUnavailableError",
    # infrastructure
    "Database", "ensure_schema", "upgrade", "downgrade", "HEAD_REVISION", "create_engine", "EngineOptions",
}  # fmt: skip


def test_everything_is_importable_from_the_package():
    import inspect

    assert set(repository.__all__) >= PUBLIC
    assert set(repository.__all__) <= set(dir(repository))
    namespace: dict = {}
    exec(f"from repository import {', '.join(sorted(repository.__all__))}", namespace)
    for name in repository.__all__:
        assert namespace[name] is getattr(repository, name)
    # The data functions are all async (they take an AsyncSession or an AsyncEngine).
    for name in PUBLIC:
        if name.islower() and name != "create_engine":
            assert inspect.iscoroutinefunction(namespace[name]), name
    with pytest.raises(AttributeError):
        repository.no_such_name  # noqa: B018
    with pytest.raises(ImportError):
        exec("from repository import no_such_name", {})


@pytest.mark.slow
def test_importing_the_models_does_not_load_sqlalchemy():
    code = (
        "import sys; import repository.models, repository.errors; "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic')); "
        "assert not loaded, loaded"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


async def test_unsupported_database_url_is_invalid_input():
    from repository import InvalidInputError

    with pytest.raises(InvalidInputError):
        Database("mysql+aiomysql://user@localhost/db")


async def test_memories_stored_before_0002_are_found_through_their_scope_tokens(empty_db):
    from repository import get_or_create_agent_by_name, get_or_create_user_by_email, search_memories, upsert_memory

    await upgrade(empty_db.engine, "0001")
    async with empty_db.transaction() as s:
        user = await get_or_create_user_by_email(s, "old@example.com")
        agent = await get_or_create_agent_by_name(s, "old-agent")
        for i in range(3):
            await upsert_memory(s, MemoryCreate(content=f"stored before {i}", user_id=user.id, agent_id=agent.id))
    await upgrade(empty_db.engine)  # 0002 rebuilds the SQLite index with a scope token per memory

    # Newest-first candidates (a one-posting budget forces them) use the tokens on SQLite.
    small = Database(empty_db.url, bounds=Bounds(candidate_postings=1))
    async with small.transaction(readonly=True) as s:
        hits = await search_memories(s, "stored before", user_id=user.id, agent_id=agent.id)
        assert sorted(h.memory.content for h in hits) == [f"stored before {i}" for i in range(3)]
        if empty_db.dialect == "sqlite":
            token = f"z{agent.id.hex}x{user.id.hex}"
            assert await fts_count(s, "memories", token) == 3
    await small.dispose()
    await assert_downgrade_rebuilds_the_index(empty_db, "0001", "memories", "stored", 3)


async def test_0003_drops_speaker_names_from_the_message_index_and_its_downgrade_restores_them(empty_db):
    await upgrade(empty_db.engine)
    async with empty_db.transaction() as s:
        user = await get_or_create_user_by_email(s, "old@example.com")
        agent = await get_or_create_agent_by_name(s, "old-agent")
        chat = await create_session(s, SessionCreate(user_id=user.id, agent_id=agent.id))
        turns = [("Priya", "The budget is approved"), (None, "Great news"), ("Tom", "Hiring starts Monday")]
        rows = [MessageCreate(session_id=chat.id, role="user", name=name, text_content=said) for name, said in turns]
        await add_messages(s, rows)

    async def index() -> list[tuple[str, str]]:
        async with empty_db.transaction(readonly=True) as s:
            found = await s.execute(text("SELECT search_body, search_ctx FROM messages ORDER BY seq"))
            return [tuple(row) for row in found.all()]

    now = await index()
    await downgrade(empty_db.engine, "0002")  # the index as 0002 wrote it: name first, in bodies and contexts
    assert await index() == [
        ("priya budget approv", "great new tom hire start mondai"),
        ("great new", "priya budget approv tom hire start mondai"),
        ("tom hire start mondai", "priya budget approv great new"),
    ]
    await upgrade(empty_db.engine)
    assert (
        await index()
        == now
        == [
            ("budget approv", "great new hire start mondai"),
            ("great new", "budget approv hire start mondai"),
            ("hire start mondai", "budget approv great new"),
        ]
    )
    async with empty_db.transaction(readonly=True) as s:
        assert await search_messages(s, "Tom", user_id=user.id) == []  # the full-text index followed the UPDATEs
        assert (await search_messages(s, "hiring", user_id=user.id))[0].message.name == "Tom"


async def test_0004_bounds_the_gin_pending_lists_on_postgresql(empty_db):
    query = text(
        "SELECT relname, reloptions FROM pg_class WHERE relname IN ('ix_memories_search', 'ix_messages_search') "
        "ORDER BY relname"
    )
    await upgrade(empty_db.engine)
    if empty_db.dialect != "postgresql":
        assert await current_revision(empty_db.engine) == HEAD_REVISION  # nothing to do on SQLite
        return
    async with empty_db.transaction(readonly=True) as s:
        found = (await s.execute(query)).all()
    assert found == [(name, ["gin_pending_list_limit=512"]) for name in ("ix_memories_search", "ix_messages_search")]
    await downgrade(empty_db.engine, "0003")
    async with empty_db.transaction(readonly=True) as s:
        assert [options for _, options in (await s.execute(query)).all()] == [None, None]


async def test_messages_stored_before_0005_are_found_through_their_session_tokens(empty_db):
    await upgrade(empty_db.engine, "0004")
    async with empty_db.transaction() as s:
        user = await get_or_create_user_by_email(s, "old@example.com")
        agent = await get_or_create_agent_by_name(s, "old-agent")
        chat = await create_session(s, SessionCreate(user_id=user.id, agent_id=agent.id))
        said = [MessageCreate(session_id=chat.id, role="user", text_content=f"said before {i}") for i in range(3)]
        await add_messages(s, said)
    await upgrade(empty_db.engine)  # 0005 rebuilds the SQLite index with a session token per message

    small = Database(empty_db.url, bounds=Bounds(candidate_postings=1))  # newest-first candidates use the tokens
    async with small.transaction(readonly=True) as s:
        hits = await search_messages(s, "said before", user_id=user.id)
        assert [h.message.text_content for h in hits] == [f"said before {i}" for i in (2, 1, 0)]
        if empty_db.dialect == "sqlite":
            token = session_token(chat.id)
            assert await fts_count(s, "messages", token) == 3
    await small.dispose()
    await assert_downgrade_rebuilds_the_index(empty_db, "0004", "messages", "said", 3)
