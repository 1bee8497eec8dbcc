"""Shared fixtures: every data test runs on a real SQLite file and on the real PostgreSQL server.

PostgreSQL: one database per test run (created, migrated, dropped), emptied between tests. When it is unreachable
the PostgreSQL tests skip locally but fail when CI=true: a skipped PostgreSQL test on CI is a failure.
SQLite: one migrated template file per run, copied for each test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from repository import (
    AgentCreate,
    Database,
    SessionCreate,
    UserCreate,
    create_agent,
    create_session,
    create_user,
    ensure_schema,
)
from repository.errors import DatabaseUnavailableError
from repository.scratch import create_scratch_database, drop_scratch_database

PG_SERVER = os.environ.get("AGENT_MEMORY_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432")
ON_CI = os.environ.get("CI", "").lower() == "true"
TABLES = ("memories", "messages", "sessions", "agents", "users", "search_terms")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _settings_from_the_test_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own AGENT_MEMORY_* variables (a real database URL, tokens) must not reach the servers, CLI
    runs and subprocesses the tests start: every test sets what it needs."""
    for name in list(os.environ):
        if name.startswith("AGENT_MEMORY_"):
            monkeypatch.delenv(name)


def _run(coro):
    return asyncio.run(coro)


def create_pg_database() -> str:
    """A new empty database on the test server; returns its SQLAlchemy URL."""
    try:
        return _run(create_scratch_database(PG_SERVER, prefix="agent_memory_test"))
    except DatabaseUnavailableError as exc:
        if ON_CI:
            pytest.fail(f"{exc} (CI=true: PostgreSQL tests must run)")
        pytest.skip(str(exc))


def drop_pg_database(url: str) -> None:
    _run(drop_scratch_database(url))


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url = create_pg_database()

    async def migrate() -> None:
        database = Database(url)
        await ensure_schema(database.engine)
        await database.dispose()

    _run(migrate())
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"

    async def migrate() -> None:
        database = Database(f"sqlite+aiosqlite:///{path}")
        await ensure_schema(database.engine)
        await database.dispose()

    _run(migrate())
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of the test's backend."""
    if backend == "sqlite":
        path = tmp_path / "memory.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url = request.getfixturevalue("pg_url")
    yield url

    async def empty() -> None:
        database = Database(url)
        async with database.engine.begin() as conn:
            from sqlalchemy import text

            # DELETE, not TRUNCATE: on these tiny tables it is ten times faster (TRUNCATE rewrites files).
            for table in TABLES:
                await conn.execute(text(f"DELETE FROM {table}"))
            await conn.execute(text("UPDATE search_stats SET n_docs = 0, body_len = 0, ctx_len = 0"))
        await database.dispose()

    _run(empty())


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def world(db: Database) -> dict[str, Any]:
    """The cast most repository tests need: users alice and bob, agents helper and other, and one session of
    (alice, helper) named "chat"."""
    async with db.transaction() as s:
        alice = await create_user(s, UserCreate(email="alice@example.com"))
        bob = await create_user(s, UserCreate(email="bob@example.com"))
        helper = await create_agent(s, AgentCreate(name="helper"))
        other = await create_agent(s, AgentCreate(name="other"))
        chat = await create_session(s, SessionCreate(user_id=alice.id, agent_id=helper.id, name="chat"))
    return {"alice": alice, "bob": bob, "helper": helper, "other": other, "chat": chat}
