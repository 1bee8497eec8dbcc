"""Memory tools: store, search, get, list, delete named and scoped facts.

Each tool parses and describes its arguments, calls one operation (repository.operations.memories) and shapes
the result; the rules live in the operation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import Field

from mcp_server.errors import tool_errors
from mcp_server.identity import Ctx, acting
from mcp_server.schemas import (
    DeletedMemory,
    MemoryHitOut,
    MemoryList,
    MemoryOut,
    SearchMemoriesResult,
    StorableTime,
    StoredMemory,
    memory_link,
    with_links,
)
from mcp_server.state import AppState
from repository.checks import parse_id
from repository.limits import MEMORY_PAGE_MAX, SEARCH_RESULTS_MAX
from repository.models import ReadMode
from repository.partial import KEEP
from repository.scopes import Scope, WritableScope

MEMORY_ID_HINT = "pass the id returned by store_memory, search_memories or list_memories."
SESSION_ID_HINT = "pass the id returned by create_session."
READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
STORE = ToolAnnotations(
    title="Store a memory", read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
DELETE = ToolAnnotations(
    title="Delete a memory", read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)


def _or_keep(value: Any) -> Any:
    # A tool argument left out arrives as None: on an update that keeps the stored value.
    return KEEP if value is None else value


@tool_errors
async def store_memory(
    content: Annotated[str, Field(description="The fact to remember, in plain language.")],
    ctx: Ctx,
    name: Annotated[
        str | None,
        Field(description="Optional key. Storing again under the same name (and scope) updates that memory."),
    ] = None,
    scope: Annotated[
        WritableScope | None,
        Field(
            description="Who may read it: 'user' (default: this user with this agent), 'agent' (every user of "
            "this agent), 'session' (only within session_id). Omitted with a session_id means 'session'."
        ),
    ] = None,
    session_id: Annotated[str | None, Field(description="The session for scope='session'.")] = None,
    description: Annotated[str | None, Field(description="Optional note on what this memory is for.")] = None,
    metadata: Annotated[dict[str, Any] | None, Field(description="Optional JSON object kept with it.")] = None,
    read_mode: Annotated[
        ReadMode | None,
        Field(
            description="'tool' (default for new memories) or 'system_prompt': such memories fill {{name}} "
            "placeholders of the agent's system prompt. Omitted on an update, the stored mode is kept."
        ),
    ] = None,
    expires_at: Annotated[
        StorableTime, Field(description="Optional ISO 8601 time after which the memory is ignored.")
    ] = None,
) -> Annotated[CallToolResult, StoredMemory]:
    """Remember a fact for later conversations (a preference, a decision, a detail about the user).

    Use it whenever you learn something worth keeping. With `name`, it is an upsert: the memory of that name in the
    same scope is updated and keeps its id. Without `name`, storing the same content twice returns the existing
    memory instead of a duplicate. The result says which scope was written and whether the memory was created,
    updated or unchanged.

    Example: store_memory(content="Prefers answers in French", name="language")
    """
    ops, actor = await acting(ctx)
    written = await ops.memories.remember(
        actor,
        content,
        name=name,
        scope=scope,
        session_id=parse_id(session_id, "session_id", SESSION_ID_HINT) if session_id else None,
        description=_or_keep(description),
        metadata=_or_keep(metadata),
        read_mode=_or_keep(read_mode),
        expires_at=_or_keep(expires_at),
    )
    stored = StoredMemory(**MemoryOut.of(written.memory).model_dump(), outcome=written.outcome)
    return with_links(stored, [memory_link(stored.id, stored.name)])


@tool_errors
async def search_memories(
    query: Annotated[str, Field(description="What you want to know, in plain words or as a question.")],
    ctx: Ctx,
    limit: Annotated[int, Field(ge=1, le=SEARCH_RESULTS_MAX, description="How many results at most.")] = 10,
    session_id: Annotated[str | None, Field(description="Narrow session-scoped memories to this session.")] = None,
    scopes: Annotated[
        list[Scope] | None,
        Field(description="Scopes to search; default all you can see: session, user, agent, global."),
    ] = None,
    metadata: Annotated[
        dict[str, str | int | float | bool] | None,
        Field(description="Only memories whose metadata has these exact key/value pairs."),
    ] = None,
    created_after: Annotated[datetime | None, Field(description="Only memories created at or after this.")] = None,
    created_before: Annotated[datetime | None, Field(description="Only memories created before this.")] = None,
) -> Annotated[CallToolResult, SearchMemoriesResult]:
    """Find stored memories relevant to a question, best match first.

    Use it before answering anything that may depend on what you were told earlier. Ask naturally; no search
    syntax is needed and none is interpreted (quotes, *, -, : are treated as plain text). Codes, versions, emails
    and URLs match whole or by part; Chinese and Japanese match by a word. Memories stored on a date the question
    names ("in May 2023") rank higher.

    Example: search_memories(query="What is the user's favourite colour?")
    """
    ops, actor = await acting(ctx)
    found = await ops.memories.recall(
        actor,
        query,
        limit=limit,
        scopes=scopes,
        session_id=parse_id(session_id, "session_id", SESSION_ID_HINT) if session_id else None,
        metadata=metadata,
        created_after=created_after,
        created_before=created_before,
    )
    preview = ops.limits.preview_chars
    result = SearchMemoriesResult(
        results=[MemoryHitOut.of(hit.memory, preview, round(hit.score, 6), hit.snippet) for hit in found.hits],
        scopes_searched=list(found.scopes),
        query_terms=found.terms,
    )
    return with_links(result, [memory_link(hit.id, hit.name) for hit in result.results])


@tool_errors
async def get_memory(
    memory_id: Annotated[str, Field(description="The memory's id.")], ctx: Ctx
) -> Annotated[CallToolResult, MemoryOut]:
    """Read one memory in full (search and list results cut long contents and flag them as truncated).

    Example: get_memory(memory_id="3f1c...")
    """
    ops, actor = await acting(ctx)
    memory = MemoryOut.of(await ops.memories.get(actor, parse_id(memory_id, "memory_id", MEMORY_ID_HINT)))
    return with_links(memory, [memory_link(memory.id, memory.name)])


@tool_errors
async def list_memories(
    ctx: Ctx,
    limit: Annotated[int, Field(ge=1, le=MEMORY_PAGE_MAX, description="Page size.")] = 20,
    cursor: Annotated[str | None, Field(description="next_cursor from the previous page.")] = None,
    scope: Annotated[Scope | None, Field(description="Only this scope.")] = None,
    session_id: Annotated[str | None, Field(description="Only memories of this session.")] = None,
    name: Annotated[str | None, Field(description="Only the memory with exactly this name.")] = None,
    read_mode: Annotated[ReadMode | None, Field(description="Only this read mode.")] = None,
) -> Annotated[CallToolResult, MemoryList]:
    """List the memories you can see, newest first, a page at a time.

    Use it to review what is stored; use search_memories to find something specific.

    Example: list_memories(limit=20) then list_memories(cursor=<next_cursor>)
    """
    ops, actor = await acting(ctx)
    page = await ops.memories.list(
        actor,
        limit=limit,
        cursor=cursor,
        scope=scope,
        session_id=parse_id(session_id, "session_id", SESSION_ID_HINT) if session_id else None,
        name=name,
        read_mode=read_mode,
    )
    listing = MemoryList(
        memories=[MemoryOut.of(m, ops.limits.preview_chars) for m in page.items],
        total=page.total,
        total_capped=page.total_capped,
        next_cursor=page.next_cursor,
    )
    return with_links(listing, [memory_link(m.id, m.name) for m in listing.memories])


@tool_errors
async def delete_memory(
    memory_id: Annotated[str, Field(description="The id of the memory to forget.")], ctx: Ctx
) -> DeletedMemory:
    """Forget a memory for good (for example when the user asks you to, or it is wrong).

    Read-only memories cannot be deleted by an agent.

    Example: delete_memory(memory_id="3f1c...")
    """
    ops, actor = await acting(ctx)
    memory = await ops.memories.forget(actor, parse_id(memory_id, "memory_id", MEMORY_ID_HINT))
    return DeletedMemory(id=str(memory.id), deleted=True, name=memory.name)


def register(server: MCPServer[AppState]) -> None:
    server.add_tool(store_memory, annotations=STORE)
    server.add_tool(search_memories, annotations=READ.model_copy(update={"title": "Search memories"}))
    server.add_tool(get_memory, annotations=READ.model_copy(update={"title": "Get a memory"}))
    server.add_tool(list_memories, annotations=READ.model_copy(update={"title": "List memories"}))
    server.add_tool(delete_memory, annotations=DELETE)
