"""Completions of the resource templates' ids and the resource links beside tool results, on both backends.

Completions act for the verified caller exactly as the resources do: another user's ids are never offered, in
process (configured identity) and over real HTTP (each request's bearer token). Every link points at a resource
the caller can read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from mcp import Client
from mcp_types import ResourceLink, ResourceTemplateReference

from repository import Operations
from tests.http_server import Identity, http_server
from tests.mcp_helpers import call, connect

pytestmark = pytest.mark.anyio

MEMORY = ResourceTemplateReference(uri="memory://memories/{memory_id}")
HISTORY = ResourceTemplateReference(uri="memory://sessions/{session_id}/history")


async def complete(client: Client, ref: ResourceTemplateReference, name: str, value: str) -> tuple[list[str], bool]:
    done = (await client.complete(ref, {"name": name, "value": value})).completion
    assert len(done.values) <= 100
    return done.values, bool(done.has_more)


async def _write(client: Client, tag: str) -> dict[str, list[str]]:
    """Two sessions and three memories (user, session and agent-wide) of this caller; ids newest first."""
    sessions = [(await call(client, "create_session", name=f"{tag} chat {i}"))["id"] for i in range(2)]
    memories = [
        (await call(client, "store_memory", content=f"{tag} keeps bees"))["id"],
        (await call(client, "store_memory", content=f"{tag} booked a table", session_id=sessions[0]))["id"],
        (await call(client, "store_memory", content=f"{tag} team notes", scope="agent"))["id"],
    ]
    return {"sessions": sessions[::-1], "memories": memories[::-1]}


def links(result: Any) -> list[ResourceLink]:
    assert result.content[0].type == "text", "the result's text comes first, as before"
    assert json.loads(result.content[0].text) == result.structured_content
    return [block for block in result.content[1:] if isinstance(block, ResourceLink)]


async def test_completions_offer_only_the_callers_ids_newest_first(database_url):
    async with connect(database_url) as ada, connect(database_url, user="bob@example.com") as bob:
        assert ada.server_capabilities.completions is not None
        mine = await _write(ada, "ada")
        # Bob shares ada's agent: his agent-wide note is shared (list_memories shows it); the rest is his own.
        theirs = await _write(bob, "bob")
        listed = [m["id"] for m in (await call(ada, "list_memories"))["memories"]]
        assert listed == [theirs["memories"][0], *mine["memories"]]
        assert await complete(ada, MEMORY, "memory_id", "") == (listed, False)
        assert await complete(ada, HISTORY, "session_id", "") == (mine["sessions"], False)
        assert await complete(bob, HISTORY, "session_id", "") == (theirs["sessions"], False)
        for foreign in (*theirs["sessions"], *theirs["memories"][1:]):
            for ref, name in ((MEMORY, "memory_id"), (HISTORY, "session_id")):
                assert await complete(ada, ref, name, foreign) == ([], False)
                assert await complete(ada, ref, name, foreign[:13]) == ([], False)


async def test_completions_match_the_typed_prefix(database_url):
    async with connect(database_url) as client:
        ids = await _write(client, "ada")
        for kind, ref, name in (("memories", MEMORY, "memory_id"), ("sessions", HISTORY, "session_id")):
            for wanted in ids[kind]:
                typings = (wanted[:1], wanted[:4], wanted[:9], wanted[:9].upper(), wanted[:8] + wanted[9:12], wanted)
                for typed in typings:
                    values, _ = await complete(client, ref, name, typed)
                    digits = typed.lower().replace("-", "")
                    assert wanted in values, (typed, values)
                    assert all(v.replace("-", "").startswith(digits) for v in values), (typed, values)
                    assert values == [i for i in ids[kind] if i.replace("-", "").startswith(digits)]
            for nonsense in ("zz", "g", "0" * 33, "'; --", "%"):
                assert await complete(client, ref, name, nonsense) == ([], False)
        # Other templates and arguments, and prompts, have nothing to complete.
        recent = ResourceTemplateReference(uri="memory://sessions/recent{?limit}")
        assert await complete(client, recent, "limit", "") == ([], False)
        assert await complete(client, MEMORY, "session_id", "") == ([], False)


async def test_completions_leave_out_expired_memories_and_stop_at_100(database_url):
    ops = await Operations.open(database_url)
    try:
        actor = await ops.identity.actor("ada@example.com", "tester")
        expired = (await ops.memories.remember(actor, "old", expires_at=datetime(2001, 1, 1, tzinfo=UTC))).memory
        sessions = [(await ops.conversations.start_session(actor, name=f"s{i}")).id for i in range(103)]
    finally:
        await ops.close()
    async with connect(database_url) as client:
        assert await complete(client, MEMORY, "memory_id", str(expired.id)) == ([], False)
        values, more = await complete(client, HISTORY, "session_id", "")
        listed = [s["id"] for s in (await call(client, "list_sessions", limit=100))["sessions"]]
        assert more and values == listed and set(values) <= {str(s) for s in sessions}


async def test_results_link_to_readable_resources_after_the_same_text(database_url):
    async with connect(database_url) as client:
        ids = await _write(client, "ada")
        await call(client, "add_message", session_id=ids["sessions"][0], role="user", text_content="ada says hello")
        await call(client, "add_message", session_id=ids["sessions"][1], role="user", text_content="ada says bye")
        expect = {
            ("store_memory", (("content", "ada likes tea"), ("name", "drink"))): None,
            ("get_memory", (("memory_id", ids["memories"][0]),)): [ids["memories"][0]],
            ("list_memories", ()): None,
            ("search_memories", (("query", "bees table"),)): None,
            ("create_session", (("name", "third"),)): None,
            ("list_sessions", ()): None,
            ("search_history", (("query", "ada says"),)): None,
        }
        for (tool, arguments), wanted in expect.items():
            result = await client.call_tool(tool, dict(arguments))
            assert not result.is_error, result.content
            found = links(result)
            data = result.structured_content
            items = data.get("memories") or data.get("sessions") or data.get("results") or [data]
            key = "session_id" if tool == "search_history" else "id"
            named = list(dict.fromkeys(item[key] for item in items))
            assert found and [link.uri.split("/")[3] for link in found] == (wanted or named), tool
            for link in found:
                body = (await client.read_resource(link.uri)).contents[0]
                assert body.mime_type == link.mime_type and link.uri.split("/")[3] in body.text, tool
        # Tools whose results name nothing else carry no links.
        history = await client.call_tool("get_session_history", {"session_id": ids["sessions"][0]})
        assert len(history.content) == 1


@pytest.mark.slow
async def test_over_http_each_token_completes_and_links_only_its_own(database_url, tmp_path):
    who = {"ada": Identity("ada@example.com", "coder"), "bob": Identity("bob@example.com", "writer")}
    async with http_server(
        database_url, tmp_path / "server.log", static=who, env={"AGENT_MEMORY_HTTP_RATE_LIMIT": "0"}
    ) as server:
        written = {}
        for label in who:
            async with server.client(label) as client:
                written[label] = await _write(client, label)
        for label, other in (("ada", "bob"), ("bob", "ada")):
            async with server.client(label) as client:
                own = written[label]
                assert await complete(client, MEMORY, "memory_id", "") == (own["memories"], False)
                assert await complete(client, HISTORY, "session_id", "") == (own["sessions"], False)
                for foreign in written[other]["memories"]:
                    assert await complete(client, MEMORY, "memory_id", foreign) == ([], False)
                found = links(await client.call_tool("list_sessions", {}))
                assert [link.uri.split("/")[3] for link in found] == own["sessions"]
                for link in found:
                    assert label in (await client.read_resource(link.uri)).contents[0].text
