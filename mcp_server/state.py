"""Long-lived server state handed to tools through the lifespan: the operations, once the database is ready.

The database opens in the background once the protocol handshake is done (hosts time slow servers out, and on two
cores any work beside the handshake slows it): a worker thread imports the data layer and the lifespan's task
group connects and checks the schema, started by the first message after the handshake or by the first
`operations()` call, whichever comes first. The data layer's modules are imported there and only there: the
surface modules refer to its heavy parts only as types, and everything they call on it is a method of the
`Operations` object that `operations()` hands out once it exists.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from mcp_server.config import Settings
from repository.errors import RepositoryError, SchemaVersionError
from repository.limits import ContentLimits
from repository.models import Actor

if TYPE_CHECKING:
    from mcp_server.bus import ChangeBus
    from repository.operations import Operations
    from repository.runtime import Bounds

log = logging.getLogger(__name__)


class DatabaseOpenError(Exception):
    """The database could not be opened; the cause is in the server log."""

    def __str__(self) -> str:
        return "The memory database could not be opened: check AGENT_MEMORY_DATABASE_URL and the server's log (stderr)."


class _Attempt:
    """One try at opening the database; waiters keep a reference, so a retry never changes what they see."""

    def __init__(self) -> None:
        self.started = False
        self.done = anyio.Event()
        self.operations: Operations | None = None
        self.failure: BaseException | None = None


class AppState:
    """The settings and the operations of one running server (or one CLI command)."""

    def __init__(self, settings: Settings, bounds: Bounds | None = None, *, authenticated: bool = False) -> None:
        self.settings = settings
        # True on an HTTP server: every request carries a verified credential (mcp_server.auth), and a request
        # without one is refused rather than acting for the configured user.
        self.authenticated = authenticated
        self.bounds = bounds
        self._attempt = _Attempt()
        self._tasks: anyio.abc.TaskGroup | None = None
        # Where the operations report committed changes (live notifications); set by the server's lifespan.
        self.bus: ChangeBus | None = None

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
            operations_class = await anyio.to_thread.run_sync(_load_operations)
            s = self.settings
            attempt.operations = await operations_class.open(
                s.resolved_database_url(),
                options=s.engine_options(),
                bounds=self.bounds,
                limits=ContentLimits(s.max_content_bytes, s.listing_preview_chars),
                auto_migrate=s.auto_migrate,
                on_change=self.bus.report if self.bus is not None else None,
            )
            log.info("database ready (%s)", attempt.operations.database.dialect)
        except anyio.get_cancelled_exc_class():
            # The server stopped before the database was ready: nothing to report.
            attempt.failure = DatabaseOpenError()
            raise
        except Exception as exc:  # noqa: BLE001 - kept and reported to every tool call, never raised here
            attempt.failure = exc
            log.error("database could not be opened: %s", exc)
        finally:
            attempt.done.set()

    async def operations(self) -> Operations:
        """The operations, once the database is open; the open's failure otherwise (retried on the next call)."""
        self.start_opening()
        attempt = self._attempt
        await attempt.done.wait()
        if attempt.operations is not None:
            return attempt.operations
        if not isinstance(attempt.failure, SchemaVersionError) and self._attempt is attempt:
            # Unreachable or unwritable now is not unreachable forever (a database restarting, a disk filling
            # up): the next call tries again instead of the server staying broken until it is restarted.
            self._attempt = _Attempt()
        if isinstance(attempt.failure, RepositoryError):
            raise attempt.failure
        raise DatabaseOpenError() from attempt.failure

    async def open_now(self) -> Operations:
        """Open the database in the calling task: for one-shot commands that run without a server lifespan."""
        attempt = self._attempt
        if not attempt.started:
            attempt.started = True
            await self._open(attempt)
        return await self.operations()

    async def acting(self, user_key: str, agent_key: str, *, read_only: bool = False) -> tuple[Operations, Actor]:
        """The operations and the (user, agent) behind these names, created on first use."""
        operations = await self.operations()
        return operations, await operations.identity.actor(user_key, agent_key, read_only=read_only)

    async def close(self) -> None:
        if self._attempt.operations is not None:
            await self._attempt.operations.close()


class StateSlot:
    """Where the running server's state is found by the parts built before it exists (the token verifier, static
    resources): set for the lifespan of the server, empty before and after."""

    def __init__(self) -> None:
        self.state: AppState | None = None

    def get(self) -> AppState:
        if self.state is None:
            raise DatabaseOpenError()
        return self.state


def _load_operations() -> type[Operations]:
    # Runs in a worker thread: the heavy imports (SQLAlchemy, both drivers, the data layer) overlap with the
    # protocol handshake instead of delaying it. The only import of the data layer's heavy modules in the surface.
    import sqlalchemy.dialects.postgresql.asyncpg  # noqa: PLC0415
    import sqlalchemy.dialects.sqlite.aiosqlite  # noqa: F401, PLC0415

    from repository.operations import Operations  # noqa: PLC0415

    return Operations
