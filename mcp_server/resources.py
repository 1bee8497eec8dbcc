"""Resources (a memory as JSON, a session transcript, recent sessions) and the agent-context prompt.

Like the tools, each reads through one operation and only shapes the result.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.mcpserver.prompts.base import Message, UserMessage

from mcp_server.errors import resource_errors
from mcp_server.identity import Ctx, acting, acting_for, verified_token
from mcp_server.schemas import MemoryOut, SessionOut
from mcp_server.state import AppState, StateSlot
from repository.checks import parse_id
from repository.limits import RECENT_SESSIONS, SESSION_PAGE_MAX, TRANSCRIPT_MESSAGES
from repository.models import Actor, HistoryPage, Session

if TYPE_CHECKING:
    from repository.operations import Operations


@resource_errors
async def memory_resource(memory_id: str, ctx: Ctx) -> str:
    ops, actor = await acting(ctx)
    memory = await ops.memories.get(
        actor, parse_id(memory_id, "memory_id", "use an id from search_memories or list_memories.")
    )
    return MemoryOut.of(memory).model_dump_json(indent=2)


@resource_errors
async def history_resource(session_id: str, ctx: Ctx) -> str:
    ops, actor = await acting(ctx)
    sid = parse_id(session_id, "session_id", "use an id from list_sessions.")
    transcript = await ops.conversations.transcript(actor, sid, TRANSCRIPT_MESSAGES)
    return render_transcript(transcript.session, transcript.page)


@resource_errors
async def recent_sessions(ctx: Ctx, limit: int = RECENT_SESSIONS) -> str:
    ops, actor = await acting(ctx)
    return await _recent_sessions_json(ops, actor, int(limit))


@resource_errors
async def agent_context(ctx: Ctx) -> list[Message]:
    ops, actor = await acting(ctx)
    return [UserMessage(await ops.memories.agent_prompt(actor))]


class StaticSessions:
    """`memory://sessions`: static resources get no request context, so this one reads the running server's state
    from the slot the lifespan fills, and the caller's identity from the SDK's auth context (none: refused on an
    HTTP server, the configured user on stdio)."""

    def __init__(self, slot: StateSlot) -> None:
        self.slot = slot

    async def read(self) -> str:
        state = self.slot.state
        if state is None:
            raise ResourceError("The server is not running.")
        ops, actor = await acting_for(state, verified_token(None))
        return await _recent_sessions_json(ops, actor, RECENT_SESSIONS)


def render_transcript(chat: Session, page: HistoryPage) -> str:
    """A session's messages as plain text a person reads, tool calls and outputs included."""
    title = chat.name or "Untitled session"
    lines = [f"# {title}", f"session {chat.id}, started {chat.created_at:%Y-%m-%d %H:%M} UTC", ""]
    if page.next_cursor:
        lines.append("(older messages omitted; use get_session_history to page back)\n")
    for message in page.messages:
        body = message.text_content or ""
        if message.tool_calls:
            body += f"\n  tool calls: {json.dumps(message.tool_calls, ensure_ascii=False)}"
        if message.tool_outputs:
            body += f"\n  tool outputs: {json.dumps(message.tool_outputs, ensure_ascii=False)}"
        speaker = f"{message.role} ({message.name})" if message.name else message.role
        lines.append(f"[{message.created_at:%Y-%m-%d %H:%M:%S}] {speaker}: {body}")
    return "\n".join(lines) + "\n"


async def _recent_sessions_json(ops: Operations, actor: Actor, limit: int) -> str:
    page = await ops.conversations.list_sessions(actor, limit=max(1, min(limit, SESSION_PAGE_MAX)))
    return json.dumps(
        {"sessions": [SessionOut.of(s).model_dump(mode="json") for s in page.items], "total": page.total},
        indent=2,
        ensure_ascii=False,
    )


def register(server: MCPServer[AppState], static_sessions: StaticSessions) -> None:
    server.resource("memory://memories/{memory_id}", mime_type="application/json", description="One memory as JSON.")(
        memory_resource
    )
    server.resource(
        "memory://sessions/{session_id}/history",
        mime_type="text/plain",
        description=f"A session's transcript, readable by a person (the last {TRANSCRIPT_MESSAGES} messages).",
    )(history_resource)
    server.resource(
        "memory://sessions",
        mime_type="application/json",
        description="Your most recent sessions with this agent, newest first.",
    )(resource_errors(static_sessions.read))
    server.resource(
        "memory://sessions/recent{?limit}",
        mime_type="application/json",
        description="Your most recent sessions with this agent, newest first, with message counts.",
    )(recent_sessions)
    server.prompt(
        name="agent_context",
        description="The agent's system prompt with {{memory_name}} placeholders filled from its "
        "system_prompt memories; start a conversation with it to restore remembered context.",
    )(agent_context)
