"""The PostgreSQL relay of the change bus: one asyncpg connection per server process that LISTENs on one channel
and NOTIFYs this process's changes, so every replica on the database hears every replica's writes.

Why a connection of its own, outside the engine's pool: a LISTEN lasts as long as its connection, so a pooled
one would be held forever (one fewer for the tools) and recycled or pinged under us. It is made from the
engine's own connect arguments (host, credentials, TLS options of AGENT_MEMORY_DATABASE_URL).

Sending: writers only append to an outbox (the publisher runs in the writing task and must not wait for the
network); this task sends it in batches of up to 100 notices per statement, and keeps a batch until it was sent,
so a drop costs no notice that had not left yet. An outbox that fills up (the database away for long) drops
notices and, once the connection is back, sends one "resync" notice instead: every replica then tells its
subscribers that anything may have changed. Receiving: a connection that comes back after a drop (or after
failed attempts) cannot know what it missed, so this process's listeners get the same "anything may have
changed". A connection that dies silently is found by a ping when nothing was sent for a while.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from mcp_server.bus import ChangeBus, resync_payload

log = logging.getLogger(__name__)

CHANNEL = "agent_memory_changes"
OUTBOX_MAX = 10_000  # notices waiting to be sent; about 3 MB at most
BATCH_MAX = 100
KEEPALIVE_S = 10.0  # ping an idle connection this often, to notice one that died without a word
STATEMENT_S = 10.0  # a NOTIFY batch or a ping taking longer than this means the connection is gone
BACKOFF_S = (0.1, 5.0)  # first and longest wait between reconnection attempts, doubling in between
_NOTIFY = f"SELECT pg_notify('{CHANNEL}', p) FROM unnest($1::text[]) AS p"
# Connect arguments SQLAlchemy's asyncpg dialect understands but asyncpg.connect does not.
_DIALECT_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func", "async_creator_fn")


async def announce_outside_change(engine: Any) -> None:
    """Tell every server on this PostgreSQL database that anything may have changed. A command run outside the
    servers (import, purge, delete-user) sends this once after its writes: it has no relay to report each change.
    Nothing on SQLite, where only the writing process can be told."""
    if engine.dialect.name != "postgresql":
        return
    # Our own JSON of hex digits and fixed keys: nothing in it needs quoting.
    payload = resync_payload("command-" + uuid.uuid4().hex)
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(f"SELECT pg_notify('{CHANNEL}', '{payload}')")
    except Exception as exc:  # noqa: BLE001 - the writes are committed; an unsent notice must not fail the command
        log.warning("running servers were not told of this change: %s", _brief(exc))


class _Lost(Exception):
    """The relay's connection was closed under it."""


def connect_arguments(engine: Any) -> dict[str, Any]:
    """asyncpg.connect arguments for the database of this SQLAlchemy engine (the dialect's own translation)."""
    _, kwargs = engine.dialect.create_connect_args(engine.url)
    arguments = {key: value for key, value in kwargs.items() if key not in _DIALECT_ONLY}
    arguments.setdefault("timeout", 10)
    arguments["server_settings"] = {"application_name": "agent-memory-mcp change bus"}
    return arguments


class PostgresRelay:
    """LISTEN/NOTIFY for one `ChangeBus`; `run()` in a task until cancelled, reconnecting with backoff."""

    def __init__(self, bus: ChangeBus, arguments: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self.bus = bus
        self._arguments = arguments
        self._outbox: deque[str] = deque()
        self._overflowed = False
        self._wake = anyio.Event()
        self._lost = False
        # Set while the LISTEN is in place: a subscription acknowledged after this hears every later commit.
        self.listening = anyio.Event()
        self.reconnects = 0

    def send(self, payload: str) -> None:
        """Queue a notice for the other processes (never blocks, never raises)."""
        if len(self._outbox) >= OUTBOX_MAX:
            if not self._overflowed:
                log.warning("change bus outbox full: notices are dropped until the database is reachable")
            self._overflowed = True
            return
        self._outbox.append(payload)
        self._wake.set()

    async def run(self) -> None:
        delay, gap = BACKOFF_S[0], False
        while True:
            try:
                connection = await self._connect()
            except Exception as exc:  # noqa: BLE001 - any failure to connect is retried, with its cause logged
                log.warning("change bus cannot reach PostgreSQL (%s); retrying in %.1f s", _brief(exc), delay)
                gap = True
                await anyio.sleep(delay)
                delay = min(delay * 2, BACKOFF_S[1])
                continue
            delay = BACKOFF_S[0]
            try:
                await self._serve(connection, gap)
            except Exception as exc:  # noqa: BLE001 - a lost connection is replaced
                log.warning("change bus lost its PostgreSQL connection (%s); reconnecting", _brief(exc))
            finally:
                self.listening = anyio.Event()
                await _close(connection)
            gap = True
            self.reconnects += 1

    async def _connect(self) -> Any:
        arguments = await self._arguments()  # waits for the database open, which has loaded the driver
        import asyncpg  # type: ignore[import-untyped]  # noqa: PLC0415 - loaded with the data layer, needed only here

        with anyio.fail_after(STATEMENT_S + 5):
            connection = await asyncpg.connect(**arguments)
        self._lost = False
        connection.add_termination_listener(self._on_termination)
        try:
            await connection.add_listener(CHANNEL, self._on_notify)
        except BaseException:
            await _close(connection)
            raise
        return connection

    async def _serve(self, connection: Any, gap: bool) -> None:
        self.listening.set()
        if gap:
            # Notices may have been missed while there was no LISTEN: let every subscriber read again.
            self.bus.deliver(None)
        while True:
            if not self._outbox and not self._overflowed:
                self._wake = anyio.Event()
                with anyio.move_on_after(KEEPALIVE_S):
                    await self._wake.wait()
            if self._lost:
                raise _Lost("closed by the server")
            batch = list(itertools.islice(self._outbox, BATCH_MAX))
            resync = self._overflowed
            with anyio.fail_after(STATEMENT_S):
                if batch or resync:
                    await connection.execute(_NOTIFY, batch + ([resync_payload(self.bus.origin)] if resync else []))
                else:
                    await connection.fetchval("SELECT 1")
            for _ in batch:
                self._outbox.popleft()
            if resync:
                self._overflowed = False

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self.bus.receive(payload)

    def _on_termination(self, _connection: Any) -> None:
        self._lost = True
        self._wake.set()


async def _close(connection: Any) -> None:
    with anyio.CancelScope(shield=True):
        try:
            await connection.close(timeout=2)
        except Exception:  # noqa: BLE001 - a connection that cannot close cleanly is dropped
            connection.terminate()


def _brief(exc: BaseException) -> str:
    # The driver's text can be long and multi-line; the log needs its class and first line.
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
