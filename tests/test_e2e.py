"""End to end: the installed console script as a real subprocess, over stdio and over streamable HTTP."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.mcp_helpers import call, call_error

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # server subprocesses over stdio and HTTP

SCRIPT = shutil.which("agent-memory-mcp", path=str(Path(sys.executable).parent)) or "agent-memory-mcp"


def stdio(database_url: str, *extra: str) -> Client:
    return Client(
        StdioServerParameters(
            command=SCRIPT, args=["--database-url", database_url, "--user", "e2e@example.com", *extra]
        )
    )


async def test_stdio_scenario_survives_a_restart(database_url):
    async with stdio(database_url) as client:
        session = await call(client, "create_session", name="long chat")
        sid = session["id"]
        for start in range(0, 120, 40):
            batch = [
                {"role": "user" if i % 2 else "assistant", "text_content": f"turn {i}"}
                for i in range(start, start + 40)
            ]
            await call(client, "add_messages", session_id=sid, messages=batch)
        await call(client, "add_message", session_id=sid, role="tool", tool_outputs={"temperature": 21})
        seen, cursor = [], None
        while True:
            arguments = {"session_id": sid, "limit": 25} | ({"cursor": cursor} if cursor else {})
            page = await call(client, "get_session_history", **arguments)
            seen = page["messages"] + seen
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [m["text_content"] for m in seen[:120]] == [f"turn {i}" for i in range(120)]
        assert len(seen) == 121 and len({m["id"] for m in seen}) == 121

        colour = await call(client, "store_memory", content="Favourite colour is green", name="colour")
        updated = await call(client, "store_memory", content="Favourite colour is teal", name="colour")
        assert updated["id"] == colour["id"] and updated["outcome"] == "updated"
        doomed = await call(client, "store_memory", content="Temporary note about parking")
        await call(client, "store_memory", content="Allergic to peanuts", scope="agent")
        found = await call(client, "search_memories", query="what colour does the user like?")
        assert found["results"][0]["id"] == colour["id"] and "teal" in found["results"][0]["content"]
        await call(client, "delete_memory", memory_id=doomed["id"])
        # The server keeps serving after errors.
        assert "not a valid id" in await call_error(client, "get_memory", memory_id="nope")

    async with stdio(database_url) as client:  # a new process on the same database
        listed = await call(client, "list_sessions")
        assert listed["sessions"][0]["id"] == sid and listed["sessions"][0]["message_count"] == 121
        memories = await call(client, "list_memories")
        assert sorted(m["content"] for m in memories["memories"]) == ["Allergic to peanuts", "Favourite colour is teal"]
        assert (await call(client, "search_history", query="turn 117"))["results"][0]["text_content"] == "turn 117"
        assert "No memory" in await call_error(client, "get_memory", memory_id=doomed["id"])


async def test_stdout_carries_only_protocol(tmp_path):
    """Logs (at DEBUG, the chattiest level) go to stderr; every stdout line is a JSON-RPC message."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'quiet.db'}"
    request = (
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
        '"capabilities":{},"clientInfo":{"name":"t","version":"0"}}}\n'
        '{"jsonrpc":"2.0","method":"notifications/initialized"}\n'
        '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"store_memory","arguments":{"content":"x"}}}\n'
        '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_memory","arguments":{"memory_id":"bad"}}}\n'
    )
    # stderr goes to a file: an unread pipe would fill up with DEBUG logs and block the server.
    log_file = (tmp_path / "stderr.log").open("w")
    process = subprocess.Popen(
        [SCRIPT, "--database-url", url, "--log-level", "DEBUG"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log_file,
        text=True,
    )
    try:
        process.stdin.write(request)
        process.stdin.flush()
        responses, notifications = [], []
        while len(responses) < 3:
            line = process.stdout.readline()
            assert line, "server closed stdout early"
            message = json.loads(line)  # every line is JSON-RPC
            (responses if "id" in message else notifications).append(message)
    finally:
        process.stdin.close()
        process.wait(timeout=20)

    # Requests are handled concurrently, so responses may come in any order; a write may be followed by a
    # notification (list_changed), before or after its response.
    messages = sorted(responses, key=lambda m: m["id"])
    assert [m["id"] for m in messages] == [1, 2, 3]
    assert messages[2]["result"]["isError"] is True
    notifications += [json.loads(line) for line in process.stdout.read().splitlines()]
    assert all("id" not in m and m["method"].startswith("notifications/") for m in notifications), notifications
    process.stdout.close()
    log_file.close()
    process.stdout = None
    assert "DEBUG" in (tmp_path / "stderr.log").read_text()  # the logs went to stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "server exited before listening"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            await anyio.sleep(0.1)
    raise TimeoutError(f"server did not listen on {port}")


async def test_http_scenario_with_per_request_identity(database_url):
    port = _free_port()
    env = os.environ | {
        "AGENT_MEMORY_HTTP_TOKENS": '{"ada-token": "ada@example.com", "bob-token": {"user": "bob@example.com"}}'
    }
    process = subprocess.Popen(
        [SCRIPT, "--transport", "streamable-http", "--port", str(port), "--database-url", database_url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        await _wait_for_port(port, process)

        @asynccontextmanager
        async def as_user(token: str):
            # The caller owns an http_client it passes in, so it closes it too.
            async with (
                httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
                Client(streamable_http_client(url, http_client=http)) as client,
            ):
                yield client

        async with as_user("ada-token") as ada:
            sid = (await call(ada, "create_session", name="over http"))["id"]
            await call(
                ada,
                "add_messages",
                session_id=sid,
                messages=[{"role": "user", "text_content": f"m{i}"} for i in range(30)],
            )
            page = await call(ada, "get_session_history", session_id=sid, limit=10)
            assert [m["text_content"] for m in page["messages"]] == [f"m{i}" for i in range(20, 30)]
            stored = await call(ada, "store_memory", content="Ada keeps bees", name="hobby")
            assert (await call(ada, "search_memories", query="bees"))["results"][0]["id"] == stored["id"]
        async with as_user("bob-token") as bob:
            assert (await call(bob, "search_memories", query="bees"))["results"] == []
            assert "No session" in await call_error(bob, "get_session_history", session_id=sid)
        for token in (None, "wrong-token"):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with httpx2.AsyncClient(headers=headers) as raw:
                response = await raw.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            assert response.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_http_refuses_a_public_bind_without_tokens(tmp_path):
    result = subprocess.run(
        [
            SCRIPT,
            "--transport",
            "streamable-http",
            "--host",
            "0.0.0.0",
            "--database-url",
            f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env=os.environ | {"AGENT_MEMORY_HTTP_TOKENS": ""},
    )
    assert result.returncode == 2 and "refusing" in result.stderr and result.stdout == ""


def test_help_documents_the_environment():
    result = subprocess.run([SCRIPT, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    for needle in (
        "--transport",
        "--database-url",
        "--user",
        "--agent",
        "AGENT_MEMORY_DATABASE_URL",
        "AGENT_MEMORY_HTTP_TOKENS",
    ):
        assert needle in result.stdout
