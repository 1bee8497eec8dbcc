"""Streamable HTTP serving: one shared server, each request identified by its bearer token.

Without tokens the server acts for the configured user, which is only safe on a loopback address: binding to any
other address without tokens is refused (fail closed).
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from typing import Any

from mcp_server.app import build_server
from mcp_server.config import Settings

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BearerAuth:
    """ASGI middleware: 401 for any request without a configured bearer token."""

    def __init__(self, app: Any, tokens: dict[str, tuple[str, str]]) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.tokens:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or token.strip() not in self.tokens:
                body = b'{"error": "unauthorized: send Authorization: Bearer <token>"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def build_http_app(settings: Settings) -> Any:
    server = build_server(settings)
    return BearerAuth(server.streamable_http_app(host=settings.host), settings.tokens())


def serve_http(settings: Settings) -> int:
    if not settings.tokens() and not is_loopback(settings.host):
        refusal = (
            f"agent-memory-mcp: refusing to serve {settings.host} without bearer tokens: set AGENT_MEMORY_HTTP_TOKENS "
            "(or AGENT_MEMORY_HTTP_TOKENS_FILE), or bind to 127.0.0.1."
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
