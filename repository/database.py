"""Engines, sessions and the one unit-of-work helper that owns transactions.

Repository functions take an `AsyncSession` first, `flush()` and never commit: `Database.transaction()` commits
on success, rolls back on error and translates driver errors into `repository.errors` (`db_errors.translate_errors`,
the one place that does).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
from sqlalchemy import Engine, event, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session as SyncSession

from repository.connection import EngineOptions
from repository.db_errors import translate_errors
from repository.errors import InvalidInputError
from repository.runtime import Bounds, Runtime

log = logging.getLogger(__name__)
T = TypeVar("T")

# Execution option read by the SQLite "begin" hook: write transactions take the write lock up front.
BEGIN_IMMEDIATE = "agent_memory_begin_immediate"


def _json_loads(text: str) -> Any:
    # Most JSON columns of a message hold null (payloads, tool calls, context): four json.loads per row were a
    # tenth of a 50-message history page.
    return None if text == "null" else json.loads(text)


def create_engine(url: str, options: EngineOptions | None = None) -> AsyncEngine:
    """An async engine configured for the backend in `url` (sqlite+aiosqlite or postgresql+asyncpg)."""
    options = options or EngineOptions()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, options)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            url = parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
        engine = create_async_engine(
            url,
            echo=options.echo,
            pool_size=options.pool_size,
            max_overflow=options.max_overflow,
            pool_timeout=options.pool_timeout_s,
            pool_recycle=1800,
            json_deserializer=_json_loads,
            connect_args={
                "server_settings": {
                    "statement_timeout": str(options.statement_timeout_ms),
                    "application_name": "agent-memory-mcp",
                    # asyncpg prepares every statement, and after five runs PostgreSQL may switch to a generic plan
                    # that cannot see the tsquery or the scope values: a single-word search at 1M memories became
                    # twenty times slower that way, while our statements plan in a fraction of a millisecond, so
                    # always plan for the values (measured: docs/benchmarks.md, History).
                    "plan_cache_mode": "force_custom_plan",
                },
                "timeout": 10,
            },
        )
        _install_idle_ping(engine.sync_engine, options.idle_ping_s)
        return engine
    raise InvalidInputError(
        f"Unsupported database URL scheme {parsed.drivername!r}: use sqlite+aiosqlite:///path or "
        "postgresql+asyncpg://user@host/db."
    )


def _install_idle_ping(engine: Engine, idle_ping_s: float) -> None:
    """Check a pooled connection before use only when it has been idle `idle_ping_s`.

    Why not pool_pre_ping: it checks every time, three round trips (BEGIN, SELECT 1, ROLLBACK) that were a third
    of a one-statement read. A busy pool is in steady use, so a dropped connection (a server restart) is mostly
    met after a pause; one met while busy fails that one call with "try again", and SQLAlchemy then replaces the
    pool's connections.
    """

    @event.listens_for(engine, "checkin")
    def _idle_from(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_ping_s:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            # The pool discards this connection and checks out another (DisconnectionError is its signal).
            raise DisconnectionError() from exc


def _sqlite_engine(url: str, options: EngineOptions) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.drivername == "sqlite":
        url = parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url,
        echo=options.echo,
        json_deserializer=_json_loads,
        # sqlite3's own timeout is the busy handler: writers wait for the lock instead of failing.
        connect_args={"timeout": options.sqlite_busy_timeout_ms / 1000},
    )

    _install_sqlite_hooks(engine.sync_engine, options)
    return engine


def _install_sqlite_hooks(engine: Engine, options: EngineOptions) -> None:
    """Pragmas and transaction control for every SQLite connection (async and sync engines alike)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so the "begin" hook below decides how to BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers and one writer work at once, across processes. NORMAL sync is durable in WAL mode
        # except for the last transactions on power loss, the usual trade for an embedded store.
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(options.sqlite_busy_timeout_ms)}")
        cursor.execute(f"PRAGMA cache_size=-{int(options.sqlite_cache_mb) * 1024}")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A deferred transaction that reads and then writes cannot wait for the write lock: SQLite fails it at
        # once with "database is locked" when another process writes. BEGIN IMMEDIATE waits (busy_timeout).
        immediate = conn.get_execution_options().get(BEGIN_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL once (the mode is stored in the file, so later connections only check it).

    Switching needs a moment without other connections; when several processes create the same file at once, the
    switch can report "locked" without waiting for the busy handler, so it is retried briefly.
    """
    cursor.execute("PRAGMA journal_mode")
    if str(cursor.fetchone()[0]).lower() == "wal":
        return
    for _ in range(100):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception:  # noqa: BLE001 - the driver's adapted OperationalError ("locked"); retried, then raised
            time.sleep(0.05)
    cursor.execute("PRAGMA journal_mode=WAL")


# PostgreSQL writers take this transaction-level advisory lock first, so writes run one at a time, as SQLite's
# BEGIN IMMEDIATE makes them there. Why: every write to memories or messages updates the one search_stats row of its
# kind and upserts shared search_terms rows from statement triggers, then re-indexes its neighbours with a second
# statement; two writers interleaving those steps took the same locks in different orders and deadlocked under
# concurrent HTTP clients (measured: docs/benchmarks.md, History). Writers already queued on the search_stats row
# after their first statement, so serialising them from the start gives up little concurrency. (Migrations use
# another key.)
_WRITER_LOCK_KEY = 0x6167656E74777269  # "agentwri"
_TAKE_WRITER_LOCK = text(f"SELECT pg_advisory_xact_lock({_WRITER_LOCK_KEY})")


class Database:
    """An engine, its session factories and its runtime (bounds and caches). Create one per process (or per test)
    and `dispose()` it."""

    def __init__(self, url: str, options: EngineOptions | None = None, bounds: Bounds | None = None) -> None:
        self.url = url
        self.options = options or EngineOptions()
        self.engine = create_engine(url, self.options)
        self._sync_engine: Engine | None = None
        self.dialect = self.engine.dialect.name
        self.runtime = Runtime(self.dialect, bounds)
        common: dict[str, Any] = {"expire_on_commit": False, "autoflush": False, "info": self.runtime.session_info()}
        self._reader = async_sessionmaker(self.engine, **common)
        self._writer = async_sessionmaker(self.engine, execution_options={BEGIN_IMMEDIATE: True}, **common)
        # `read` on PostgreSQL runs without BEGIN and COMMIT: under READ COMMITTED each statement takes its own
        # snapshot inside a transaction too, so a read-only unit of work loses nothing and saves two round trips.
        self._autocommit_reader = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), **common
        )

    @asynccontextmanager
    async def transaction(self, *, readonly: bool = False) -> AsyncIterator[AsyncSession]:
        """The unit of work: commit when the block succeeds, roll back when it raises.

        Errors from the driver come out as `RepositoryError` subclasses; repository errors raised inside the block
        pass through unchanged (and still roll back).
        """
        factory = self._reader if readonly else self._writer
        with translate_errors():
            async with factory() as session, session.begin():
                if not readonly and self.dialect == "postgresql":
                    await session.execute(_TAKE_WRITER_LOCK)
                yield session

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(session, *args, **kwargs)` with a synchronous Session in a read-only unit of work.

        Why: each statement through aiosqlite is a round trip to its worker thread, and a search makes several
        (measured: docs/benchmarks.md, "History"). On SQLite the whole unit of work runs in one worker-thread hop
        on a plain sqlite3 connection, in one read transaction; on PostgreSQL it runs through the async session
        without BEGIN/COMMIT, each statement at its own snapshot (as READ COMMITTED would give inside a
        transaction), so `fn` must only read.
        """
        return await self._run(fn, args, kwargs, readonly=True)

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`read`'s counterpart for writes: one unit of work that commits when `fn` returns and rolls back if it
        raises (on SQLite a BEGIN IMMEDIATE transaction in one worker-thread hop)."""
        return await self._run(fn, args, kwargs, readonly=False)

    async def _run(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], *, readonly: bool) -> T:
        result: T
        if self.dialect != "sqlite":
            if readonly:
                with translate_errors():
                    async with self._autocommit_reader() as session:
                        result = await session.run_sync(fn, *args, **kwargs)
                        return result
            async with self.transaction() as session:
                result = await session.run_sync(fn, *args, **kwargs)
                return result
        # The engine is made here, on the event loop's thread: two worker threads must not both create one.
        call = functools.partial(self._run_in_thread, self._sync(), fn, args, kwargs, readonly)
        return await anyio.to_thread.run_sync(call)

    def _run_in_thread(
        self, engine: Engine, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], readonly: bool
    ) -> T:
        options = {} if readonly else {BEGIN_IMMEDIATE: True}
        session = SyncSession(
            engine,
            expire_on_commit=False,
            autoflush=False,
            execution_options=options,
            info=self.runtime.session_info(),
        )
        with translate_errors(), session, session.begin():
            return fn(session, *args, **kwargs)

    def _sync(self) -> Engine:
        if self._sync_engine is None:
            url = self.engine.url.set(drivername="sqlite+pysqlite")
            self._sync_engine = sa_create_engine(
                url,
                json_deserializer=_json_loads,
                # A connection is used by one thread at a time (pool checkout) but not always the same thread.
                connect_args={"timeout": self.options.sqlite_busy_timeout_ms / 1000, "check_same_thread": False},
            )
            _install_sqlite_hooks(self._sync_engine, self.options)
        return self._sync_engine

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._sync_engine is not None:
            self._sync_engine.dispose()
