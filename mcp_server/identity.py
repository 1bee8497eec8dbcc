"""Who a request acts for, decided per request and failing closed.

stdio and in-process clients act for the configured user and agent. Over HTTP, when bearer tokens are configured,
the token decides; a missing or unknown token is refused (the HTTP layer already answers 401; this is the second
lock, in case a request reaches a tool by another path).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias, cast

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from mcp_server.state import AppState
from repository.models import Actor

if TYPE_CHECKING:
    from repository.operations import Operations

# The annotation of a tool's context parameter. The SDK finds that parameter by this bare class (it does not see
# through Context[AppState, ...]), so the alias stays unparameterised.
Ctx: TypeAlias = Context


def app_state(ctx: Ctx) -> AppState:
    return cast(AppState, ctx.request_context.lifespan_context)


def identity_keys(state: AppState, headers: Any) -> tuple[str, str]:
    settings = state.settings
    if headers is None or not state.tokens:
        return settings.user, settings.agent
    scheme, _, token = str(headers.get("authorization", "")).partition(" ")
    who = state.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
    if who is None:
        raise ToolError("Authentication required: send the header 'Authorization: Bearer <token>' with a valid token.")
    return who


async def acting(ctx: Ctx) -> tuple[Operations, Actor]:
    """The operations and the actor of this request."""
    state = app_state(ctx)
    user_key, agent_key = identity_keys(state, ctx.headers)
    return await state.acting(user_key, agent_key)
