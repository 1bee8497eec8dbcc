"""A real streamable-HTTP server subprocess (the installed console script) with bearer tokens, for tests.

    async with http_server(
        database_url,
        tmp_path / "server.log",
        static={"ada": Identity("ada@example.com", "coder")},
        managed={"ada-ro": Identity("ada@example.com", "coder", read_only=True)},
    ) as server:
        async with server.client("ada") as ada:
            await ada.call_tool("list_sessions", {})

- `static` tokens reach the server through AGENT_MEMORY_HTTP_TOKENS (their secrets are made up here); `managed`
  ones are created with `agent-memory-mcp token create` against the same database while the server starts, so
  both credential sources are exercised. Static tokens cannot be read-only: ask for read-only ones as managed.
- Tokens are addressed by label; `server.tokens[label]` is the secret.
- `env` adds settings for the server (AGENT_MEMORY_*), e.g. AGENT_MEMORY_HTTP_RATE_LIMIT=0: the per-credential
  rate limit (50 requests a second by default) answers a fast test client with 429s.
- The server's stderr goes to `log_path` (quoted when it fails to start); stdout is discarded.
- Leaving the block always terminates the subprocess (and kills it if it has not exited after 20 s).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

SCRIPT = shutil.which("agent-memory-mcp", path=str(Path(sys.executable).parent)) or "agent-memory-mcp"


@dataclass(frozen=True)
class Identity:
    """Who a token acts for."""

    user: str
    agent: str
    read_only: bool = False


@dataclass
class HttpServer:
    url: str
    tokens: dict[str, str] = field(default_factory=dict)

    @asynccontextmanager
    async def client(self, label: str) -> AsyncIterator[Client]:
        """An SDK client sending the token `label`; it owns (and closes) its HTTP client."""
        headers = {"Authorization": f"Bearer {self.tokens[label]}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(self.url, http_client=http)) as client,
        ):
            yield client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(log_path: Path) -> str:
    try:
        return log_path.read_text(errors="replace")[-2_000:]
    except OSError:
        return ""


async def wait_for_port(port: int, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited ({process.returncode}) before listening:\n{_tail(log_path)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            await anyio.sleep(0.05)
    raise TimeoutError(f"server did not listen on {port} within {timeout} s:\n{_tail(log_path)}")


async def create_token(database_url: str, who: Identity) -> str:
    """`agent-memory-mcp token create`: the secret is alone on the last line of stdout."""
    command = [SCRIPT, "token", "create", "--user", who.user, "--agent", who.agent, "--database-url", database_url]
    if who.read_only:
        command.append("--read-only")
    result = await anyio.run_process(command, check=False)
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, f"token create failed ({result.returncode}): {stderr}"
    return result.stdout.decode().strip().splitlines()[-1]


@asynccontextmanager
async def http_server(
    database_url: str,
    log_path: Path,
    *,
    static: Mapping[str, Identity] = {},
    managed: Mapping[str, Identity] = {},
    env: Mapping[str, str] = {},
) -> AsyncIterator[HttpServer]:
    """Serve `database_url` over streamable HTTP on a free loopback port with these tokens (see the module doc)."""
    assert not any(who.read_only for who in static.values()), "static tokens cannot be read-only"
    server = HttpServer(url="")
    static_json = {}
    for label, who in static.items():
        secret = f"static-{label}-{secrets.token_urlsafe(16)}"
        server.tokens[label] = secret
        static_json[secret] = {"user": who.user, "agent": who.agent}
    port = free_port()
    server.url = f"http://127.0.0.1:{port}/mcp"
    environment = os.environ | dict(env) | {"AGENT_MEMORY_HTTP_TOKENS": json.dumps(static_json)}
    command = [SCRIPT, "--transport", "streamable-http", "--port", str(port), "--database-url", database_url]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=log)
        try:

            async def make(label: str, who: Identity) -> None:
                server.tokens[label] = await create_token(database_url, who)

            async with anyio.create_task_group() as tasks:  # the CLI runs while the server starts
                for label, who in managed.items():
                    tasks.start_soon(make, label, who)
                tasks.start_soon(wait_for_port, port, process, log_path)
            yield server
        finally:
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=20)
