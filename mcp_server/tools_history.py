"""Conversation tools: sessions, messages, history pages and recall across past conversations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from mcp_server.errors import check_json_size, check_size, tool_errors
from mcp_server.identity import acting, parse_id
from mcp_server.schemas import (
    HistoryResult,
    MessageBatch,
    MessageHitOut,
    MessageOut,
    SearchHistoryResult,
    SessionList,
    SessionOut,
)
from mcp_server.snippets import snippet

MAX_HISTORY_LIMIT = 200
MAX_SESSIONS_LIMIT = 100
MAX_SEARCH_LIMIT = 50
MAX_BATCH = 100
_SESSION_HINT = "pass the id returned by create_session or list_sessions."

READ = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)
APPEND = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False)

Role = Literal["user", "assistant", "system", "tool"]
CREATED_AT_HELP = (
    "When it was said, with a time zone (ISO 8601, e.g. 2023-05-08T13:56:00Z), to import a past conversation; "
    "default now. Dates in search_history questions match it."
)


class MessageIn(BaseModel):
    """One message for add_messages."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    name: str | None = Field(default=None, max_length=200, description="Speaker's display name (multi-party chats).")
    text_content: str | None = None
    tool_calls: Any | None = None
    tool_outputs: Any | None = None
    message_type: str | None = None
    media_url: str | None = None
    mime_type: str | None = None
    context: dict[str, Any] | None = None
    created_at: datetime | None = Field(default=None, description=CREATED_AT_HELP)


