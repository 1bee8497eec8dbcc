"""Who a request acts for, decided per request from the verified credential, failing closed.

stdio and in-process clients act for the configured user and agent. Over HTTP the SDK's authentication has
verified the bearer token before the request reached us (mcp_server.auth); the identity is read from that verified
access token, never from raw headers. A request that reaches a tool on an HTTP server without one is refused (the
SDK already answers 401; this is the second lock).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias, cast

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from mcp_server.auth import credential_of
from mcp_server.state import AppState
from repository.models import Actor

if TYPE_CHECKING:
    from repository.operations import Operations

# The annotation of a tool's context parameter. The SDK finds that parameter by this bare class (it does not see
# through Context[AppState, ...]), so the alias stays unparameterised.
Ctx: TypeAlias = Context

UNAUTHENTICATED = "Authentication required: send the header 'Authorization: Bearer <token>' with a valid token."


def app_state(ctx: Ctx) -> AppState:
    return cast(AppState, ctx.request_context.lifespan_context)


def verified_token(ctx: Ctx | None) -> AccessToken | None:
    """The access token the SDK verified for this request: from the HTTP request itself, else the auth context."""
    request = ctx.request_context.request if ctx is not None else None
    user = getattr(request, "scope", {}).get("user") if request is not None else None
    if isinstance(user, AuthenticatedUser):
        return user.access_token
    return get_access_token()


async def acting_for(state: AppState, token: AccessToken | None) -> tuple[Operations, Actor]:
    """The operations and the actor of a request with this verified token (or the configured identity)."""
    if not state.authenticated:
        return await state.acting(state.settings.user, state.settings.agent)
    credential = credential_of(token) if token is not None else None
    if credential is None:
        raise ToolError(UNAUTHENTICATED)
    return await state.acting(credential.user, credential.agent, read_only=credential.read_only)


async def acting(ctx: Ctx) -> tuple[Operations, Actor]:
    """The operations and the actor of this request."""
    return await acting_for(app_state(ctx), verified_token(ctx))
