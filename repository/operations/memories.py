"""Memory operations: remember, recall, get, list, forget, import, and the agent's prompt, for an acting identity."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from repository.checks import check_aware, check_json_size, check_size, check_writable
from repository.database import Database
from repository.errors import InvalidInputError, NotFoundError
from repository.limits import BULK_MEMORIES_MAX, MEMORY_PAGE_MAX, SEARCH_RESULTS_MAX, ContentLimits
from repository.memories import (
    bulk_insert_memories_sync,
    delete_memory_sync,
    get_memory_sync,
    list_memories_sync,
    update_memory_sync,
    upsert_memory_sync,
)
from repository.models import Actor, Memory, MemoryCreate, MemoryRecord, MemoryUpdate, MemoryWrite, ReadMode
from repository.operations.prompt import prompt_inputs_sync, render_prompt
from repository.operations.results import FoundMemory, MemoryListing, MemorySearch
from repository.paging import check_window, next_offset_cursor, offset_from_cursor
from repository.partial import KEEP, Patch, given
from repository.scopes import ALL_SCOPES, Scope, WritableScope, owner_columns, write_scope
from repository.search import MemoryFilters, search_memories_sync
from repository.search.snippets import snippet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    """One committed change, for the publisher given to `Operations` (live notifications): what changed and the
    owner columns that decide who may read it. kind 'memory': `id` is the memory (None for an import batch, which
    only changes the set); 'session': a new session; 'messages': messages appended to session `id`."""

    kind: Literal["memory", "session", "messages"]
    action: Literal["created", "updated", "deleted", "appended"]
    id: uuid.UUID | None
    agent_id: uuid.UUID | None
    user_id: uuid.UUID | None
    session_id: uuid.UUID | None = None


ChangeSink = Callable[[Change], None]


def report(sink: ChangeSink | None, change: Change) -> None:
    """Tell the publisher about a change whose unit of work has committed. The write is saved whatever happens
    here, so a failing publisher is logged and never turns a saved write into an error for the caller."""
    if sink is None:
        return
    try:
        sink(change)
    except Exception:  # the caller's write is saved: a lost notification is only logged
        log.exception("change publisher failed for %s %s", change.kind, change.id)


def _memory_change(memory: Memory, action: Literal["created", "updated", "deleted"]) -> Change:
    return Change("memory", action, memory.id, memory.agent_id, memory.user_id, memory.session_id)


class MemoryOperations:
    """The rules of memories, once for every surface: sizes, scopes, partial updates, visibility, limits."""

    def __init__(self, database: Database, limits: ContentLimits, on_change: ChangeSink | None = None) -> None:
        self.database = database
        self.limits = limits
        # Called after each write commits (never inside the unit of work: a rolled-back write must not be told).
        self.on_change = on_change

    async def remember(
        self,
        actor: Actor,
        content: str,
        *,
        name: str | None = None,
        scope: WritableScope | None = None,
        session_id: uuid.UUID | None = None,
        description: Patch[str | None] = KEEP,
        metadata: Patch[dict[str, Any]] = KEEP,
        read_mode: Patch[ReadMode] = KEEP,
        expires_at: Patch[datetime | None] = KEEP,
    ) -> MemoryWrite:
        """Store a fact in `scope` ('user' by default; 'session' when only session_id is given).

        With a name it is an upsert: the memory of that name in the scope is updated, and of the optional fields
        only those not KEEP replace the stored values (a new memory takes the defaults for the others).
        """
        check_writable(actor)
        limit = self.limits.max_content_bytes
        check_size("content", content, limit)
        if description is not KEEP:
            check_size("description", description, limit)
        if metadata is not KEEP:
            check_json_size("metadata", metadata, limit)
        if not content.strip():
            raise InvalidInputError("content is empty: pass the text of the fact to remember.")
        if expires_at is not KEEP:
            check_aware("expires_at", expires_at, "2030-01-01T00:00:00Z")
        owner = owner_columns(write_scope(scope, session_id), actor, session_id)
        changes = given(description=description, metadata=metadata, read_mode=read_mode, expires_at=expires_at)
        data = MemoryCreate(content=content, name=name, **owner.model_dump(), **changes)  # type: ignore[arg-type]
        written = await self.database.write(upsert_memory_sync, data, replace=frozenset(changes))
        if written.outcome != "unchanged":
            report(self.on_change, _memory_change(written.memory, written.outcome))
        return written

    async def recall(
        self,
        actor: Actor,
        query: str,
        *,
        limit: int = 10,
        scopes: Sequence[Scope] | None = None,
        session_id: uuid.UUID | None = None,
        metadata: dict[str, str | int | float | bool] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> MemorySearch:
        """Memories the actor may see that match `query`, best first, with the scopes searched and the terms used."""
        check_size("query", query, self.limits.max_content_bytes)
        check_window(limit, maximum=SEARCH_RESULTS_MAX)
        # SQLite's JSON paths cannot express these characters; refuse rather than silently match nothing.
        if metadata and any(not key or '"' in key or "\\" in key for key in metadata):
            raise InvalidInputError("metadata filter keys must be non-empty and free of quotes and backslashes.")
        wanted: tuple[Scope, ...] = tuple(dict.fromkeys(scopes)) if scopes else ALL_SCOPES
        filters = MemoryFilters(
            scopes=frozenset(wanted),
            session_id=session_id,
            metadata=metadata,
            created_after=created_after,
            created_before=created_before,
        )
        hits = await self.database.read(
            search_memories_sync, query, user_id=actor.user_id, agent_id=actor.agent_id, filters=filters, limit=limit
        )
        analyzer = self.database.runtime.analyzer
        terms = analyzer.query_terms(query)
        found = [FoundMemory(h.memory, h.score, snippet(analyzer, h.memory.content, terms)) for h in hits]
        return MemorySearch(hits=found, terms=terms, scopes=wanted)

    async def get(self, actor: Actor, memory_id: uuid.UUID) -> Memory:
        return await self.database.read(get_memory_sync, memory_id, user_id=actor.user_id, agent_id=actor.agent_id)

    async def list(
        self,
        actor: Actor,
        *,
        limit: int = 20,
        cursor: str | None = None,
        scope: Scope | None = None,
        session_id: uuid.UUID | None = None,
        name: str | None = None,
        read_mode: ReadMode | None = None,
    ) -> MemoryListing:
        """The memories the actor may see, newest first, a page at a time (`cursor` from the previous page)."""
        check_window(limit, maximum=MEMORY_PAGE_MAX)
        page = await self.database.read(
            list_memories_sync,
            visible_to_pair=(actor.user_id, actor.agent_id),
            session_id=session_id,
            read_mode=read_mode,
            name=name,
            scope_kind=scope,
            limit=limit,
            offset=offset_from_cursor(cursor, "memories"),
        )
        return MemoryListing(page.items, page.total, page.total_capped, next_offset_cursor("memories", page))

    async def forget(self, actor: Actor, memory_id: uuid.UUID) -> Memory:
        """Delete a memory the actor may see; read-only memories stay (an agent cannot delete them)."""
        check_writable(actor)
        deleted = await self.database.write(
            delete_memory_sync, memory_id, user_id=actor.user_id, agent_id=actor.agent_id, allow_read_only=False
        )
        report(self.on_change, _memory_change(deleted, "deleted"))
        return deleted

    async def revise(
        self,
        actor: Actor,
        memory_id: uuid.UUID,
        *,
        content: Patch[str] = KEEP,
        name: Patch[str | None] = KEEP,
        expires_at: Patch[datetime | None] = KEEP,
    ) -> Memory:
        """Change a memory by id (what a person correcting it does): the rules of `forget` apply, a writable
        credential, a memory the actor may see, never a read-only memory. `name=None` removes the name."""
        check_writable(actor)
        if content is not KEEP:
            if not content.strip():
                raise InvalidInputError("content is empty: write the fact to remember, or delete the memory.")
            check_size("content", content, self.limits.max_content_bytes)
        if expires_at is not KEEP:
            check_aware("expires_at", expires_at, "2030-01-01T00:00:00Z")
        if name is not KEEP:
            name = (name or "").strip() or None
        changes = given(content=content, name=name, expires_at=expires_at)
        if not changes:
            raise InvalidInputError("Nothing to change: give content, name or expires_at.")
        try:
            revised = await self.database.write(
                update_memory_sync,
                memory_id,
                MemoryUpdate.model_validate(changes),
                user_id=actor.user_id,
                agent_id=actor.agent_id,
                allow_read_only=False,
            )
        except NotFoundError:
            # The sentence get and forget give: the same for another user's id as for one that never existed.
            raise NotFoundError(f"No memory with id {memory_id}.") from None
        report(self.on_change, _memory_change(revised, "updated"))
        return revised

    async def import_records(self, actor: Actor, records: Sequence[MemoryRecord]) -> int:
        """Insert a batch of imported memories in one transaction; already stored ones are skipped. Returns how
        many were inserted."""
        check_writable(actor)
        if len(records) > BULK_MEMORIES_MAX:
            raise InvalidInputError(f"At most {BULK_MEMORIES_MAX} memories per import batch, got {len(records)}.")
        items = []
        for record in records:
            check_size("content", record.content, self.limits.max_content_bytes)
            owner = owner_columns(record.scope, actor)
            fields = record.model_dump(exclude={"scope"})
            items.append(MemoryCreate(**fields, **owner.model_dump()))
        inserted = await self.database.write(bulk_insert_memories_sync, items)
        if inserted:
            # The batch's ids are not returned: tell each owner scope that its set of memories changed.
            for agent_id, user_id in {(item.agent_id, item.user_id) for item in items}:
                report(self.on_change, Change("memory", "created", None, agent_id, user_id))
        return inserted

    async def agent_prompt(self, actor: Actor) -> str:
        """The acting agent's system prompt, its placeholders filled from the system_prompt memories it may see."""
        agent, memories = await self.database.read(prompt_inputs_sync, actor)
        return render_prompt(agent, memories)
