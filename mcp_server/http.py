"""Streamable HTTP serving: one shared server, each request identified by its verified bearer token.

The layers of a request, outermost first: the per-credential rate limit (429), the open-loopback credential (only
on a loopback bind with no credential source), then the SDK's app: body size limit (413), authentication through
our `TokenVerifier` (401 with WWW-Authenticate), the MCP transport (stateless by default, so any replica can answer
any request).

Without any credential source the server acts for the configured user, which is only safe on a loopback address:
binding to any other address without one is refused (fail closed).
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from typing import Any

import anyio

from mcp_server.app import build_server
from mcp_server.auth import OpenLoopback
from mcp_server.config import Settings
from mcp_server.console import with_console
from mcp_server.rate_limit import RateLimit

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NoStandaloneStream:
    """A stateless server has nothing to push outside a request, and the SDK would hold a GET stream open idle
    forever (a connection and a task each, uncounted by the rate limit): answer GET with 405, as the spec allows."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].rstrip("/") == "/mcp":
            headers = [(b"allow", b"POST"), (b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 405, "headers": headers})
            body = b'{"error": "method_not_allowed", "error_description": "This stateless server has no GET stream."}'
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def build_http_app(settings: Settings) -> Any:
    server = build_server(settings)
    app: Any = server.streamable_http_app(
        host=settings.host,
        stateless_http=settings.http_stateless,
        max_request_body_size=settings.max_body_bytes(),
    )
    if settings.http_stateless:
        app = NoStandaloneStream(app)
    # Inside OpenLoopback and the rate limit: the console's requests get the same credential and limits as /mcp.
    app = with_console(app, server, settings)
    verifier = server.credential_verifier
    if verifier is not None and is_loopback(settings.host):
        app = OpenLoopback(app, verifier)
    return RateLimit(app, settings.http_rate_limit)


def _managed_tokens_exist(settings: Settings) -> bool:
    from repository.operations import Operations  # noqa: PLC0415 - the data layer, for this one check at start

    async def check() -> bool:
        operations = await Operations.open(
            settings.resolved_database_url(), options=settings.engine_options(), auto_migrate=settings.auto_migrate
        )
        try:
            return await operations.credentials.any_token()
        finally:
            await operations.close()

    return anyio.run(check)


def serve_http(settings: Settings) -> int:
    has_credentials = bool(settings.tokens()) or bool(settings.oauth_issuer)
    if not has_credentials and not is_loopback(settings.host) and not _managed_tokens_exist(settings):
        refusal = (
            f"agent-memory-mcp: refusing to serve {settings.host} without credentials: create a token "
            "(agent-memory-mcp token create --user U), set AGENT_MEMORY_HTTP_TOKENS or AGENT_MEMORY_OAUTH_ISSUER, "
            "or bind to 127.0.0.1."
        )
        print(refusal, file=sys.stderr)
        return 2
    import uvicorn  # noqa: PLC0415 - only an HTTP server pays for importing uvicorn

    config = uvicorn.Config(
        build_http_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        lifespan="on",
    )
    uvicorn.Server(config).run()
    return 0
