"""The domain operations: one home for the rules every surface (MCP tools, resources, prompt, CLI, importer, and
Python callers) shares.

    ops = await Operations.open("sqlite+aiosqlite:///memory.db")
    ada = await ops.identity.actor("ada@example.com", "helper")
    await ops.memories.remember(ada, "Prefers tea", name="drink")
    found = await ops.memories.recall(ada, "What does Ada drink?")
    await ops.close()

Every operation takes the acting `Actor` explicitly and runs in one unit of work of the `Database` (one worker-
thread hop on SQLite). Failures are `RepositoryError`s with short sentences a person or a model can act on.
"""

from __future__ import annotations

from repository.connection import EngineOptions
from repository.database import Database
from repository.db_errors import translate_errors
from repository.limits import ContentLimits
from repository.migrate import ensure_schema
from repository.operations.conversations import ConversationOperations
from repository.operations.credentials import Credentials
from repository.operations.identity import Identities
from repository.operations.lifecycle import Lifecycle
from repository.operations.memories import Change, ChangeSink, MemoryOperations
from repository.operations.transfer import TransferOperations
from repository.runtime import Bounds

__all__ = [
    "Change",
    "ChangeSink",
    "ConversationOperations",
    "Credentials",
    "Identities",
    "MemoryOperations",
    "Operations",
]


class Operations:
    """The operations of one database: memories, conversations, identity and credentials."""

    def __init__(
        self, database: Database, limits: ContentLimits | None = None, *, on_change: ChangeSink | None = None
    ) -> None:
        """`on_change` is told of every committed change to memories, sessions and messages (a `Change`: kind,
        id, owner columns), after its unit of work commits; the server turns these into notifications."""
        self.database = database
        self.limits = limits or ContentLimits()
        self.memories = MemoryOperations(database, self.limits, on_change)
        self.conversations = ConversationOperations(database, self.limits, on_change)
        self.identity = Identities(database)
        self.credentials = Credentials(database)
        self.transfer = TransferOperations(database, self.limits)
        self.lifecycle = Lifecycle(database, on_change)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        options: EngineOptions | None = None,
        bounds: Bounds | None = None,
        limits: ContentLimits | None = None,
        auto_migrate: bool = True,
        on_change: ChangeSink | None = None,
    ) -> Operations:
        """Connect and bring the schema up to date (or refuse, see `ensure_schema`); `close()` it when done."""
        database = Database(url, options, bounds)
        try:
            # An outage while opening is "unavailable, try again" like any other call's, not a failed open.
            with translate_errors():
                await ensure_schema(database.engine, auto_migrate=auto_migrate)
        except BaseException:
            await database.dispose()
            raise
        return cls(database, limits, on_change=on_change)

    async def close(self) -> None:
        await self.database.dispose()
