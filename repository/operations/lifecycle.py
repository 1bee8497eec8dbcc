"""Lifecycle operations: what the database holds, purging expired memories, forgetting a user, and the recent ids
that complete resource URIs. The CLI's `stats`, `purge` and `delete-user`, the server's sweeper and its
completions call these."""

from __future__ import annotations

import uuid

import anyio

from repository.clock import utcnow
from repository.database import Database
from repository.errors import InvalidInputError
from repository.lifecycle import (
    DatabaseStats,
    IdKind,
    UserFootprint,
    delete_expired_memories_sync,
    delete_user_sync,
    expired_memory_seqs_sync,
    recent_ids_sync,
    stats_sync,
    user_footprint_sync,
)
from repository.limits import BULK_MEMORIES_MAX, COMPLETION_MAX, PURGE_BATCH
from repository.models import Actor
from repository.operations.memories import Change, ChangeSink, report

__all__ = ["DatabaseStats", "Lifecycle", "UserFootprint"]


class Lifecycle:
    """The operator's view of one database, and the bounded clean-up the server runs by itself."""

    def __init__(self, database: Database, on_change: ChangeSink | None = None) -> None:
        self.database = database
        # Told of each expired memory the purge deletes, after its batch commits (live notifications).
        self.on_change = on_change

    async def stats(self) -> DatabaseStats:
        return await self.database.read(stats_sync, utcnow())

    async def purge_expired(self, *, batch: int = PURGE_BATCH, pause_s: float = 0.0) -> int:
        """Delete every memory expired by now, `batch` per write transaction; returns how many were deleted.

        Each batch is found by a read and deleted by primary key in its own short write, so the write lock is
        never held for a scan or for more than one batch; `pause_s` between batches lets other writers in. A
        batch, once started, runs to its end: cancelling the caller (a server shutting down) takes effect between
        batches, so no transaction is ever abandoned half-way.
        """
        if not 1 <= batch <= BULK_MEMORIES_MAX:
            raise InvalidInputError(f"batch must be between 1 and {BULK_MEMORIES_MAX}, got {batch}.")
        # One cut-off for the whole purge: memories that expire while it runs are left for the next one, so the
        # loop ends.
        now = utcnow()
        deleted = 0
        while True:
            with anyio.CancelScope(shield=True):
                seqs = await self.database.read(expired_memory_seqs_sync, now, batch)
                if seqs:
                    rows = await self.database.write(delete_expired_memories_sync, seqs, now)
                    deleted += len(rows)
                    for row in rows:
                        report(
                            self.on_change,
                            Change("memory", "deleted", row.id, row.agent_id, row.user_id, row.session_id),
                        )
            if len(seqs) < batch:
                return deleted
            await anyio.sleep(pause_s)

    async def footprint(self, user_key: str) -> UserFootprint:
        """What is stored for the user named `user_key` (NotFoundError if there is none)."""
        return await self.database.read(user_footprint_sync, user_key)

    async def delete_user(self, user_key: str) -> UserFootprint:
        """Delete the user named `user_key` with their sessions, messages, memories and tokens, in one transaction;
        returns what was deleted."""
        return await self.database.write(delete_user_sync, user_key)

    async def recent_ids(self, actor: Actor, kind: IdKind, prefix: str, limit: int = COMPLETION_MAX) -> list[uuid.UUID]:
        """The actor's newest memory or session ids starting with `prefix`, as its listings would show them.
        `limit` may be one more than a completion shows, to tell whether there are more."""
        if not 1 <= limit <= COMPLETION_MAX + 1:
            raise InvalidInputError(f"limit must be between 1 and {COMPLETION_MAX + 1}, got {limit}.")
        return await self.database.read(recent_ids_sync, kind, actor.user_id, actor.agent_id, prefix, limit)
