"""The composition root: `build_server(settings)` wires settings, state, tools, resources and prompts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import AnyHttpUrl, ValidationError

from mcp_server import completions, notifications, resources, tools_history, tools_memory
from mcp_server.auth import CredentialVerifier
from mcp_server.config import Settings
from mcp_server.errors import describe_validation_error
from mcp_server.schemas import inline_refs
from mcp_server.state import AppState, StateSlot
from mcp_server.sweeper import start_sweeper

if TYPE_CHECKING:
    from repository.runtime import Bounds

INSTRUCTIONS = """\
Persistent memory and conversation history for this agent and user.
- Before answering something that may depend on earlier conversations, call search_memories (facts) or
  search_history (what was said). Ask in plain language.
- When you learn a lasting fact or preference, call store_memory; give it a name to update it later.
- Keep a conversation with create_session once, then add_message for each turn; read it back with
  get_session_history (newest page first).
Ids come from earlier results; never invent them."""


_HANDSHAKE_METHODS = frozenset({"initialize", "server/discover"})


class MemoryServer(MCPServer[AppState]):
    """MCPServer whose argument-validation errors are one readable line instead of pydantic's report."""

    # The HTTP server's token verifier (None on stdio), for the HTTP layer's open-loopback check.
    credential_verifier: CredentialVerifier | None = None
    # Live change notifications of this server (mcp_server.notifications), set by build_server.
    notifier: notifications.Notifier | None = None

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[AppState, Any] | None = None
    ) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(f"{name}: {describe_validation_error(exc.__cause__)}") from exc.__cause__
            raise


async def _open_after_handshake(ctx: Any, call_next: Any) -> Any:
    result = await call_next(ctx)
    # The initialize (or discover) response is written after this returns; the next message starts the open.
    if ctx.method not in _HANDSHAKE_METHODS:
        ctx.lifespan_context.start_opening()
    return result


def build_server(settings: Settings, *, bounds: Bounds | None = None) -> MemoryServer:
    """A ready-to-run server for these settings (and, for tests and tuning, these bounds of per-query work).
    Nothing is opened until the server starts (the lifespan)."""

    slot = StateSlot()
    http = settings.transport == "streamable-http"
    verifier = _verifier(settings, slot) if http else None
    notifier = notifications.Notifier(settings, verifier.still_valid if verifier is not None else None)

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        state = AppState(settings, bounds, authenticated=http)
        slot.state = state
        async with anyio.create_task_group() as tasks:
            state.attach(tasks)
            await notifier.attach(state, tasks)
            sweeping = start_sweeper(tasks, state, settings.sweep_interval_s)
            if settings.transport != "stdio":
                # An HTTP server has no per-client handshake to protect: open right away.
                state.start_opening()
            try:
                yield state
            finally:
                slot.state = None
                sweeping.cancel()
                notifier.detach(state)
            # Leaving the task group waits for an unfinished open instead of cancelling it: a connection
            # abandoned mid-handshake leaves driver threads calling into a closed event loop.
        await state.close()

    server = MemoryServer(
        name="agent-memory",
        title="Agent memory",
        instructions=INSTRUCTIONS,
        version=_version(),
        lifespan=lifespan,
        log_level=settings.log_level,
        token_verifier=verifier,
        auth=_auth_settings(settings) if verifier is not None else None,
        subscriptions=notifier.listen_bus,
    )
    server.credential_verifier = verifier
    server.notifier = notifier
    server.middleware.append(_open_after_handshake)
    notifications.register(server, notifier)
    tools_memory.register(server)
    tools_history.register(server)
    _inline_output_schemas(server)
    resources.register(server, resources.StaticSessions(slot))
    completions.register(server)
    return server


def _verifier(settings: Settings, slot: StateSlot) -> CredentialVerifier:
    jwt = None
    if settings.oauth_issuer:
        # Only a server with an OAuth issuer loads the JOSE libraries.
        from mcp_server.oauth import JwtVerifier  # noqa: PLC0415

        jwt = JwtVerifier(
            settings.oauth_issuer,
            settings.public_url or "",  # required with an issuer (Settings checks it)
            user_claim=settings.oauth_user_claim,
            agent_claim=settings.oauth_agent_claim,
        )
    return CredentialVerifier(settings, slot, jwt)


def _auth_settings(settings: Settings) -> AuthSettings:
    """The SDK's resource-server settings. With an OAuth issuer, the protected resource metadata is served for
    AGENT_MEMORY_PUBLIC_URL; with tokens alone there is no authorization server to advertise, so the issuer field
    (required by the SDK) only names this server and no metadata route is added."""
    if settings.oauth_issuer and settings.public_url:
        return AuthSettings(
            issuer_url=AnyHttpUrl(settings.oauth_issuer),
            resource_server_url=AnyHttpUrl(settings.public_url),
            # Our verifier checks the audience itself (mcp_server.oauth).
            validate_token_resource=False,
        )
    own = settings.public_url or f"http://{settings.host}:{settings.port}"
    return AuthSettings(issuer_url=AnyHttpUrl(own), resource_server_url=None)


def _inline_output_schemas(server: MCPServer[Any]) -> None:
    # FuncMetadata documents its fields as read live, so a schema replaced before the first tools/list is the one
    # published and the one results are checked against. The tool manager has no public iterator; the contract
    # tests fail if this stops taking effect.
    for tool in server._tool_manager.list_tools():
        if tool.fn_metadata.output_schema is not None:
            tool.fn_metadata.output_schema = inline_refs(tool.fn_metadata.output_schema)


def _version() -> str:
    try:
        return version("agent-memory-mcp")
    except PackageNotFoundError:
        return "0.0.0"
