"""Alembic environment: async engines, one revision chain for SQLite and PostgreSQL.

The URL comes from the Alembic config (`sqlalchemy.url`, set by `repository.migrate`) or, for the `alembic`
command line, from AGENT_MEMORY_DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from repository.migration_support import create_engine, default_sqlite_url, locked_migration_connection, metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    return (
        config.get_main_option("sqlalchemy.url") or os.environ.get("AGENT_MEMORY_DATABASE_URL") or default_sqlite_url()
    )


def _run(connection: Connection) -> None:
    # The caller (repository.migrate, or _run_async below) holds one transaction around the version check and
    # every pending revision: a failing revision rolls everything back and is never recorded as applied, and two
    # processes migrating at once serialize on it (BEGIN IMMEDIATE / advisory lock) instead of both migrating.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_url())
    try:
        async with locked_migration_connection(engine) as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) migrations are not supported: run against a database.")
if "connection" in config.attributes:
    _run(config.attributes["connection"])
else:
    asyncio.run(_run_async())
