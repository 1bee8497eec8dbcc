"""Schema migrations from code: upgrade to head, check the revision cheaply at start-up.

The server calls `ensure_schema` at start: one SELECT when the database is current; Alembic (slow to import) is
loaded only when there is something to do.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from migrations import SCRIPT_LOCATION
from repository.database import BEGIN_IMMEDIATE
from repository.db_errors import is_outage
from repository.errors import SchemaVersionError

log = logging.getLogger(__name__)

# The newest revision in migrations/versions. A test checks it against Alembic's own view of the head, so the
# start-up check needs no Alembic import.
HEAD_REVISION = "0008"
KNOWN_REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008")
_ADVISORY_LOCK_KEY = 0x6167656E746D656D  # "agentmem"


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision recorded in the database, or None for an empty (never migrated) database."""
    async with engine.connect() as conn:
        try:
            return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        except DBAPIError as exc:
            # Only "no such table" means never migrated; a connection lost here is an outage, not an empty
            # database (treating it as one would try to migrate, or refuse for good without auto-migrate).
            if is_outage(exc):
                raise
            return None


@asynccontextmanager
async def locked_migration_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside one transaction that excludes other migrators (other processes included)."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(**{BEGIN_IMMEDIATE: True})
        async with conn.begin():
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
            yield conn


def _alembic_config(**attributes: Any) -> Any:
    from alembic.config import Config  # noqa: PLC0415 - Alembic is slow to import and needed only to migrate

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes.update(attributes)
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply pending migrations (all in one transaction)."""
    from alembic import command  # noqa: PLC0415 - Alembic is slow to import and needed only to migrate

    async with locked_migration_connection(engine) as conn:
        await conn.run_sync(lambda sync: command.upgrade(_alembic_config(connection=sync), revision))


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    from alembic import command  # noqa: PLC0415 - Alembic is slow to import and needed only to migrate

    async with locked_migration_connection(engine) as conn:
        await conn.run_sync(lambda sync: command.downgrade(_alembic_config(connection=sync), revision))


async def ensure_schema(engine: AsyncEngine, *, auto_migrate: bool = True) -> str:
    """Make sure the schema matches this code; returns what was done ("current" or "migrated").

    Refuses (SchemaVersionError) a database migrated by newer code, and an outdated one when auto_migrate is off.
    """
    revision = await current_revision(engine)
    if revision == HEAD_REVISION:
        return "current"
    if revision is not None and revision not in KNOWN_REVISIONS:
        raise SchemaVersionError(
            f"The database is at schema revision {revision!r}, which this version of agent-memory-mcp does not "
            "know (it was written by a newer version): upgrade agent-memory-mcp, or point it at another database."
        )
    if not auto_migrate:
        raise SchemaVersionError(
            f"The database schema is at {revision or 'no revision'} and needs migrating to {HEAD_REVISION}: run "
            "`agent-memory-mcp migrate`, or enable automatic migrations."
        )
    log.info("migrating database schema from %s to %s", revision or "empty", HEAD_REVISION)
    await upgrade(engine)
    return "migrated"
