"""`agent-memory-mcp console [--no-browser] [--port N]`: the memory console on 127.0.0.1 for the local database,
acting for the configured user (--user, --agent), as `agent-memory-mcp` over stdio would.

Only the console is served (no /mcp). Its address carries a secret made for this run in its fragment (`#token=`,
never sent in a request line or logged by a server); the page keeps it in sessionStorage and sends it as a bearer
token, so other local users and programs cannot act for you through the port. The secret is the HTTP verifier's
per-process credential of the configured user, so the console goes through the same verifier as any HTTP request.

This module is imported by the CLI at start-up: it imports nothing heavy until the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mcp_server.config import Settings

LOOPBACK = "127.0.0.1"


def add_console_command(commands: Any, common: argparse.ArgumentParser) -> None:
    console = commands.add_parser(
        "console", help="open the memory console in a browser (127.0.0.1, the local database)", parents=[common]
    )
    console.add_argument("--no-browser", action="store_true", help="print the console's address, open no browser")


class ConsoleOnly:
    """ASGI: the MCP app's lifespan (which opens the database) without its routes: every request that is not the
    console's is answered 404."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        await send({"type": "http.response.start", "status": 404, "headers": headers})
        await send({"type": "http.response.body", "body": b"Not found: the console is at /console/."})


def console_asgi(settings: Settings) -> tuple[Any, str]:
    """The console-only app for these settings, and the secret its address carries."""
    from mcp_server.app import build_server  # noqa: PLC0415 - this command only: the console's dependencies
    from mcp_server.console import with_console  # noqa: PLC0415
    from mcp_server.rate_limit import RateLimit  # noqa: PLC0415

    server = build_server(settings)
    mcp_app = server.streamable_http_app(
        host=settings.host, stateless_http=True, max_request_body_size=settings.max_body_bytes()
    )
    app = with_console(ConsoleOnly(mcp_app), server, settings)
    verifier = server.credential_verifier
    assert verifier is not None  # an HTTP transport always has one (build_server)
    return RateLimit(app, settings.http_rate_limit), verifier.local_secret


def run_console_command(settings: Settings, args: argparse.Namespace) -> int:
    import socket  # noqa: PLC0415 - this command only

    import uvicorn  # noqa: PLC0415 - only a server pays for importing uvicorn

    host = getattr(args, "host", None)
    if host is not None and host not in (LOOPBACK, "localhost"):
        print(
            "agent-memory-mcp: the console serves 127.0.0.1 only; to reach memories from elsewhere run the HTTP "
            "server (--transport streamable-http) with tokens: its console is at /console/.",
            file=sys.stderr,
        )
        return 2
    # A free port unless one is asked for: the address changes each run anyway (its secret does).
    port = getattr(args, "port", None) or 0
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((LOOPBACK, port))
    except OSError as exc:
        sock.close()
        print(
            f"agent-memory-mcp: cannot listen on {LOOPBACK}:{port}: {exc.strerror}; pick another --port.",
            file=sys.stderr,
        )
        return 1
    # Listening before the browser opens, so its first request waits in the backlog instead of being refused.
    sock.listen(128)
    port = sock.getsockname()[1]
    local = settings.model_copy(update={"transport": "streamable-http", "host": LOOPBACK, "port": port})
    app, secret = console_asgi(local)
    url = f"http://{LOOPBACK}:{port}/console/#token={secret}"
    print(f"Memory console for {local.user} (agent {local.agent}): {url}", flush=True)
    print("agent-memory-mcp: press Ctrl+C to stop the console.", file=sys.stderr)
    if not args.no_browser:
        _open_browser(url)
    config = uvicorn.Config(app, log_level=local.log_level.lower(), lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _open_browser(url: str) -> None:
    import threading  # noqa: PLC0415 - this command only
    import webbrowser  # noqa: PLC0415

    # In a thread: some browsers' launchers wait for the browser; the server must start meanwhile.
    threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
