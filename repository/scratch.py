"""Throwaway PostgreSQL databases: a new empty database on a server, dropped when done.

For the project's tests and benchmarks, and for library users' own tests: `async with scratch_database() as url:`
gives a SQLAlchemy URL to pass to `Database(url)`. The server comes from $AGENT_MEMORY_TEST_PG (a URL without a
database name) unless one is passed.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from repository.errors import DatabaseUnavailableError

DEFAULT_SERVER = os.environ.get("AGENT_MEMORY_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432")
_PREFIX = re.compile(r"[a-z0-9_]+")


def _safe(url: str) -> str:
    """The URL without its password, fit for an error message."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1@", url)


async def _admin(server_url: str, statement: str) -> None:
    """Run one statement on the server's `postgres` maintenance database."""
    import asyncpg  # type: ignore[import-untyped]  # noqa: PLC0415 - asyncpg is slow to import, needed only here

    dsn = server_url.rstrip("/").replace("postgresql+asyncpg://", "postgresql://", 1) + "/postgres"
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, ConnectionError, asyncpg.PostgresError, TimeoutError) as exc:
        raise DatabaseUnavailableError(
            f"PostgreSQL at {_safe(server_url)} cannot be reached: start PostgreSQL or point at another server."
        ) from exc
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def create_scratch_database(server_url: str = DEFAULT_SERVER, prefix: str = "agent_memory_scratch") -> str:
    """Create a new empty database `{prefix}_{12 hex}` on the server; returns its SQLAlchemy URL."""
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"prefix must be lower-case letters, digits and underscores, got {prefix!r}")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    return f"{server_url.rstrip('/')}/{name}"


async def drop_scratch_database(url: str) -> None:
    """Drop the database `url` names (a URL from `create_scratch_database`), closing its connections first."""
    server_url, _, name = url.rpartition("/")
    if not _PREFIX.fullmatch(name):
        raise ValueError(f"not a scratch database name: {name!r}")
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def scratch_database(
    server_url: str = DEFAULT_SERVER, prefix: str = "agent_memory_scratch"
) -> AsyncIterator[str]:
    """A new empty database for the block (its SQLAlchemy URL), dropped afterwards even if the block raises."""
    url = await create_scratch_database(server_url, prefix)
    try:
        yield url
    finally:
        await drop_scratch_database(url)
