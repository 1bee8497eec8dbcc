"""The console's JSON API on both backends, in process: the real HTTP app (build_http_app, its lifespan opening the
real database) driven through httpx2's ASGI transport, with static tokens for ada and bob and a managed read-only
token for ada. Every endpoint; other users' ids are "not found" exactly like random ids; a read-only credential
reads and is refused every write, leaving the data as it was; bad input gets one sentence and a status."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from mcp_server.config import Settings
from mcp_server.http import build_http_app
from repository.models import NewMessage
from repository.operations import Operations

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
TOKENS = {
    "ada-secret": {"user": "ada@example.com", "agent": "coder"},
    "bob-secret": {"user": "bob@example.com", "agent": "writer"},
}
ADA = {"authorization": "Bearer ada-secret"}
BOB = {"authorization": "Bearer bob-secret"}
INTERNALS = ("Traceback", "sqlalchemy", "SELECT", "asyncpg", "sqlite3", "Error:", "Exception")


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan (start-up before the block, shut-down after) as a server would."""
    to_app, app_inbox = anyio.create_memory_object_stream[dict[str, Any]](4)
    app_outbox, from_app = anyio.create_memory_object_stream[dict[str, Any]](4)
    async with to_app, app_inbox, app_outbox, from_app, anyio.create_task_group() as tasks:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        tasks.start_soon(app, scope, app_inbox.receive, app_outbox.send)
        await to_app.send({"type": "lifespan.startup"})
        started = await from_app.receive()
        assert started["type"] == "lifespan.startup.complete", started
        try:
            yield
        finally:
            await to_app.send({"type": "lifespan.shutdown"})
            await from_app.receive()


