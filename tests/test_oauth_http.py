"""OAuth over HTTP: the server as a resource server of a local issuer the test starts (keys made here)."""

from __future__ import annotations

import os
import subprocess
import time

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.mcp_helpers import call, call_error
from tests.oauth_issuer import LocalIssuer, generate_key
from tests.test_e2e import SCRIPT, _free_port, _wait_for_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

TOOLS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}


@pytest.fixture
async def oauth_server(tmp_path):
    port = _free_port()
    public = f"http://127.0.0.1:{port}/mcp"
    with LocalIssuer(audience=public) as issuer:
        env = os.environ | {
            "AGENT_MEMORY_OAUTH_ISSUER": issuer.issuer,
            "AGENT_MEMORY_PUBLIC_URL": public,
            "AGENT_MEMORY_OAUTH_USER_CLAIM": "email",
            "AGENT_MEMORY_OAUTH_AGENT_CLAIM": "agent",
        }
        url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        cmd = [SCRIPT, "--transport", "streamable-http", "--port", str(port), "--database-url", url]
        process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await _wait_for_port(port, process)
            yield issuer, public, url
        finally:
            process.terminate()
            process.wait(timeout=20)


def _claims(email: str, **extra: object) -> dict[str, object]:
    return {"sub": f"sub-{email}", "email": email, "email_verified": True, **extra}


async def test_metadata_and_the_401_point_clients_at_the_issuer(oauth_server):
    issuer, public, _ = oauth_server
    base = public.rsplit("/mcp", 1)[0]
    async with httpx2.AsyncClient(timeout=30) as http:
        metadata = (await http.get(f"{base}/.well-known/oauth-protected-resource/mcp")).json()
        assert metadata["resource"] == public
        assert [s.rstrip("/") for s in metadata["authorization_servers"]] == [issuer.issuer]
        refused = await http.post(public, json=TOOLS_LIST, headers=HEADERS)
        assert refused.status_code == 401
        challenge = refused.headers["www-authenticate"]
        assert challenge.startswith("Bearer ") and "resource_metadata=" in challenge
        assert "/.well-known/oauth-protected-resource/mcp" in challenge


async def test_a_good_jwt_acts_for_its_claims_and_bad_ones_get_401(oauth_server):
    issuer, public, _ = oauth_server
    ada = issuer.mint(_claims("ada@example.com", agent="coder"))
    bob = issuer.mint(_claims("bob@example.com"))
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {ada}"}, timeout=30) as http,
        Client(streamable_http_client(public, http_client=http)) as client,
    ):
        stored = await call(client, "store_memory", content="Ada keeps bees in Kent")
        assert (await call(client, "search_memories", query="bees"))["results"][0]["id"] == stored["id"]
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {bob}"}, timeout=30) as http,
        Client(streamable_http_client(public, http_client=http)) as client,
    ):
        assert (await call(client, "search_memories", query="bees"))["results"] == []
        assert "No memory" in await call_error(client, "get_memory", memory_id=stored["id"])
    now = int(time.time())
    bad = {
        "wrong audience": issuer.mint(_claims("ada@example.com", aud="https://other.example.com/mcp")),
        "wrong issuer": issuer.mint(_claims("ada@example.com", iss="https://evil.example.com")),
        "expired": issuer.mint(_claims("ada@example.com", exp=now - 3600, iat=now - 7200)),
        "foreign key": issuer.mint(_claims("ada@example.com"), key=generate_key("RS256")),
        "alg none": issuer.mint(_claims("ada@example.com"), alg="none"),
        "HS256 with the public key": issuer.mint(_claims("ada@example.com"), key=issuer.public_pem(), alg="HS256"),
        "no user claim": issuer.mint({"sub": "someone"}),
        "truncated": ada[:-8],
    }
    async with httpx2.AsyncClient(timeout=30) as http:
        for label, token in bad.items():
            response = await http.post(public, json=TOOLS_LIST, headers=HEADERS | {"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, label
        good = await http.post(public, json=TOOLS_LIST, headers=HEADERS | {"Authorization": f"Bearer {ada}"})
        assert good.status_code == 200


async def test_managed_tokens_work_beside_jwts(oauth_server):
    issuer, public, url = oauth_server
    created = subprocess.run(
        [SCRIPT, "token", "create", "--user", "ada@example.com", "--agent", "coder", "--database-url", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    secret = created.stdout.strip()
    jwt = issuer.mint(_claims("ada@example.com", agent="coder"))
    contents = []
    for token in (secret, jwt):
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
            Client(streamable_http_client(public, http_client=http), mode="legacy") as client,
        ):
            await call(client, "store_memory", content=f"stored with a {token[:4]} credential", name=token[:4])
            found = await call(client, "list_memories")
            contents.append(sorted(m["content"] for m in found["memories"]))
    # Both credentials act for the same (user, agent): the second sees what the first stored.
    assert len(contents[1]) == 2 and contents[0][0] in contents[1]
    reader = issuer.mint(_claims("ada@example.com", agent="coder", scope="memory:read"))
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {reader}"}, timeout=30) as http,
        Client(streamable_http_client(public, http_client=http)) as client,
    ):
        assert "read-only" in await call_error(client, "store_memory", content="not allowed")
        assert len((await call(client, "list_memories"))["memories"]) == 2
