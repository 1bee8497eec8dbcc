"""Conversation tools: sessions, messages, history pages and recall across past conversations.

Each tool parses and describes its arguments, calls one operation (repository.operations.conversations) and
shapes the result; the rules live in the operation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import Field

from mcp_server.errors import tool_errors
from mcp_server.identity import Ctx, acting
from mcp_server.schemas import (
    HistoryResult,
    MessageBatch,
    MessageHitOut,
    MessageOut,
    SearchHistoryResult,
    SessionList,
    SessionOut,
    StorableTime,
    session_link,
    with_links,
)
from mcp_server.state import AppState
from repository.checks import parse_id
from repository.limits import APPEND_BATCH_MAX, HISTORY_PAGE_MAX, SEARCH_RESULTS_MAX, SESSION_PAGE_MAX
from repository.models import NewMessage, Role

SESSION_ID_HINT = "pass the id returned by create_session or list_sessions."
READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
APPEND = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
CREATED_AT_HELP = NewMessage.model_fields["created_at"].description


class MessageIn(NewMessage):
    """One message for add_messages."""

    created_at: StorableTime = Field(default=None, description=CREATED_AT_HELP)


@tool_errors
async def create_session(
    ctx: Ctx,
    name: Annotated[str | None, Field(description="A short title for the conversation.")] = None,
    platform: Annotated[str | None, Field(description="Where it happens, e.g. 'slack', 'cli'.")] = None,
    metadata: Annotated[dict[str, Any] | None, Field(description="Optional JSON object kept with it.")] = None,
) -> Annotated[CallToolResult, SessionOut]:
    """Start a new conversation session; its `id` is what add_message and get_session_history take.

    Example: create_session(name="Trip planning")
    """
    ops, actor = await acting(ctx)
    chat = SessionOut.of(await ops.conversations.start_session(actor, name=name, platform=platform, metadata=metadata))
    return with_links(chat, [session_link(chat.id, chat.name)])


async def _append(ctx: Ctx, session_id: str, items: list[MessageIn]) -> list[MessageOut]:
    ops, actor = await acting(ctx)
    written = await ops.conversations.append(actor, parse_id(session_id, "session_id", SESSION_ID_HINT), items)
    return [MessageOut.of(m) for m in written]


@tool_errors
async def add_message(
    session_id: Annotated[str, Field(description="The session to append to.")],
    role: Annotated[Role, Field(description="Who spoke: user, assistant, system or tool.")],
    ctx: Ctx,
    text_content: Annotated[str | None, Field(description="The message text.")] = None,
    name: Annotated[
        str | None, Field(max_length=200, description="Speaker's display name, e.g. in a group chat.")
    ] = None,
    tool_calls: Annotated[Any | None, Field(description="Tool calls the assistant made (JSON).")] = None,
    tool_outputs: Annotated[Any | None, Field(description="Tool results (JSON).")] = None,
    message_type: Annotated[str | None, Field(description="Optional kind, e.g. 'text', 'image'.")] = None,
    media_url: Annotated[str | None, Field(description="Optional link to attached media.")] = None,
    mime_type: Annotated[str | None, Field(description="MIME type of the media.")] = None,
    context: Annotated[dict[str, Any] | None, Field(description="Optional JSON context for the turn.")] = None,
    created_at: Annotated[StorableTime, Field(description=CREATED_AT_HELP)] = None,
) -> MessageOut:
    """Append one message to a session's conversation history, in order.

    Example: add_message(session_id="9b2e...", role="user", text_content="Book a table for two")
    """
    item = MessageIn(
        role=role,
        name=name,
        text_content=text_content,
        tool_calls=tool_calls,
        tool_outputs=tool_outputs,
        message_type=message_type,
        media_url=media_url,
        mime_type=mime_type,
        context=context,
        created_at=created_at,
    )
    return (await _append(ctx, session_id, [item]))[0]


@tool_errors
async def add_messages(
    session_id: Annotated[str, Field(description="The session to append to.")],
    messages: Annotated[
        list[MessageIn], Field(min_length=1, max_length=APPEND_BATCH_MAX, description="Messages in order.")
    ],
    ctx: Ctx,
) -> MessageBatch:
    """Append several messages at once (all or none), keeping their order.

    Example: add_messages(session_id="9b2e...", messages=[{"role": "user", "text_content": "Hi"},
    {"role": "assistant", "text_content": "Hello!"}])
    """
    return MessageBatch(messages=await _append(ctx, session_id, messages))


@tool_errors
async def get_session_history(
    session_id: Annotated[str, Field(description="The session to read.")],
    ctx: Ctx,
    limit: Annotated[int, Field(ge=1, le=HISTORY_PAGE_MAX, description="Messages per page.")] = 50,
    cursor: Annotated[str | None, Field(description="next_cursor from the previous page.")] = None,
    start: Annotated[
        Literal["latest", "oldest"],
        Field(description="'latest' (default): newest page first, then older; 'oldest': from the beginning."),
    ] = "latest",
) -> HistoryResult:
    """Read a session's messages a page at a time, chronological within each page.

    The first page holds the most recent messages (start="latest"); pass next_cursor to go further back until
    it is null. Every message is returned exactly once, even while new ones are being added.

    Example: get_session_history(session_id="9b2e...", limit=20)
    """
    ops, actor = await acting(ctx)
    sid = parse_id(session_id, "session_id", SESSION_ID_HINT)
    page = await ops.conversations.history(actor, sid, limit=limit, cursor=cursor, start=start)
    preview = ops.limits.preview_chars
    return HistoryResult(
        session_id=str(sid),
        messages=[MessageOut.of(m, preview) for m in page.messages],
        next_cursor=page.next_cursor,
        start=start,
    )


@tool_errors
async def get_message(message_id: Annotated[str, Field(description="The message's id.")], ctx: Ctx) -> MessageOut:
    """Read one message in full (history pages and searches cut long texts and flag them as truncated).

    Example: get_message(message_id="51aa...")
    """
    ops, actor = await acting(ctx)
    mid = parse_id(message_id, "message_id", "pass an id from get_session_history or search_history.")
    return MessageOut.of(await ops.conversations.get_message(actor, mid))


@tool_errors
async def list_sessions(
    ctx: Ctx,
    limit: Annotated[int, Field(ge=1, le=SESSION_PAGE_MAX, description="Page size.")] = 20,
    cursor: Annotated[str | None, Field(description="next_cursor from the previous page.")] = None,
) -> Annotated[CallToolResult, SessionList]:
    """List your sessions with this user, newest first, with their message counts.

    Example: list_sessions(limit=10)
    """
    ops, actor = await acting(ctx)
    page = await ops.conversations.list_sessions(actor, limit=limit, cursor=cursor)
    listing = SessionList(
        sessions=[SessionOut.of(s) for s in page.items],
        total=page.total,
        total_capped=page.total_capped,
        next_cursor=page.next_cursor,
    )
    return with_links(listing, [session_link(s.id, s.name) for s in listing.sessions])


@tool_errors
async def search_history(
    query: Annotated[str, Field(description="What was said, in plain words or as a question.")],
    ctx: Ctx,
    session_id: Annotated[str | None, Field(description="Only this session; default all your sessions.")] = None,
    limit: Annotated[int, Field(ge=1, le=SEARCH_RESULTS_MAX, description="How many messages at most.")] = 10,
    roles: Annotated[list[Role] | None, Field(description="Only messages with these roles.")] = None,
    created_after: Annotated[datetime | None, Field(description="Only messages written at or after this.")] = None,
    created_before: Annotated[datetime | None, Field(description="Only messages written before this.")] = None,
) -> Annotated[CallToolResult, SearchHistoryResult]:
    """Find messages from this user's past conversations that match a question, best first.

    Messages said by someone the question names, or written on a date it names ("on 8 May, 2023", "in May
    2023"), rank higher. Codes, versions, emails and URLs match whole or by part; Chinese and Japanese match by a
    word. Each result names its session_id; read around it with get_session_history.

    Example: search_history(query="When did we talk about the Lisbon trip?")
    """
    ops, actor = await acting(ctx)
    found = await ops.conversations.search(
        actor,
        query,
        session_id=parse_id(session_id, "session_id", SESSION_ID_HINT) if session_id else None,
        limit=limit,
        roles=roles,
        created_after=created_after,
        created_before=created_before,
    )
    preview = ops.limits.preview_chars
    result = SearchHistoryResult(
        results=[MessageHitOut.of(hit.message, preview, round(hit.score, 6), hit.snippet) for hit in found.hits],
        query_terms=found.terms,
        session_id=str(found.session_id) if found.session_id else None,
    )
    # One link per session the hits come from, in the order of their best hit.
    return with_links(result, [session_link(hit.session_id) for hit in result.results])


def register(server: MCPServer[AppState]) -> None:
    server.add_tool(create_session, annotations=APPEND.model_copy(update={"title": "Start a session"}))
    server.add_tool(add_message, annotations=APPEND.model_copy(update={"title": "Add a message"}))
    server.add_tool(add_messages, annotations=APPEND.model_copy(update={"title": "Add several messages"}))
    server.add_tool(get_session_history, annotations=READ.model_copy(update={"title": "Read session history"}))
    server.add_tool(get_message, annotations=READ.model_copy(update={"title": "Get a message"}))
    server.add_tool(list_sessions, annotations=READ.model_copy(update={"title": "List sessions"}))
    server.add_tool(search_history, annotations=READ.model_copy(update={"title": "Search past conversations"}))
