"""Long-lived server state handed to tools through the lifespan: the database and the identity resolver.

The database opens in the background once the protocol handshake is done (hosts time slow servers out, and on two
cores any work beside the handshake slows it): importing SQLAlchemy and checking the schema runs in a worker
thread, started by the first message after the handshake or by the first `db()` call, whichever comes first.
Code that imports the data layer (`repository.*` beyond the pure `models` and `textsearch`) must do so only after
`db()` (or `acting()`) returned: two threads importing the same package at once can see half-initialised modules.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.abc

from mcp_server.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from repository.database import Database

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Actor:
    """Who a request acts for. Passed explicitly to every repository call that reads or writes user data."""

    user_id: uuid.UUID
    agent_id: uuid.UUID


class _Attempt:
    """One try at opening the database; waiters keep a reference, so a retry never changes what they see."""

    def __init__(self) -> None:
        self.started = False
        self.done = anyio.Event()
        self.database: Database | None = None
        self.failure: BaseException | None = None


class AppState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tokens = settings.tokens()
        self._attempt = _Attempt()
        self._tasks: anyio.abc.TaskGroup | None = None
        self._actors: dict[tuple[str, str], Actor] = {}

    def attach(self, tasks: anyio.abc.TaskGroup) -> None:
        """Give the state the lifespan's task group, where the database open will run."""
        self._tasks = tasks

    def start_opening(self) -> None:
        """Begin opening the database in the background (once per attempt; later calls do nothing)."""
        attempt = self._attempt
        if not attempt.started and self._tasks is not None:
            attempt.started = True
            self._tasks.start_soon(self._open, attempt)

    async def _open(self, attempt: _Attempt) -> None:
        """Import the data layer, connect, and bring the schema up to date (or record why not)."""
        try:
            await anyio.to_thread.run_sync(_import_data_layer)
            from repository.database import Database, EngineOptions
            from repository.migrate import ensure_schema

            s = self.settings
            database = Database(
                s.resolved_database_url(),
                EngineOptions(
                    pool_size=s.pool_size,
                    max_overflow=s.max_overflow,
                    statement_timeout_ms=s.statement_timeout_ms,
                    sqlite_busy_timeout_ms=s.sqlite_busy_timeout_ms,
                    sqlite_cache_mb=s.sqlite_cache_mb,
                ),
            )
            attempt.database = database
            outcome = await ensure_schema(database.engine, auto_migrate=s.auto_migrate)
            log.info("database ready (%s, schema %s)", database.dialect, outcome)
        except anyio.get_cancelled_exc_class():
            # The server stopped before the database was ready: nothing to report.
            attempt.failure = DatabaseOpenError()
            raise
        except Exception as exc:  # noqa: BLE001 - kept and reported to every tool call, never raised here
            attempt.failure = exc
            log.error("database could not be opened: %s", exc)
        finally:
            attempt.done.set()

    async def db(self) -> Database:
        self.start_opening()
        attempt = self._attempt
        await attempt.done.wait()
        if attempt.failure is None:
            assert attempt.database is not None
            return attempt.database
        from repository.errors import RepositoryError, SchemaVersionError

        if not isinstance(attempt.failure, SchemaVersionError) and self._attempt is attempt:
            # Unreachable or unwritable now is not unreachable forever (a database restarting, a disk filling
            # up): the next call tries again instead of the server staying broken until it is restarted.
            self._attempt = _Attempt()
            if attempt.database is not None:
                await attempt.database.dispose()
        if isinstance(attempt.failure, RepositoryError):
            raise attempt.failure
        raise DatabaseOpenError() from attempt.failure

    async def db_now(self) -> Database:
        """Open the database in the calling task: for one-shot commands that run without a server lifespan."""
        attempt = self._attempt
        if not attempt.started:
            attempt.started = True
            await self._open(attempt)
        return await self.db()

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a synchronous read `fn(session, ...)` in its own unit of work (see `Database.read`)."""
        database = await self.db()
        return await database.read(fn, *args, **kwargs)

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a synchronous write `fn(session, ...)` in its own unit of work (see `Database.write`)."""
        database = await self.db()
        return await database.write(fn, *args, **kwargs)

    @asynccontextmanager
    async def transaction(self, *, readonly: bool = False) -> AsyncIterator[AsyncSession]:
        database = await self.db()
        async with database.transaction(readonly=readonly) as session:
            yield session

    async def actor(self, user_key: str, agent_key: str) -> Actor:
        """The (user, agent) for these configured keys, created on first use and cached for the process."""
        key = (user_key, agent_key)
        if key not in self._actors:
            await self.db()  # the data layer is imported once the database is ready (see module docstring)
            from repository.agents import get_or_create_agent_by_name
            from repository.users import get_or_create_user_by_email

            async with self.transaction() as session:
                user = await get_or_create_user_by_email(session, user_key)
                agent = await get_or_create_agent_by_name(session, agent_key)
            self._actors[key] = Actor(user.id, agent.id)
        return self._actors[key]

    async def close(self) -> None:
        if self._attempt.database is not None:
            await self._attempt.database.dispose()


class DatabaseOpenError(Exception):
    """The database could not be opened; the cause is in the server log."""

    def __str__(self) -> str:
        return "The memory database could not be opened: check AGENT_MEMORY_DATABASE_URL and the server's log (stderr)."


def _import_data_layer() -> Any:
    # Runs in a worker thread: the heavy imports overlap with the protocol handshake.
    import sqlalchemy.dialects.postgresql.asyncpg  # noqa: F401
    import sqlalchemy.dialects.sqlite.aiosqlite  # noqa: F401

    import repository.agents  # noqa: F401
    import repository.database  # noqa: F401
    import repository.memories  # noqa: F401
    import repository.messages  # noqa: F401
    import repository.migrate  # noqa: F401
    import repository.search  # noqa: F401
    import repository.sessions  # noqa: F401
    import repository.users  # noqa: F401