@asynccontextmanager
async def console(database_url: str, **settings: Any) -> AsyncIterator[httpx2.AsyncClient]:
    options = {"transport": "streamable-http", "http_tokens": TOKENS, "user": "ada@example.com"} | settings
    app = build_http_app(Settings(database_url=database_url, **options))
    async with lifespan(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as client:
            yield client


async def read_only_token(database_url: str) -> str:
    ops = await Operations.open(database_url)
    try:
        secret, _ = await ops.credentials.create("ada@example.com", "coder", read_only=True)
        return secret
    finally:
        await ops.close()


async def ok(response: httpx2.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def refused(response: httpx2.Response, status: int, *words: str) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error", "message"}, body
    message: str = body["message"]
    assert not any(marker in message for marker in INTERNALS), message
    for word in words:
        assert word in message, message
    return message


async def test_memories_every_endpoint(database_url: str) -> None:
    async with console(database_url) as http:
        me = await ok(await http.get("/console/api/whoami", headers=ADA))
        assert (me["user"], me["agent"], me["read_only"]) == ("ada@example.com", "coder", False)
        made = await ok(
            await http.post(
                "/console/api/memories",
                headers=ADA,
                json={"content": "Ada prefers green tea in the morning", "name": "drink", "metadata": {"k": 1}},
            ),
            201,
        )
        assert made["outcome"] == "created" and made["memory"]["scope"] == "user"
        mid = made["memory"]["id"]
        again = await ok(
            await http.post(
                "/console/api/memories",
                headers=ADA,
                json={"content": "Ada prefers green tea in the morning", "name": "drink", "metadata": {"k": 1}},
            )
        )
        assert again["outcome"] == "unchanged"
        for i in range(3):
            await ok(await http.post("/console/api/memories", headers=ADA, json={"content": f"note {i}"}), 201)
        await ok(
            await http.post("/console/api/memories", headers=ADA, json={"content": "team rule", "scope": "agent"}), 201
        )

        page = await ok(await http.get("/console/api/memories?limit=2", headers=ADA))
        assert [m["content"] for m in page["memories"]] == ["team rule", "note 2"]  # newest first
        assert page["total"] == 5 and page["next_cursor"]
        rest = await ok(await http.get(f"/console/api/memories?limit=2&cursor={page['next_cursor']}", headers=ADA))
        assert [m["content"] for m in rest["memories"]] == ["note 1", "note 0"]
        agent_only = await ok(await http.get("/console/api/memories?scope=agent", headers=ADA))
        assert [m["content"] for m in agent_only["memories"]] == ["team rule"]

        found = await ok(await http.get("/console/api/memories/search?q=teas", headers=ADA))
        assert found["results"][0]["id"] == mid
        assert ["tea", True] in found["results"][0]["parts"]
        assert "".join(text for text, _ in found["results"][0]["parts"]) == "Ada prefers green tea in the morning"
        none = await ok(await http.get("/console/api/memories/search?q=tea&scope=agent", headers=ADA))
        assert none["results"] == []

        edited = await ok(
            await http.patch(
                f"/console/api/memories/{mid}",
                headers=ADA,
                json={
                    "content": "Ada prefers black coffee",
                    "name": "morning drink",
                    "expires_at": "2999-01-01T00:00:00Z",
                },
            )
        )
        assert edited["memory"]["content"] == "Ada prefers black coffee"
        assert edited["memory"]["name"] == "morning drink"
        assert edited["memory"]["expires_at"].startswith("2999-01-01")
        assert edited["memory"]["metadata"] == {"k": 1}  # fields not sent are kept
        cleared = await ok(
            await http.patch(f"/console/api/memories/{mid}", headers=ADA, json={"name": None, "expires_at": None})
        )
        assert cleared["memory"]["name"] is None and "expires_at" not in cleared["memory"]
        coffee = await ok(await http.get("/console/api/memories/search?q=coffee", headers=ADA))
        assert coffee["results"][0]["id"] == mid  # the edit is re-indexed
        got = await ok(await http.get(f"/console/api/memories/{mid}", headers=ADA))
        assert got["memory"]["content"] == "Ada prefers black coffee"

        gone = await ok(await http.delete(f"/console/api/memories/{mid}", headers=ADA))
        assert gone == {"id": mid, "deleted": True, "name": None}
        refused(await http.get(f"/console/api/memories/{mid}", headers=ADA), 404, "No memory")


async def test_other_users_ids_are_not_found_like_random_ones(database_url: str) -> None:
    async with console(database_url) as http:
        made = await ok(
            await http.post("/console/api/memories", headers=ADA, json={"content": "Ada's locker is 4417"}), 201
        )
        mid = made["memory"]["id"]
        random_id = str(uuid.uuid4())
        for target in (mid, random_id):
            for method, body in (("GET", None), ("PATCH", {"content": "hacked"}), ("DELETE", None)):
                answer = await http.request(method, f"/console/api/memories/{target}", headers=BOB, json=body)
                message = refused(answer, 404)
                assert message == f"No memory with id {target}.", message
        assert (await ok(await http.get("/console/api/memories", headers=BOB)))["memories"] == []
        assert (await ok(await http.get("/console/api/memories/search?q=locker", headers=BOB)))["results"] == []
        kept = await ok(await http.get(f"/console/api/memories/{mid}", headers=ADA))
        assert kept["memory"]["content"] == "Ada's locker is 4417"


async def seed_session(database_url: str, count: int) -> str:
    ops = await Operations.open(database_url)
    try:
        ada = await ops.identity.actor("ada@example.com", "coder")
        chat = await ops.conversations.start_session(ada, name="Lisbon trip", platform="cli")
        messages = [NewMessage(role="user", text_content=f"message {i} about the tram") for i in range(count)]
        messages.append(NewMessage(role="assistant", tool_calls=[{"name": "map", "arguments": {"q": "Alfama"}}]))
        await ops.conversations.append(ada, chat.id, messages)
        return str(chat.id)
    finally:
        await ops.close()


async def test_sessions_transcripts_and_history_search(database_url: str) -> None:
    sid = await seed_session(database_url, 4)
    async with console(database_url) as http:
        listed = await ok(await http.get("/console/api/sessions", headers=ADA))
        assert [(s["id"], s["name"], s["message_count"]) for s in listed["sessions"]] == [(sid, "Lisbon trip", 5)]
        first = await ok(await http.get(f"/console/api/sessions/{sid}?limit=2", headers=ADA))
        assert first["session"]["name"] == "Lisbon trip"
        assert [m.get("text_content") for m in first["messages"]] == ["message 3 about the tram", None]
        assert first["messages"][1]["tool_calls"] == [{"name": "map", "arguments": {"q": "Alfama"}}]
        older = await ok(
            await http.get(f"/console/api/sessions/{sid}?limit=2&cursor={first['next_cursor']}", headers=ADA)
        )
        assert older["session"] is None
        assert [m["text_content"] for m in older["messages"]] == [
            "message 1 about the tram",
            "message 2 about the tram",
        ]
        found = await ok(await http.get("/console/api/sessions/search?q=trams", headers=ADA))
        # The four that say it, then the assistant's reply beside them (neighbours lend their words).
        assert len(found["results"]) == 5 and all(r["session_id"] == sid for r in found["results"])
        assert ["tram", True] in found["results"][0]["parts"]
        narrowed = await ok(
            await http.get(f"/console/api/sessions/search?q=tram&session_id={sid}&limit=1", headers=ADA)
        )
        assert len(narrowed["results"]) == 1

        refused(await http.get(f"/console/api/sessions/{sid}", headers=BOB), 404, "No session")
        assert (await ok(await http.get("/console/api/sessions", headers=BOB)))["sessions"] == []
        assert (await ok(await http.get("/console/api/sessions/search?q=tram", headers=BOB)))["results"] == []

        overview = await ok(await http.get("/console/api/overview", headers=ADA))
        assert (overview["sessions"], overview["messages"], overview["memories"]) == (1, 5, 0)
        assert overview["database_bytes"] > 0 and overview["schema_revision"]
        assert (await ok(await http.get("/console/api/overview", headers=BOB)))["messages"] == 0


async def test_a_read_only_credential_reads_and_is_refused_every_write(database_url: str) -> None:
    secret = await read_only_token(database_url)
    ro = {"authorization": f"Bearer {secret}"}
    async with console(database_url) as http:
        made = await ok(
            await http.post("/console/api/memories", headers=ADA, json={"content": "keep me", "name": "k"}), 201
        )
        mid = made["memory"]["id"]
        me = await ok(await http.get("/console/api/whoami", headers=ro))
        assert me["read_only"] is True and me["user"] == "ada@example.com"
        assert [m["id"] for m in (await ok(await http.get("/console/api/memories", headers=ro)))["memories"]] == [mid]
        for method, path, body in (
            ("POST", "/console/api/memories", {"content": "new"}),
            ("PATCH", f"/console/api/memories/{mid}", {"content": "changed"}),
            ("DELETE", f"/console/api/memories/{mid}", None),
        ):
            refused(await http.request(method, path, headers=ro, json=body), 403, "read-only")
        after = await ok(await http.get("/console/api/memories", headers=ADA))
        assert [(m["id"], m["content"]) for m in after["memories"]] == [(mid, "keep me")]


async def test_bad_input_gets_one_sentence_and_a_status(database_url: str) -> None:
    async with console(database_url, max_content_bytes=1_000) as http:
        assert (await http.get("/console/api/memories")).status_code == 401
        answer = await http.get("/console/api/memories", headers={"authorization": "Bearer wrong"})
        refused(answer, 401, "token")
        assert answer.headers["www-authenticate"] == "Bearer"
        refused(await http.get("/console/api/memories/not-an-id", headers=ADA), 400, "not a valid id")
        refused(await http.get("/console/api/memories?limit=0", headers=ADA), 400, "limit")
        refused(await http.get("/console/api/memories?limit=abc", headers=ADA), 400, "limit")
        refused(await http.get("/console/api/memories?scope=everyone", headers=ADA), 400, "scope")
        refused(await http.get("/console/api/memories?cursor=%%%", headers=ADA), 400)
        refused(await http.get("/console/api/memories/search?q=", headers=ADA), 400)
        refused(await http.get("/console/api/memories/search?q=x&limit=51", headers=ADA), 400, "50")
        post = "/console/api/memories"
        refused(await http.post(post, headers=ADA, content=b"content=x"), 415, "JSON")
        json_type = {**ADA, "content-type": "application/json"}
        refused(await http.post(post, headers=json_type, content=b"{not json"), 400, "JSON")
        refused(await http.post(post, headers=json_type, content=b"[1]"), 400, "object")
        refused(await http.post(post, headers=ADA, json={"content": "x", "owner": "bob"}), 400, "owner")
        refused(await http.post(post, headers=ADA, json={"content": "   "}), 400, "empty")
        refused(await http.post(post, headers=ADA, json={"content": "x" * 1_001}), 400, "limit of 1000 bytes")
        refused(await http.post(post, headers=ADA, json={"content": "x", "scope": "global"}), 400, "scope")
        refused(
            await http.post(post, headers=ADA, json={"content": "x", "expires_at": "2030-01-01T00:00"}),
            400,
            "time zone",
        )
        refused(await http.post(post, headers=json_type, content=b'{"content": "' + b"x" * 9_000_000 + b'"}'), 413)
        one = await ok(await http.post(post, headers=ADA, json={"content": "one", "name": "a"}), 201)
        await ok(await http.post(post, headers=ADA, json={"content": "two", "name": "b"}), 201)
        mid = one["memory"]["id"]
        refused(await http.patch(f"{post}/{mid}", headers=ADA, json={}), 400, "Nothing to change")
        refused(await http.patch(f"{post}/{mid}", headers=ADA, json={"content": ""}), 400, "empty")
        refused(await http.patch(f"{post}/{mid}", headers=ADA, json={"name": "b"}), 409, "already taken")
        refused(await http.get("/console/api/nothing-here", headers=ADA), 404)
        assert (await ok(await http.get(f"{post}/{mid}", headers=ADA)))["memory"]["name"] == "a"


async def test_security_headers_static_pages_and_loopback_checks(database_url: str) -> None:
    async with console(database_url) as http:
        home = await http.get("/console")
        assert home.status_code == 307 and home.headers["location"] == "/console/"
        page = await http.get("/console/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        for answer in (page, await http.get("/console/api/whoami", headers=ADA), await http.get("/console/nope")):
            csp = answer.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["referrer-policy"] == "no-referrer"
            assert answer.headers["x-frame-options"] == "DENY"
        html = page.text
        assert '<script type="module" src="app.js"></script>' in html and html.count("<script") == 1
        assert " style=" not in html and " onclick=" not in html and "http" not in html.split("<body>")[0]
        script = await http.get("/console/app.js")
        assert script.headers["content-type"].startswith("text/javascript") and "innerHTML" not in script.text
        assert (await http.get("/console/style.css")).headers["content-type"].startswith("text/css")
        # DNS rebinding: a page of another site that resolves to 127.0.0.1 is refused by its Host.
        rebound = await http.get("/console/api/whoami", headers={**ADA, "host": "evil.example:8765"})
        assert rebound.status_code == 421
        cross = await http.post(
            "/console/api/memories", headers={**ADA, "origin": "https://evil.example"}, json={"content": "x"}
        )
        assert cross.status_code == 403
        assert (await ok(await http.get("/console/api/memories", headers=ADA)))["memories"] == []
        # /mcp is still the MCP app behind the console mount.
        assert (await http.post("/mcp", json={})).status_code == 401


async def test_an_open_loopback_server_acts_for_the_configured_user(database_url: str) -> None:
    async with console(database_url, http_tokens={}, user="carol@example.com", agent="home") as http:
        me = await ok(await http.get("/console/api/whoami"))
        assert (me["user"], me["agent"], me["read_only"]) == ("carol@example.com", "home", False)


@pytest.mark.slow
def test_the_console_command_serves_the_console_only_with_its_secret(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "agent-memory-mcp"
    db = tmp_path / "memory.db"
    command = [str(script), "console", "--no-browser", "--database-url", f"sqlite+aiosqlite:///{db}", "--user", "dee"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            assert "Memory console for dee" in line, line
            url = line.split(": ", 1)[1].strip()
            base, _, fragment = url.partition("#token=")
            assert base.startswith("http://127.0.0.1:") and base.endswith("/console/") and fragment
            root = base.removesuffix("/console/")
            with httpx2.Client(timeout=30) as http:
                me = http.get(f"{root}/console/api/whoami", headers={"authorization": f"Bearer {fragment}"})
                assert me.status_code == 200 and me.json()["user"] == "dee", me.text
                assert http.get(f"{root}/console/api/whoami").status_code == 401
                assert http.post(f"{root}/mcp", json={}).status_code == 404
                assert http.get(base).status_code == 200
        finally:
            server.terminate()
            server.wait(timeout=20)


@pytest.mark.slow
def test_the_stdio_start_up_path_does_not_load_the_console() -> None:
    code = (
        "import sys; import mcp_server.cli, mcp_server.app; "
        "loaded = sorted(m for m in sys.modules if m.startswith('mcp_server.console')); assert not loaded, loaded"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_the_pages_ship_as_package_data() -> None:
    from importlib import resources

    folder = resources.files("mcp_server.console") / "static"
    assert {"index.html", "app.js", "style.css"} <= {entry.name for entry in folder.iterdir()}
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"mcp_server.console" = ["static/*.html", "static/*.js", "static/*.css"]' in pyproject


async def test_a_read_only_memory_cannot_be_changed_or_deleted_from_the_console(database_url: str) -> None:
    from repository import MemoryCreate, create_memory

    ops = await Operations.open(database_url)
    try:
        ada = await ops.identity.actor("ada@example.com", "coder")
        async with ops.database.transaction() as s:
            pinned = await create_memory(
                s,
                MemoryCreate(
                    content="Set by the operator", user_id=ada.user_id, agent_id=ada.agent_id, access="read_only"
                ),
            )
    finally:
        await ops.close()
    async with console(database_url) as http:
        shown = await ok(await http.get(f"/console/api/memories/{pinned.id}", headers=ADA))
        assert shown["memory"]["access"] == "read_only"
        refused(
            await http.patch(f"/console/api/memories/{pinned.id}", headers=ADA, json={"content": "x"}), 403, "read-only"
        )
        refused(await http.delete(f"/console/api/memories/{pinned.id}", headers=ADA), 403, "read-only")
        kept = await ok(await http.get(f"/console/api/memories/{pinned.id}", headers=ADA))
        assert kept["memory"]["content"] == "Set by the operator"
