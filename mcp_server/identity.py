"""Who a request acts for, decided per request and failing closed.

stdio and in-process clients act for the configured user and agent. Over HTTP, when bearer tokens are configured,
the token decides; a missing or unknown token is refused (the HTTP layer already answers 401; this is the second
lock, in case a request reaches a tool by another path).
"""

from __future__ import annotations

import uuid

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from mcp_server.state import Actor, AppState


def app_state(ctx: Context) -> AppState:
    return ctx.request_context.lifespan_context


def identity_keys(state: AppState, headers: object) -> tuple[str, str]:
    settings = state.settings
    if headers is None or not state.tokens:
        return settings.user, settings.agent
    authorization = str(headers.get("authorization", ""))  # type: ignore[attr-defined]
    scheme, _, token = authorization.partition(" ")
    who = state.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
    if who is None:
        raise ToolError("Authentication required: send the header 'Authorization: Bearer <token>' with a valid token.")
    return who


async def acting(ctx: Context) -> tuple[AppState, Actor]:
    state = app_state(ctx)
    user_key, agent_key = identity_keys(state, ctx.headers)
    return state, await state.actor(user_key, agent_key)


def parse_id(value: str, what: str, hint: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value).strip())
    except (ValueError, AttributeError):
        shown = value if len(value) <= 60 else value[:60] + "..."
        raise ToolError(f"{what} {shown!r} is not a valid id: {hint}") from None