def register(server: MCPServer[Any]) -> None:
    @server.tool(annotations=APPEND.model_copy(update={"title": "Start a session"}))
    @tool_errors
    async def create_session(
        ctx: Context,
        name: Annotated[str | None, Field(description="A short title for the conversation.")] = None,
        platform: Annotated[str | None, Field(description="Where it happens, e.g. 'slack', 'cli'.")] = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="Optional JSON object kept with it.")] = None,
    ) -> SessionOut:
        """Start a new conversation session; its `id` is what add_message and get_session_history take.

        Example: create_session(name="Trip planning")
        """
        state, actor = await acting(ctx)
        from repository.models import SessionCreate
        from repository.sessions import create_session_sync

        check_json_size("metadata", metadata, state.settings.max_content_bytes)
        data = SessionCreate(
            user_id=actor.user_id, agent_id=actor.agent_id, name=name, platform=platform, metadata=metadata or {}
        )
        return SessionOut.of(await state.write(create_session_sync, data))

    async def _append(ctx: Context, session_id: str, items: list[MessageIn]) -> list[MessageOut]:
        state, actor = await acting(ctx)
        from repository.messages import add_messages_sync
        from repository.models import MessageCreate

        limit = state.settings.max_content_bytes
        for item in items:
            check_size("text_content", item.text_content, limit)
            for label in ("tool_calls", "tool_outputs", "context"):
                check_json_size(label, getattr(item, label), limit)
            if not (item.text_content or item.tool_calls or item.tool_outputs or item.media_url):
                raise ToolError("The message is empty: give text_content, tool_calls, tool_outputs or media_url.")
            if item.created_at is not None and item.created_at.tzinfo is None:
                raise ToolError("created_at needs a time zone, e.g. 2023-05-08T13:56:00Z.")
        sid = parse_id(session_id, "session_id", _SESSION_HINT)
        creates = [
            MessageCreate(session_id=sid, user_id=actor.user_id, agent_id=actor.agent_id, **item.model_dump())
            for item in items
        ]
        written = await state.write(add_messages_sync, creates, user_id=actor.user_id)
        return [MessageOut.of(m) for m in written]

    @server.tool(annotations=APPEND.model_copy(update={"title": "Add a message"}))
    @tool_errors
    async def add_message(
        session_id: Annotated[str, Field(description="The session to append to.")],
        role: Annotated[Role, Field(description="Who spoke: user, assistant, system or tool.")],
        ctx: Context,
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
        created_at: Annotated[datetime | None, Field(description=CREATED_AT_HELP)] = None,
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

    @server.tool(annotations=APPEND.model_copy(update={"title": "Add several messages"}))
    @tool_errors
    async def add_messages(
        session_id: Annotated[str, Field(description="The session to append to.")],
        messages: Annotated[
            list[MessageIn], Field(min_length=1, max_length=MAX_BATCH, description="Messages in order.")
        ],
        ctx: Context,
    ) -> MessageBatch:
        """Append several messages at once (all or none), keeping their order.

        Example: add_messages(session_id="9b2e...", messages=[{"role": "user", "text_content": "Hi"},
        {"role": "assistant", "text_content": "Hello!"}])
        """
        return MessageBatch(messages=await _append(ctx, session_id, messages))

    @server.tool(annotations=READ.model_copy(update={"title": "Read session history"}))
    @tool_errors
    async def get_session_history(
        session_id: Annotated[str, Field(description="The session to read.")],
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=MAX_HISTORY_LIMIT, description="Messages per page.")] = 50,
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
        state, actor = await acting(ctx)
        from repository.messages import get_history_sync

        sid = parse_id(session_id, "session_id", _SESSION_HINT)
        page = await state.read(get_history_sync, sid, limit=limit, cursor=cursor, start=start, user_id=actor.user_id)
        preview = state.settings.listing_preview_chars
        return HistoryResult(
            session_id=str(sid),
            messages=[MessageOut.of(m, preview) for m in page.messages],
            next_cursor=page.next_cursor,
            start=start,
        )

    @server.tool(annotations=READ.model_copy(update={"title": "Get a message"}))
    @tool_errors
    async def get_message(
        message_id: Annotated[str, Field(description="The message's id.")], ctx: Context
    ) -> MessageOut:
        """Read one message in full (history pages and searches cut long texts and flag them as truncated).

        Example: get_message(message_id="51aa...")
        """
        state, actor = await acting(ctx)
        from repository.messages import get_message_sync

        mid = parse_id(message_id, "message_id", "pass an id from get_session_history or search_history.")
        return MessageOut.of(await state.read(get_message_sync, mid, user_id=actor.user_id))

    @server.tool(annotations=READ.model_copy(update={"title": "List sessions"}))
    @tool_errors
    async def list_sessions(
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=MAX_SESSIONS_LIMIT, description="Page size.")] = 20,
        cursor: Annotated[str | None, Field(description="next_cursor from the previous page.")] = None,
    ) -> SessionList:
        """List your sessions with this user, newest first, with their message counts.

        Example: list_sessions(limit=10)
        """
        state, actor = await acting(ctx)
        from repository._paging import next_offset_cursor, offset_from_cursor
        from repository.sessions import list_sessions_sync

        offset = offset_from_cursor(cursor, "sessions")
        page = await state.read(
            list_sessions_sync, user_id=actor.user_id, agent_id=actor.agent_id, limit=limit, offset=offset
        )
        return SessionList(
            sessions=[SessionOut.of(s) for s in page.items],
            total=page.total,
            total_capped=page.total_capped,
            next_cursor=next_offset_cursor("sessions", page),
        )

    @server.tool(annotations=READ.model_copy(update={"title": "Search past conversations"}))
    @tool_errors
    async def search_history(
        query: Annotated[str, Field(description="What was said, in plain words or as a question.")],
        ctx: Context,
        session_id: Annotated[str | None, Field(description="Only this session; default all your sessions.")] = None,
        limit: Annotated[int, Field(ge=1, le=MAX_SEARCH_LIMIT, description="How many messages at most.")] = 10,
        roles: Annotated[list[Role] | None, Field(description="Only messages with these roles.")] = None,
        created_after: Annotated[datetime | None, Field(description="Only messages written at or after this.")] = None,
        created_before: Annotated[datetime | None, Field(description="Only messages written before this.")] = None,
    ) -> SearchHistoryResult:
        """Find messages from this user's past conversations that match a question, best first.

        Messages said by someone the question names, or written on a date it names ("on 8 May, 2023", "in May
        2023"), rank higher. Each result names its session_id; read around it with get_session_history.

        Example: search_history(query="When did we talk about the Lisbon trip?")
        """
        state, actor = await acting(ctx)
        from repository.search import search_messages_sync
        from repository.textsearch import query_terms

        check_size("query", query, state.settings.max_content_bytes)
        sid = parse_id(session_id, "session_id", _SESSION_HINT) if session_id else None
        terms = query_terms(query)
        hits = await state.read(
            search_messages_sync,
            query,
            user_id=actor.user_id,
            session_ids=[sid] if sid else None,
            roles=roles,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
        )
        preview = state.settings.listing_preview_chars
        return SearchHistoryResult(
            results=[
                MessageHitOut.of(hit.message, preview, round(hit.score, 6), snippet(hit.message.text_content, terms))
                for hit in hits
            ],
            query_terms=terms,
            session_id=str(sid) if sid else None,
        )
