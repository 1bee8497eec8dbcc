"""One implementation, two calling conventions: repository code is written against a synchronous `Session`.

Why: on SQLite every statement through aiosqlite is a hand-off to its worker thread, and a write or a search makes
several, so the hand-offs cost more than SQLite itself. Written synchronously, a whole unit of work can run in one
worker-thread hop (`Database.read` / `Database.write`); the async API that takes an `AsyncSession` is the same code
run through `AsyncSession.run_sync`, which on PostgreSQL drives asyncpg without any thread.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

P = ParamSpec("P")
R = TypeVar("R")


def in_async_session(fn: Callable[Concatenate[Session, P], R]) -> Callable[Concatenate[AsyncSession, P], Awaitable[R]]:
    """The async form of a synchronous repository function: same arguments, an `AsyncSession` first."""

    async def run(session: AsyncSession, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await session.run_sync(fn, *args, **kwargs)

    functools.update_wrapper(run, fn)
    run.__name__ = fn.__name__.removesuffix("_sync")
    run.__qualname__ = run.__name__
    return run
