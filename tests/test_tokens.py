"""Managed tokens: the operations, the CLI's contract, the verifier, and an HTTP server's edge (401, 413, 429)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import anyio
import httpx2
import pytest

from mcp_server import auth
from mcp_server.auth import CredentialVerifier, credential_of
from mcp_server.config import Settings
from mcp_server.state import AppState, StateSlot
from repository import Operations
from repository.errors import NotFoundError, PermissionDeniedError
from tests.test_e2e import SCRIPT, _free_port, _wait_for_port

pytestmark = pytest.mark.anyio

LIST_FIELDS = {"id", "user", "agent", "read_only", "expires_at", "revoked", "created_at", "last_used_at"}


@pytest.fixture
async def ops(database_url):
    operations = await Operations.open(database_url)
    yield operations
    await operations.close()


async def test_a_token_is_stored_hashed_and_verifies_until_revoked(ops):
    secret, info = await ops.credentials.create("ada@example.com", "coder", note="laptop")
    assert secret.startswith("amm_") and len(secret) >= 40
    verified = await ops.credentials.verify(secret)
    assert verified is not None and (verified.user, verified.agent, verified.read_only) == (
        "ada@example.com",
        "coder",
        False,
    )
    async with ops.database.transaction() as session:
        from sqlalchemy import text

        stored = (await session.execute(text("SELECT secret_hash FROM api_tokens"))).scalars().all()
    assert stored and secret not in stored[0] and len(stored[0]) == 64
    assert await ops.credentials.verify(secret + "x") is None
    assert await ops.credentials.verify(secret[:-1]) is None
    revoked = await ops.credentials.revoke(info.id)
    assert revoked.revoked and await ops.credentials.verify(secret) is None
    assert (await ops.credentials.revoke(info.id)).revoked_at == revoked.revoked_at  # idempotent
    with pytest.raises(NotFoundError):
        await ops.credentials.revoke(info.id.__class__(int=0))


async def test_an_expired_token_is_refused_and_use_is_recorded(ops):
    short, _ = await ops.credentials.create("ada@example.com", expires_in=timedelta(seconds=1))
    lasting, info = await ops.credentials.create("ada@example.com")
    assert await ops.credentials.verify(short) is not None
    assert [t.last_used_at for t in await ops.credentials.list() if t.id == info.id] == [None]
    assert await ops.credentials.verify(lasting) is not None
    assert [t.last_used_at is not None for t in await ops.credentials.list() if t.id == info.id] == [True]
    await anyio.sleep(1.2)
    assert await ops.credentials.verify(short) is None
    assert await ops.credentials.verify(lasting) is not None


async def test_a_read_only_actor_cannot_write_but_can_read(ops):
    writer = await ops.identity.actor("ada@example.com", "coder")
    await ops.memories.remember(writer, "Ada keeps bees", name="hobby")
    reader = await ops.identity.actor("ada@example.com", "coder", read_only=True)
    assert reader.user_id == writer.user_id and reader.read_only
    for attempt in (
        ops.memories.remember(reader, "overwrite", name="hobby"),
        ops.conversations.start_session(reader, name="nope"),
    ):
        with pytest.raises(PermissionDeniedError, match="read-only"):
            await attempt
    found = await ops.memories.recall(reader, "bees")
    assert [hit.memory.content for hit in found.hits] == ["Ada keeps bees"]


@asynccontextmanager
async def verifying(settings: Settings) -> AsyncIterator[tuple[Operations, CredentialVerifier]]:
    """An HTTP server's verifier over its opened operations, as the composition root wires them."""
    state = AppState(settings, authenticated=True)
    slot = StateSlot()
    slot.state = state
    ops = await state.open_now()
    try:
        yield ops, CredentialVerifier(settings, slot)
    finally:
        await state.close()


async def test_the_verifier_caches_at_most_five_seconds(database_url, monkeypatch):
    settings = Settings(database_url=database_url, transport="streamable-http", agent="server-agent")
    async with verifying(settings) as (ops, verifier):
        assert await verifier.is_open()
        secret, info = await ops.credentials.create("ada@example.com", read_only=True)
        access = await verifier.verify_token(secret)
        credential = credential_of(access) if access else None
        assert credential == auth.Credential("ada@example.com", "server-agent", read_only=True)
        assert access is not None and access.token != secret  # the secret is not kept in the access token
        await ops.credentials.revoke(info.id)
        assert await verifier.verify_token(secret) is not None  # cached
        monkeypatch.setattr(auth, "CACHE_S", 0.0)
        assert await verifier.verify_token(secret) is None
        assert not await verifier.is_open()  # a revoked token still closes a loopback server
        assert await verifier.verify_token("garbage") is None and await verifier.verify_token("") is None


