"""Several replicas of the HTTP server on one PostgreSQL database, behind a round-robin proxy (tests.rr_proxy).

A load balancer without session affinity sends consecutive requests of one client to different replicas. The
default stateless transport must not care: handshake-era (initialize, Mcp-Session-Id) and 2026-07-28 clients both
write on one replica and read on another. Managed tokens live in the database, so `token revoke` reaches every
replica within the verification cache's 5 s; expiry is enforced even on cached answers; the transport refuses
every malformed credential and never reads one from the query string. With AGENT_MEMORY_HTTP_STATELESS=false the
SDK's sessions live in one process: a handshake-era client's requests that land on the other replica get 404
"Session not found" (documented and asserted below, request by request), while 2026-07-28 clients, which carry no
session, still work.

Real parts only: the console script as subprocesses, the real PostgreSQL server, a real proxy over TCP.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2
import pytest
from conftest import create_pg_database, drop_pg_database
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from repository import Database, ensure_schema
from tests.mcp_helpers import call
from tests.rr_proxy import RoundRobinProxy

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.postgres]

SCRIPT = shutil.which("agent-memory-mcp", path=str(Path(sys.executable).parent)) or "agent-memory-mcp"
STATIC_TOKEN = "static-" + uuid.uuid4().hex  # a static token for bob: the replicas are never "open loopback"
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}  # a handshake-era request a stateless server answers alone
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
CACHE_S = 5.0  # mcp_server.auth.CACHE_S: the documented bound on how late a revocation reaches a replica


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_env(**extra: str) -> dict[str, str]:
    # The module-scoped fixture runs before conftest's per-test environment cleaning: filter here too.
    return {k: v for k, v in os.environ.items() if not k.startswith("AGENT_MEMORY_")} | extra


def _cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [SCRIPT, *args], env=_clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(process: subprocess.Popen[str], timeout: float = 60) -> tuple[str, str]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"{process.args} exited {process.returncode}: {err}"
    return out, err


@dataclass(frozen=True)
class Token:
    id: str
    secret: str


def _created_token(process: subprocess.Popen[str]) -> Token:
    out, err = _finish(process)
    secret = out.strip().splitlines()[-1]  # the secret alone on the last stdout line
    token_id = err.split("created token ", 1)[1].split()[0]
    assert secret.startswith("amm_") and uuid.UUID(token_id)
    return Token(token_id, secret)


def _create_token(database_url: str, user: str, *extra: str) -> subprocess.Popen[str]:
    return _cli("token", "create", "--user", user, *extra, "--database-url", database_url)


def _wait_for_ports(processes: dict[int, subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    for port, process in processes.items():
        while True:
            assert process.poll() is None, f"the replica on port {port} exited before listening"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no replica listening on {port}") from None
                time.sleep(0.05)


@dataclass
class Cluster:
    database_url: str
    replicas: list[str]  # the stateless replicas' base URLs
    proxy: RoundRobinProxy  # in front of `replicas`
    stateful_proxy: RoundRobinProxy  # in front of two replicas with AGENT_MEMORY_HTTP_STATELESS=false
    keeper: Token  # ada's token that is never revoked
    doomed: Token  # ada's token the revocation test revokes


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    database_url = create_pg_database()  # fails (not skips) on CI when PostgreSQL is unreachable
    replicas: list[subprocess.Popen[bytes]] = []
    proxies: list[RoundRobinProxy] = []
    try:

        async def migrate() -> None:  # once, before any replica starts, so none of them races another
            database = Database(database_url)
            try:
                await ensure_schema(database.engine)
            finally:
                await database.dispose()

        anyio.run(migrate)
        # Everything below starts at once: on a 2-core machine each process spends seconds importing.
        processes: dict[int, subprocess.Popen[bytes]] = {}
        for stateless in ("true", "true", "false", "false"):
            port = _free_port()
            env = _clean_env(
                AGENT_MEMORY_HTTP_STATELESS=stateless,
                AGENT_MEMORY_HTTP_TOKENS=json.dumps({STATIC_TOKEN: "bob@example.com"}),
                AGENT_MEMORY_HTTP_RATE_LIMIT="0",
            )
            command = [SCRIPT, "--transport", "streamable-http", "--port", str(port), "--database-url", database_url]
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            replicas.append(process)
            processes[port] = process
        keeper = _create_token(database_url, "ada@example.com", "--agent", "keeper")
        doomed = _create_token(database_url, "ada@example.com", "--agent", "doomed")
        keeper_token, doomed_token = _created_token(keeper), _created_token(doomed)
        _wait_for_ports(processes)
        urls = [f"http://127.0.0.1:{port}" for port in processes]
        proxies.append(RoundRobinProxy(urls[:2]).start())
        proxies.append(RoundRobinProxy(urls[2:]).start())
        yield Cluster(database_url, urls[:2], proxies[0], proxies[1], keeper_token, doomed_token)
    finally:
        for proxy in proxies:
            proxy.stop()
        for process in replicas:
            process.terminate()
        for process in replicas:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        drop_pg_database(database_url)


@asynccontextmanager
async def mcp_client(url: str, token: str, mode: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    """A plain HTTP client for raw requests (one per test: creating one per request is slow here)."""
    async with httpx2.AsyncClient(timeout=10) as client:
        yield client


async def _post(
    http: httpx2.AsyncClient, url: str, headers: dict[str, str] | None = None, body: object = PING
) -> httpx2.Response:
    return await http.post(url, json=body, headers=MCP_HEADERS | (headers or {}))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _status(http: httpx2.AsyncClient, url: str, token: str) -> int:
    return (await _post(http, url, _bearer(token))).status_code


@pytest.mark.parametrize("mode", ["legacy", "auto"], ids=["handshake-era", "2026-07-28"])
async def test_write_then_read_through_round_robin(cluster: Cluster, mode: str):
    proxy = cluster.proxy
    proxy.reset_counts()
    async with mcp_client(proxy.url + "/mcp", cluster.keeper.secret, mode) as client:
        if mode == "legacy":
            assert client.session.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS  # initialize, Mcp-Session-Id
        else:
            assert client.session.protocol_version == "2026-07-28"
        sid = (await call(client, "create_session", name=f"round robin {mode}"))["id"]
        turns = [{"role": "user" if i % 2 else "assistant", "text_content": f"{mode} turn {i}"} for i in range(6)]
        await call(client, "add_messages", session_id=sid, messages=turns[:3])
        await call(client, "add_messages", session_id=sid, messages=turns[3:])
        history = await call(client, "get_session_history", session_id=sid)
        assert [m["text_content"] for m in history["messages"]] == [t["text_content"] for t in turns]
        stored = await call(client, "store_memory", content=f"The {mode} client keeps marmots")
        found = await call(client, "search_memories", query="marmots")
        assert found["results"][0]["id"] == stored["id"]
        listed = await call(client, "list_sessions")
        assert sid in [s["id"] for s in listed["sessions"]]
    calls = [hit for hit in proxy.log if hit.rpc == "tools/call"]
    assert len(calls) == 7 and all(hit.status == 200 for hit in calls), proxy.log
    # Both replicas served tool calls: writes made on one were read on the other.
    assert {hit.upstream for hit in calls} == {0, 1} and all(proxy.counts), proxy.counts


async def test_revoked_token_is_refused_by_every_replica_within_the_cache_bound(
    cluster: Cluster, http: httpx2.AsyncClient
):
    doomed, keeper = cluster.doomed.secret, cluster.keeper.secret
    endpoints = [url + "/mcp" for url in cluster.replicas]
    for endpoint in endpoints:
        assert await _status(http, endpoint, doomed) == 200
        assert await _status(http, endpoint, keeper) == 200
    revoke = _cli("token", "revoke", cluster.doomed.id, "--database-url", cluster.database_url)
    # While the CLI starts up and revokes, every replica keeps answering (and re-caching) the token.
    accepted_during_revoke = 0
    while revoke.poll() is None:
        for endpoint in endpoints:
            accepted_during_revoke += await _status(http, endpoint, doomed) == 200
        await anyio.sleep(0.1)
    revoked_at = time.monotonic()  # the revocation committed before the CLI exited
    _finish(revoke)
    assert accepted_during_revoke > 0
    listing = _cli("token", "list", "--json", "--database-url", cluster.database_url)  # runs while we poll

    refused_after: dict[str, float] = {}
    while len(refused_after) < len(endpoints) and time.monotonic() - revoked_at < CACHE_S + 1.0:
        for endpoint in endpoints:
            if endpoint not in refused_after and await _status(http, endpoint, doomed) == 401:
                refused_after[endpoint] = time.monotonic() - revoked_at
        await anyio.sleep(0.05)
    assert set(refused_after) == set(endpoints), f"still accepted after {CACHE_S + 1.0} s: {refused_after}"
    assert max(refused_after.values()) <= CACHE_S + 0.5, refused_after

    for endpoint in [*endpoints, cluster.proxy.url + "/mcp"]:  # refused for good, and only that token
        response = await _post(http, endpoint, _bearer(doomed))
        assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
        assert await _status(http, endpoint, keeper) == 200
        assert await _status(http, endpoint, STATIC_TOKEN) == 200
    async with mcp_client(cluster.proxy.url + "/mcp", keeper, "auto") as client:
        assert "sessions" in await call(client, "list_sessions")

    tokens = {t["id"]: t for t in json.loads(_finish(listing)[0])}
    assert tokens[cluster.doomed.id]["revoked"] is True and tokens[cluster.doomed.id]["revoked_at"]
    assert tokens[cluster.keeper.id]["revoked"] is False


async def test_expired_token_is_refused_even_from_the_cache(cluster: Cluster, http: httpx2.AsyncClient):
    # 3 s rather than 2 s: the token's clock starts when the CLI commits, and the CLI's exit on this shared
    # machine must leave time to use the token (and fill both replicas' caches) before it expires.
    lifetime = 3.0
    created = _create_token(cluster.database_url, "ada@example.com", "--expires-in", f"{lifetime:.0f}s")
    while created.poll() is None:
        await anyio.sleep(0.05)
    expires_by = time.monotonic() + lifetime  # created (committed) before the CLI exited
    token = _created_token(created).secret
    endpoints = [url + "/mcp" for url in cluster.replicas]
    for endpoint in endpoints:  # accepted, hence cached as valid, by every replica
        assert await _status(http, endpoint, token) == 200
    await anyio.sleep(max(0.0, expires_by - time.monotonic()))
    # The SDK compares whole seconds, so a cached answer may outlive the expiry by up to 1 s; not by CACHE_S.
    refused: set[str] = set()
    while len(refused) < len(endpoints) and time.monotonic() < expires_by + 1.5:
        for endpoint in endpoints:
            if await _status(http, endpoint, token) == 401:
                refused.add(endpoint)
        await anyio.sleep(0.05)
    assert refused == set(endpoints)
    for endpoint in [*endpoints, cluster.proxy.url + "/mcp"]:
        assert await _status(http, endpoint, token) == 401
    cluster.proxy.reset_counts()
    with pytest.raises(BaseExceptionGroup) as failed:  # the SDK client cannot even complete its handshake
        async with mcp_client(cluster.proxy.url + "/mcp", token, "legacy"):
            pass
    assert failed.group_contains(MCPError, depth=None), failed.value
    assert [(hit.rpc, hit.status) for hit in cluster.proxy.log] == [("initialize", 401)]


async def test_transport_refuses_malformed_credentials_and_query_string_tokens(
    cluster: Cluster, http: httpx2.AsyncClient
):
    keeper = cluster.keeper.secret
    basic = base64.b64encode(f"ada@example.com:{keeper}".encode()).decode()
    refused_headers = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer garbage"},
        {"Authorization": "Bearer amm_" + "A" * 43},
        {"Authorization": f"Bearer {keeper[:-1]}"},  # truncated by one character
        {"Authorization": f"Bearer {keeper[: len(keeper) // 2]}"},
        {"Authorization": f"Bearer {keeper}x"},
        {"Authorization": f"Bearer {keeper[:-1]}{'B' if keeper[-1] != 'B' else 'C'}"},
        {"Authorization": f"Bearer {STATIC_TOKEN[:-1]}"},
        {"Authorization": "Bearer " + "x" * 10_000},
        {"Authorization": f"Basic {basic}"},
        {"Authorization": f"Basic {keeper}"},
        {"Authorization": keeper},  # no scheme at all
        {"Authorization": f"Token {keeper}"},
    ]
    in_query = [f"?token={keeper}", f"?access_token={keeper}", f"?access_token={STATIC_TOKEN}", f"?bearer={keeper}"]
    for base in [*cluster.replicas, cluster.proxy.url]:
        endpoint = base + "/mcp"
        assert await _status(http, endpoint, keeper) == 200  # the same request with a good header is served
        for headers in refused_headers:
            response = await _post(http, endpoint, headers)
            assert response.status_code == 401, (headers, response.status_code, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer"), headers
            assert keeper not in response.text
        for query in in_query:
            response = await _post(http, endpoint + query)
            assert response.status_code == 401, (query, response.status_code, response.text)
        # A query-string token next to a bad header does not rescue it either.
        response = await _post(http, endpoint + f"?access_token={keeper}", {"Authorization": "Bearer garbage"})
        assert response.status_code == 401


async def test_stateful_replicas_lose_handshake_era_sessions_behind_round_robin(cluster: Cluster):
    """AGENT_MEMORY_HTTP_STATELESS=false keeps the SDK's sessions in the replica that answered initialize. Behind
    a balancer without affinity, every request of a handshake-era client that lands on the other replica gets
    404 "Session not found": such a deployment needs sticky sessions (or the stateless default)."""
    proxy, endpoint = cluster.stateful_proxy, cluster.stateful_proxy.url + "/mcp"
    auth = _bearer(cluster.keeper.secret)
    proxy.reset_counts()
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    # Raw requests one after another: the round robin alternates exactly, so this part is deterministic.
    async with httpx2.AsyncClient(timeout=10, headers=MCP_HEADERS | auth) as http:
        opened = await http.post(endpoint, json=initialize)
        assert opened.status_code == 200
        session = {"Mcp-Session-Id": opened.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
        statuses = []
        for i in range(4):
            response = await http.post(endpoint, json=PING | {"id": 2 + i}, headers=session)
            statuses.append(response.status_code)
            if response.status_code == 404:
                assert "Session not found" in response.text
        await http.delete(endpoint, headers=session)
    assert statuses == [404, 200, 404, 200], proxy.log
    owner = proxy.log[0].upstream
    assert [hit.upstream == owner for hit in proxy.log[1:5]] == [False, True, False, True]

    # The SDK's handshake-era client: which of its calls fail depends on where its GET stream (and the tools/list
    # it sends to learn output schemas) fall in the rotation, but every request it sends after initialize is
    # served exactly when it reaches the replica holding its session. Five calls are at least five requests, and
    # at most two GETs (one, plus one reconnection after a 404) can shift the rotation: some call must fail.
    proxy.reset_counts()
    failures: list[str] = []
    async with mcp_client(endpoint, cluster.keeper.secret, "legacy") as client:
        for _ in range(5):
            try:
                await call(client, "list_sessions")
            except MCPError as exc:
                failures.append(str(exc))
    assert proxy.log[0].rpc == "initialize" and proxy.log[0].status == 200
    owner = proxy.log[0].upstream
    served = [(hit.upstream == owner, hit.status is not None and hit.status < 400) for hit in proxy.log[1:]]
    assert all(on_owner == ok for on_owner, ok in served), proxy.log
    assert all(hit.status == 404 for hit in proxy.log if hit.upstream != owner), proxy.log
    assert failures and all(f == "Session not found" for f in failures), failures

    # A 2026-07-28 client carries no session, so the same stateful replicas serve it from either one.
    proxy.reset_counts()
    async with mcp_client(endpoint, cluster.keeper.secret, "auto") as client:
        assert client.session.protocol_version == "2026-07-28"
        stored = await call(client, "store_memory", content="Stateful replicas still serve modern clients")
        assert (await call(client, "search_memories", query="stateful replicas"))["results"][0]["id"] == stored["id"]
        await call(client, "list_memories")
    assert all(proxy.counts) and all(hit.status == 200 for hit in proxy.log), proxy.log
