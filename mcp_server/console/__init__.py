"""The memory console: a small web app at /console for the people whose memories these are.

It is served by the HTTP server beside /mcp (`with_console`) and by `agent-memory-mcp console`. Its JSON API
(`/console/api/...`) acts for the bearer token's credential through the same verifier and the same operations as
the MCP tools; its pages are plain modules shipped in the package (no build step, no network at run time).

Imported only by the HTTP server and the console command: the stdio start-up path never loads it.
"""

from __future__ import annotations

from typing import Any

from mcp_server.app import MemoryServer
from mcp_server.config import Settings
from mcp_server.console.api import ROUTES
from mcp_server.console.web import PREFIX, console_app

__all__ = ["PREFIX", "ConsoleMount", "with_console"]


def is_console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class ConsoleMount:
    """ASGI: requests under /console go to the console, everything else (and the lifespan, which opens the
    database and fills the state slot the console reads) to the MCP app."""

    def __init__(self, app: Any, console: Any) -> None:
        self.app = app
        self.console = console

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and is_console_path(scope["path"]):
            await self.console(scope, receive, send)
            return
        await self.app(scope, receive, send)


def with_console(app: Any, server: MemoryServer, settings: Settings) -> ConsoleMount:
    """`app` with the console mounted at /console, acting through `server`'s credential verifier."""
    verifier = server.credential_verifier
    if verifier is None:
        raise ValueError("The console needs an HTTP server (transport streamable-http): it has no verifier.")
    return ConsoleMount(app, console_app(settings, verifier, ROUTES))