async def test_a_stream_asks_whether_its_credential_still_holds(database_url, monkeypatch):
    settings = Settings(database_url=database_url, transport="streamable-http", http_tokens={"static-secret": "bob"})
    async with verifying(settings) as (ops, verifier):
        monkeypatch.setattr(auth, "CACHE_S", 0.0)
        secret, info = await ops.credentials.create("ada@example.com", expires_in=timedelta(hours=1))
        access = await verifier.verify_token(secret)
        static = await verifier.verify_token("static-secret")
        assert access is not None and static is not None
        assert await verifier.still_valid(access) and await verifier.still_valid(static)
        assert not await verifier.still_valid(access.model_copy(update={"expires_at": 1}))  # past its expiry
        await ops.credentials.revoke(info.id)
        assert not await verifier.still_valid(access)
        assert await verifier.still_valid(static)  # static tokens last as long as the server's configuration
        forged = access.model_copy(update={"client_id": "token:not-a-uuid"})
        assert not await verifier.still_valid(forged)


def _cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, *args, "--database-url", url], capture_output=True, text=True, timeout=60, env=os.environ.copy()
    )


@pytest.mark.slow
def test_cli_prints_the_secret_alone_once_and_lists_without_it(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    created = _cli("token", "create", "--user", "ada@example.com", "--read-only", "--expires-in", "30d", url=url)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("amm_") and "\n" not in secret
    listed = _cli("token", "list", "--json", url=url)
    rows = json.loads(listed.stdout)
    assert len(rows) == 1 and set(rows[0]) >= LIST_FIELDS
    assert rows[0]["read_only"] is True and rows[0]["revoked"] is False and rows[0]["user"] == "ada@example.com"
    assert secret not in listed.stdout + listed.stderr + created.stderr
    revoked = _cli("token", "revoke", rows[0]["id"], url=url)
    assert revoked.returncode == 0 and json.loads(_cli("token", "list", "--json", url=url).stdout)[0]["revoked"]
    for bad in (["token", "revoke", "not-an-id"], ["token", "create", "--user", "a", "--expires-in", "soon"]):
        failed = _cli(*bad, url=url)
        assert failed.returncode != 0 and "Traceback" not in failed.stderr and failed.stdout == ""


TOOLS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
INIT_HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}


@pytest.mark.slow
async def test_http_edge_closes_on_the_first_token_and_limits_bodies_and_rates(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    port = _free_port()
    env = os.environ | {"AGENT_MEMORY_HTTP_RATE_LIMIT": "5", "AGENT_MEMORY_MAX_CONTENT_BYTES": "10000"}
    cmd = [SCRIPT, "--transport", "streamable-http", "--port", str(port), "--database-url", url]
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}/mcp"
    try:
        await _wait_for_port(port, process)
        async with httpx2.AsyncClient(timeout=30, headers=INIT_HEADERS) as http:
            # Open: a loopback server with no credential acts for the configured user.
            assert (await http.post(endpoint, json=TOOLS_LIST)).status_code == 200
            created = await anyio.to_thread.run_sync(
                lambda: _cli("token", "create", "--user", "ada@example.com", url=url)
            )
            secret = created.stdout.strip()
            await anyio.sleep(auth.CACHE_S + 0.5)
            closed = await http.post(endpoint, json=TOOLS_LIST)
            assert closed.status_code == 401 and closed.headers["www-authenticate"].startswith("Bearer")
            bearer = {"Authorization": f"Bearer {secret}"}
            assert (await http.post(endpoint, json=TOOLS_LIST, headers=bearer)).status_code == 200
            # Stateless: nothing to push outside a request, so no idle GET stream is held open.
            assert (await http.get(endpoint, headers=bearer)).status_code == 405
            for wrong in (f"Basic {secret}", f"Bearer {secret[:-2]}", "Bearer", f"bearer  {secret}x"):
                assert (await http.post(endpoint, json=TOOLS_LIST, headers={"Authorization": wrong})).status_code == 401
            assert (await http.post(f"{endpoint}?access_token={secret}", json=TOOLS_LIST)).status_code == 401
            # 8 x max content + 1 MiB is the default body limit.
            big = b"x" * (8 * 10_000 + 1_048_576 + 1)
            too_big = await http.post(endpoint, content=big, headers=bearer | {"Content-Type": "application/json"})
            assert too_big.status_code == 413
            await anyio.sleep(1.0)
            statuses = [(await http.post(endpoint, json=TOOLS_LIST, headers=bearer)) for _ in range(15)]
            limited = [r for r in statuses if r.status_code == 429]
            assert limited and int(limited[0].headers["retry-after"]) >= 1
            # A JSON-RPC error, so an MCP client shows the sentence rather than "Server returned an error response".
            assert limited[0].json()["error"]["message"].startswith("Too many requests: slow down and retry in")
            assert statuses[0].status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=20)
