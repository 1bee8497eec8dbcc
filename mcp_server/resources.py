"""Resources (a memory as JSON, a session transcript, recent sessions) and the agent-context prompt."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.mcpserver.prompts.base import Message, UserMessage

from mcp_server.errors import translate
from mcp_server.identity import acting, parse_id
from mcp_server.schemas import MemoryOut, SessionOut
from mcp_server.state import Actor, AppState

TRANSCRIPT_MESSAGES = 200
RECENT_SESSIONS = 20
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


async def _guarded(coro: Any) -> Any:
    """Resource errors with the same safe sentences as tools."""
    try:
        return await coro
    except ResourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - translated, never swallowed
        raise ResourceError(str(translate(exc))) from exc


def register(server: MCPServer[Any], current_state: Callable[[], AppState | None]) -> None:
    @server.resource("memory://memories/{memory_id}", mime_type="application/json", description="One memory as JSON.")
    async def memory_resource(memory_id: str, ctx: Context) -> str:
        async def read() -> str:
            state, actor = await acting(ctx)
            from repository.memories import get_memory

            mid = parse_id(memory_id, "memory_id", "use an id from search_memories or list_memories.")
            async with state.transaction(readonly=True) as session:
                memory = await get_memory(session, mid, user_id=actor.user_id, agent_id=actor.agent_id)
            return MemoryOut.of(memory).model_dump_json(indent=2)

        return await _guarded(read())

    @server.resource(
        "memory://sessions/{session_id}/history",
        mime_type="text/plain",
        description=f"A session's transcript, readable by a person (the last {TRANSCRIPT_MESSAGES} messages).",
    )
    async def history_resource(session_id: str, ctx: Context) -> str:
        async def read() -> str:
            state, actor = await acting(ctx)
            from repository.messages import get_history
            from repository.sessions import get_session

            sid = parse_id(session_id, "session_id", "use an id from list_sessions.")
            async with state.transaction(readonly=True) as session:
                chat = await get_session(session, sid, user_id=actor.user_id)
                page = await get_history(session, sid, limit=TRANSCRIPT_MESSAGES, user_id=actor.user_id)
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

        return await _guarded(read())

    @server.resource(
        "memory://sessions",
        mime_type="application/json",
        description="Your most recent sessions with this agent (the configured user), newest first.",
    )
    async def sessions_resource() -> str:
        state = current_state()
        if state is None:
            raise ResourceError("The server is not running.")
        if state.tokens:
            # No request context here, so no caller identity: fail closed on a shared server.
            raise ResourceError("On a server with HTTP tokens, read memory://sessions/recent instead.")

        async def read() -> str:
            actor = await state.actor(state.settings.user, state.settings.agent)
            return await _recent_sessions_json(state, actor, RECENT_SESSIONS)

        return await _guarded(read())

    @server.resource(
        "memory://sessions/recent{?limit}",
        mime_type="application/json",
        description="Your most recent sessions with this agent, newest first, with message counts.",
    )
    async def recent_sessions(ctx: Context, limit: int = RECENT_SESSIONS) -> str:
        async def read() -> str:
            state, actor = await acting(ctx)
            return await _recent_sessions_json(state, actor, int(limit))

        return await _guarded(read())

    @server.prompt(
        name="agent_context",
        description="The agent's system prompt with {{memory_name}} placeholders filled from its "
        "system_prompt memories; start a conversation with it to restore remembered context.",
    )
    async def agent_context(ctx: Context) -> list[Message]:
        return [UserMessage(await _guarded(render_agent_context(ctx)))]


async def _recent_sessions_json(state: AppState, actor: Actor, limit: int) -> str:
    from repository.sessions import list_sessions

    size = max(1, min(limit, 100))
    async with state.transaction(readonly=True) as session:
        page = await list_sessions(session, user_id=actor.user_id, agent_id=actor.agent_id, limit=size)
    return json.dumps(
        {"sessions": [SessionOut.of(s).model_dump(mode="json") for s in page.items], "total": page.total},
        indent=2,
        ensure_ascii=False,
    )


async def render_agent_context(ctx: Context) -> str:
    state, actor = await acting(ctx)
    from repository.agents import get_agent
    from repository.memories import list_memories

    async with state.transaction(readonly=True) as session:
        agent = await get_agent(session, actor.agent_id)
        page = await list_memories(
            session, visible_to_pair=(actor.user_id, actor.agent_id), read_mode="system_prompt", limit=1000
        )
    # Narrower scopes win: a user's own memory overrides an agent-wide one of the same name.
    rank = {"session": 0, "user": 1, "agent": 2, "global": 3}
    values: dict[str, str] = {}
    for memory in sorted(page.items, key=lambda m: rank[MemoryOut.of(m).scope], reverse=True):
        if memory.name:
            values[memory.name] = memory.content
    template = agent.system_prompt
    if not template:
        if not values:
            return f"You are {agent.name}. No system prompt or system_prompt memories are stored yet."
        facts = "\n".join(f"- {name}: {content}" for name, content in sorted(values.items()))
        return f"You are {agent.name}. Remembered context:\n{facts}"

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        return values.get(key, f"[missing memory: {key}]")

    return _PLACEHOLDER.sub(fill, template)
