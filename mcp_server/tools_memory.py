"""Memory tools: store, search, get, list, delete named and scoped facts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from mcp_server.errors import check_json_size, check_size, tool_errors
from mcp_server.identity import acting, parse_id
from mcp_server.schemas import (
    DeletedMemory,
    MemoryHitOut,
    MemoryList,
    MemoryOut,
    SearchMemoriesResult,
    StoredMemory,
)
from mcp_server.snippets import snippet

MAX_SEARCH_LIMIT = 50
MAX_LIST_LIMIT = 100
ALL_SCOPES = ("session", "user", "agent", "global")
_MEMORY_ID_HINT = "pass the id returned by store_memory, search_memories or list_memories."

READ = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)


def register(server: MCPServer[Any]) -> None:
    @server.tool(
        annotations=ToolAnnotations(
            title="Store a memory", readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=False
        )
    )
    @tool_errors
    async def store_memory(
        content: Annotated[str, Field(description="The fact to remember, in plain language.")],
        ctx: Context,
        name: Annotated[
            str | None,
            Field(description="Optional key. Storing again under the same name (and scope) updates that memory."),
        ] = None,
        scope: Annotated[
            Literal["user", "agent", "session"] | None,
            Field(
                description="Who may read it: 'user' (default: this user with this agent), 'agent' (every user of "
                "this agent), 'session' (only within session_id). Omitted with a session_id means 'session'."
            ),
        ] = None,
        session_id: Annotated[str | None, Field(description="The session for scope='session'.")] = None,
        description: Annotated[str | None, Field(description="Optional note on what this memory is for.")] = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="Optional JSON object kept with it.")] = None,
        read_mode: Annotated[
            Literal["tool", "system_prompt"] | None,
            Field(
                description="'tool' (default for new memories) or 'system_prompt': such memories fill {{name}} "
                "placeholders of the agent's system prompt. Omitted on an update, the stored mode is kept."
            ),
        ] = None,
        expires_at: Annotated[
            datetime | None, Field(description="Optional ISO 8601 time after which the memory is ignored.")
        ] = None,
    ) -> StoredMemory:
        """Remember a fact for later conversations (a preference, a decision, a detail about the user).

        Use it whenever you learn something worth keeping. With `name`, it is an upsert: the memory of that name in
        the same scope is updated and keeps its id. Without `name`, storing the same content twice returns the
        existing memory instead of a duplicate. The result says which scope was written and whether the memory was
        created, updated or unchanged.

        Example: store_memory(content="Prefers answers in French", name="language")
        """
        state, actor = await acting(ctx)
        from repository.memories import upsert_memory_sync
        from repository.models import MemoryCreate

        limit = state.settings.max_content_bytes
        check_size("content", content, limit)
        check_size("description", description, limit)
        check_json_size("metadata", metadata, limit)
        if not content.strip():
            raise ToolError("content is empty: pass the text of the fact to remember.")
        if expires_at is not None and expires_at.tzinfo is None:
            raise ToolError("expires_at needs a time zone, e.g. 2030-01-01T00:00:00Z.")
        chosen = scope or ("session" if session_id else "user")
        if chosen == "session" and not session_id:
            raise ToolError("scope 'session' needs session_id: pass the id returned by create_session.")
        if chosen != "session" and session_id:
            raise ToolError(f"session_id only applies to scope 'session', not {chosen!r}: drop one of them.")
        fields: dict[str, Any] = {
            "content": content,
            "name": name,
            "agent_id": actor.agent_id,
            "user_id": None if chosen == "agent" else actor.user_id,
            "session_id": parse_id(session_id, "session_id", "pass the id returned by create_session.")
            if session_id
            else None,
        }
        # Only what the caller gave replaces stored values on an update.
        given = (
            ("description", description),
            ("metadata", metadata),
            ("expires_at", expires_at),
            ("read_mode", read_mode),
        )
        for key, value in given:
            if value is not None:
                fields[key] = value
        written = await state.write(upsert_memory_sync, MemoryCreate(**fields))
        return StoredMemory(**MemoryOut.of(written.memory).model_dump(), outcome=written.outcome)

    @server.tool(annotations=READ.model_copy(update={"title": "Search memories"}))
    @tool_errors
    async def search_memories(
        query: Annotated[str, Field(description="What you want to know, in plain words or as a question.")],
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=MAX_SEARCH_LIMIT, description="How many results at most.")] = 10,
        session_id: Annotated[str | None, Field(description="Narrow session-scoped memories to this session.")] = None,
        scopes: Annotated[
            list[Literal["session", "user", "agent", "global"]] | None,
            Field(description="Scopes to search; default all you can see: session, user, agent, global."),
        ] = None,
        metadata: Annotated[
            dict[str, str | int | float | bool] | None,
            Field(description="Only memories whose metadata has these exact key/value pairs."),
        ] = None,
        created_after: Annotated[datetime | None, Field(description="Only memories created at or after this.")] = None,
        created_before: Annotated[datetime | None, Field(description="Only memories created before this.")] = None,
    ) -> SearchMemoriesResult:
        """Find stored memories relevant to a question, best match first.

        Use it before answering anything that may depend on what you were told earlier. Ask naturally; no search
        syntax is needed and none is interpreted (quotes, *, -, : are treated as plain text). Memories stored on a
        date the question names ("in May 2023") rank higher.

        Example: search_memories(query="What is the user's favourite colour?")
        """
        state, actor = await acting(ctx)
        from repository.search import MemoryFilters, search_memories_sync
        from repository.textsearch import query_terms

        check_size("query", query, state.settings.max_content_bytes)
        # SQLite's JSON paths cannot express these characters; refuse rather than silently match nothing.
        if metadata and any(not key or '"' in key or "\\" in key for key in metadata):
            raise ToolError("metadata filter keys must be non-empty and free of quotes and backslashes.")
        wanted = tuple(dict.fromkeys(scopes)) if scopes else ALL_SCOPES
        filters = MemoryFilters(
            scopes=frozenset(wanted),
            session_id=parse_id(session_id, "session_id", "pass the id returned by create_session.")
            if session_id
            else None,
            metadata=metadata,
            created_after=created_after,
            created_before=created_before,
        )
        terms = query_terms(query)
        hits = await state.read(
            search_memories_sync, query, user_id=actor.user_id, agent_id=actor.agent_id, filters=filters, limit=limit
        )
        preview = state.settings.listing_preview_chars
        return SearchMemoriesResult(
            results=[
                MemoryHitOut.of(hit.memory, preview, round(hit.score, 6), snippet(hit.memory.content, terms))
                for hit in hits
            ],
            scopes_searched=list(wanted),
            query_terms=terms,
        )

    @server.tool(annotations=READ.model_copy(update={"title": "Get a memory"}))
    @tool_errors
    async def get_memory(memory_id: Annotated[str, Field(description="The memory's id.")], ctx: Context) -> MemoryOut:
        """Read one memory in full (search and list results cut long contents and flag them as truncated).

        Example: get_memory(memory_id="3f1c...")
        """
        state, actor = await acting(ctx)
        from repository.memories import get_memory_sync

        memory_uuid = parse_id(memory_id, "memory_id", _MEMORY_ID_HINT)
        memory = await state.read(get_memory_sync, memory_uuid, user_id=actor.user_id, agent_id=actor.agent_id)
        return MemoryOut.of(memory)

    @server.tool(annotations=READ.model_copy(update={"title": "List memories"}))
    @tool_errors
    async def list_memories(
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=MAX_LIST_LIMIT, description="Page size.")] = 20,
        cursor: Annotated[str | None, Field(description="next_cursor from the previous page.")] = None,
        scope: Annotated[
            Literal["user", "agent", "session", "global"] | None, Field(description="Only this scope.")
        ] = None,
        session_id: Annotated[str | None, Field(description="Only memories of this session.")] = None,
        name: Annotated[str | None, Field(description="Only the memory with exactly this name.")] = None,
        read_mode: Annotated[Literal["tool", "system_prompt"] | None, Field(description="Only this read mode.")] = None,
    ) -> MemoryList:
        """List the memories you can see, newest first, a page at a time.

        Use it to review what is stored; use search_memories to find something specific.

        Example: list_memories(limit=20) then list_memories(cursor=<next_cursor>)
        """
        state, actor = await acting(ctx)
        from repository._paging import next_offset_cursor, offset_from_cursor
        from repository.memories import list_memories_sync

        offset = offset_from_cursor(cursor, "memories")
        filters: dict[str, Any] = {
            "visible_to_pair": (actor.user_id, actor.agent_id),
            "read_mode": read_mode,
            "name": name,
            "scope_kind": scope,
        }
        if session_id:
            filters["session_id"] = parse_id(session_id, "session_id", "pass the id returned by create_session.")
        page = await state.read(list_memories_sync, **filters, limit=limit, offset=offset)
        items = [MemoryOut.of(m, state.settings.listing_preview_chars) for m in page.items]
        return MemoryList(
            memories=items,
            total=page.total,
            total_capped=page.total_capped,
            next_cursor=next_offset_cursor("memories", page),
        )

    @server.tool(
        annotations=ToolAnnotations(
            title="Delete a memory", readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False
        )
    )
    @tool_errors
    async def delete_memory(
        memory_id: Annotated[str, Field(description="The id of the memory to forget.")], ctx: Context
    ) -> DeletedMemory:
        """Forget a memory for good (for example when the user asks you to, or it is wrong).

        Read-only memories cannot be deleted by an agent.

        Example: delete_memory(memory_id="3f1c...")
        """
        state, actor = await acting(ctx)
        from repository.memories import delete_memory_sync

        memory_uuid = parse_id(memory_id, "memory_id", _MEMORY_ID_HINT)
        memory = await state.write(
            delete_memory_sync, memory_uuid, user_id=actor.user_id, agent_id=actor.agent_id, allow_read_only=False
        )
        return DeletedMemory(id=str(memory.id), deleted=True, name=memory.name)
