"""Driver errors into the repository's errors, in one place: `translate_errors` wraps every unit of work.

The caller gets a short sentence from `repository.errors`; the driver's text goes to the log only.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from repository.errors import ConflictError, DatabaseUnavailableError, InvalidInputError, RepositoryError

log = logging.getLogger(__name__)

# The one answer to every form of "the server is not there right now". It promises nothing about what was saved:
# a write whose COMMIT was cut off may or may not have been applied.
UNAVAILABLE = (
    "The memory database is restarting or unreachable right now, or its connection was lost: try again in a few "
    "seconds."
)
# 57P01 admin_shutdown (a fast shutdown or pg_terminate_backend), 57P02 crash_shutdown (another backend crashed),
# 57P03 cannot_connect_now (starting up, shutting down, in recovery); the whole of class 08 is connection failures.
_OUTAGE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


@contextmanager
def translate_errors() -> Iterator[None]:
    """Map driver exceptions to the repository's hierarchy. The driver text goes to the log, never to callers."""
    try:
        yield
    except RepositoryError:
        raise
    except Exception as exc:
        translated = _translated(exc)
        if translated is None:
            raise
        raise translated from exc


def _translated(exc: Exception) -> RepositoryError | None:
    """The repository error for a driver exception, or None for one that is not the database's (raised as is)."""
    if isinstance(exc, IntegrityError):
        kind = _integrity_kind(exc)
        log.info("integrity error (%s): %s", kind, exc.orig)
        if kind == "unique":
            return ConflictError("That value is already taken: choose another name or update the existing item.")
        if kind == "foreign_key":
            return InvalidInputError("A referenced item does not exist: check the ids you passed.")
        return InvalidInputError("The values break a rule of the data model: check them and try again.")
    if is_outage(exc):
        # This includes a connection lost during COMMIT, where the outcome is unknown: the server may have
        # committed before the socket closed. "Try again" is still the right advice (nothing else is known), and
        # UNAVAILABLE does not claim that nothing was saved.
        log.warning("database unavailable: %s", exc)
        return DatabaseUnavailableError(UNAVAILABLE)
    if isinstance(exc, OperationalError | PoolTimeoutError):  # SQLite's "locked" past busy_timeout, a full pool
        log.warning("database busy: %s", exc)
        return DatabaseUnavailableError("The database is busy or unreachable right now: try again in a moment.")
    if not isinstance(exc, DBAPIError):
        return None
    state = _sqlstate(exc)
    if state in {"40001", "40P01"}:  # serialization failure, deadlock: nothing was written
        log.warning("transaction rolled back by the database: %s", exc)
        return DatabaseUnavailableError("A conflicting write got in the way and nothing was saved: try again.")
    if state == "57014":  # query_canceled: statement_timeout
        log.warning("statement timeout: %s", exc)
        return DatabaseUnavailableError("The query took too long and was cancelled: narrow it and retry.")
    if state in {"22P02", "22021", "22001", "54000"}:  # bad text representation, encoding, too long
        log.info("rejected value: %s", exc)
        return InvalidInputError("A value was not accepted by the database: check its format and size.")
    return None


def is_outage(exc: Exception) -> bool:
    """Whether `exc` says the server is down, restarting or cut off, in any of the forms it reaches us in.

    Measured with asyncpg against a PostgreSQL server stopped, restarted and crashed under load
    (tests/test_pg_outage.py): a pooled connection the server closed fails its next statement, BEGIN or COMMIT
    with ConnectionDoesNotExistError (08003, caused by AdminShutdownError 57P01 or a reset socket),
    InterfaceError "connection is closed" or InternalClientError "another operation is in progress", all flagged
    `connection_invalidated`. A new connection while the server starts, stops or recovers from a crash is refused
    with CannotConnectNowError (57P03), which SQLAlchemy wraps as a plain DBAPIError NOT flagged as a disconnect:
    the internal error callers used to get. With nothing listening, asyncpg's connect raises ConnectionRefusedError
    (or ConnectionResetError) unwrapped; the pool's checkout hook lets these out unchanged when its reconnect
    fails. Since PostgreSQL 14 a crash's 57P02 arrives as a warning before the socket closes, so it shows up as
    08003; older servers send it as the error.
    """
    if isinstance(exc, OSError):  # refused, reset, unreachable, connect timeout (TimeoutError is an OSError)
        return True
    if not isinstance(exc, DBAPIError) and not type(exc).__module__.startswith("asyncpg."):
        return False  # not the driver's: raised as it is, whatever caused it
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    for cause in _causes(exc):
        if isinstance(cause, OSError):
            return True
        state = getattr(cause, "sqlstate", None)
        if isinstance(state, str) and (state in _OUTAGE_SQLSTATES or state.startswith("08")):
            return True
        # asyncpg's InterfaceError on a closed connection carries no SQLSTATE; SQLAlchemy tells it by this text too
        # (the driver's message only: SQLAlchemy's own text includes the statement and its parameters).
        is_driver_error = not isinstance(cause, DBAPIError)
        if is_driver_error and type(cause).__name__ == "InterfaceError" and "connection is closed" in str(cause):
            return True
    return False


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, the driver exception SQLAlchemy wrapped, and what caused those (a short chain; cycles are cut)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending and len(seen) < 8:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [current.__cause__, getattr(current, "orig", None)]


def _sqlstate(exc: DBAPIError) -> str | None:
    orig = exc.orig
    # asyncpg errors reach us wrapped by SQLAlchemy's adapter; the original carries the SQLSTATE.
    for candidate in (orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if code:
            return str(code)
    return None


def _integrity_kind(exc: IntegrityError) -> str:
    state = _sqlstate(exc)
    if state == "23505":
        return "unique"
    if state == "23503":
        return "foreign_key"
    if state is not None:
        return "other"
    # SQLite: classify by extended result code name, not by message text.
    orig = exc.orig
    for candidate in (orig, getattr(orig, "__cause__", None)):
        if isinstance(candidate, sqlite3.Error):
            name = getattr(candidate, "sqlite_errorname", "")
            if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
                return "unique"
            if name == "SQLITE_CONSTRAINT_FOREIGNKEY":
                return "foreign_key"
    return "other"
