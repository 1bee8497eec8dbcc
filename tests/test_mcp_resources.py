"""Resources and the agent_context prompt, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from repository import AgentUpdate, Database, get_agent_by_name, update_agent
from tests.mcp_helpers import call, connect

pytestmark = pytest.mark.anyio


async def test_memory_resource_is_json(database_url):
    async with connect(database_url) as client:
        stored = await call(client, "store_memory", content="Likes jazz", name="music", metadata={"since": 2019})
        result = await client.read_resource(f"memory://memories/{stored['id']}")
        body = json.loads(result.contents[0].text)
        assert body["content"] == "Likes jazz" and body["metadata"] == {"since": 2019} and body["scope"] == "user"


async def test_history_resource_is_a_readable_transcript(database_url):
    async with connect(database_url) as client:
        sid = (await call(client, "create_session", name="Planning"))["id"]
        await call(client, "add_message", session_id=sid, role="user", text_content="Where shall we eat?")
        await call(client, "add_message", session_id=sid, role="assistant", text_content="Try the noodle bar.")
        text = (await client.read_resource(f"memory://sessions/{sid}/history")).contents[0].text
        assert text.startswith("# Planning")
        assert text.index("user: Where shall we eat?") < text.index("assistant: Try the noodle bar.")


async def test_recent_sessions_resources(database_url):
    async with connect(database_url) as client:
        for name in ("first", "second"):
            await call(client, "create_session", name=name)
        static = json.loads((await client.read_resource("memory://sessions")).contents[0].text)
        templated = json.loads((await client.read_resource("memory://sessions/recent?limit=1")).contents[0].text)
        assert [s["name"] for s in static["sessions"]] == ["second", "first"]
        assert [s["name"] for s in templated["sessions"]] == ["second"] and templated["total"] == 2


async def test_resource_errors_are_short(database_url):
    async with connect(database_url) as client:
        for uri in ("memory://memories/not-an-id", "memory://memories/00000000-0000-0000-0000-000000000000"):
            with pytest.raises(Exception) as caught:
                await client.read_resource(uri)
            message = str(caught.value)
            assert "Traceback" not in message and "SELECT" not in message


async def test_agent_context_prompt_fills_placeholders(database_url):
    async with connect(database_url) as client:
        await call(client, "store_memory", content="Ada", name="user_name", read_mode="system_prompt")
        await call(client, "store_memory", content="formal", name="tone", read_mode="system_prompt", scope="agent")
        await call(client, "store_memory", content="casual", name="tone", read_mode="system_prompt")
        await call(client, "store_memory", content="not for prompts", name="hidden")
        database = Database(database_url)
        try:
            async with database.transaction() as session:
                agent = await get_agent_by_name(session, "tester")
                await update_agent(
                    session,
                    agent.id,
                    AgentUpdate(system_prompt="Help {{user_name}} in a {{ tone }} tone. {{hidden}} {{missing}}"),
                )
        finally:
            await database.dispose()
        prompt = await client.get_prompt("agent_context")
        text = prompt.messages[0].content.text
        # The user's own memory overrides the agent-wide one of the same name; tool memories are not used.
        assert text == "Help Ada in a casual tone. [missing memory: hidden] [missing memory: missing]"


async def test_agent_context_without_a_system_prompt_lists_memories(database_url):
    async with connect(database_url) as client:
        await call(client, "store_memory", content="Ada", name="user_name", read_mode="system_prompt")
        text = (await client.get_prompt("agent_context")).messages[0].content.text
        assert "user_name: Ada" in text
