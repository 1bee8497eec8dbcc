"""Every tool through the SDK's in-memory client, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from repository.runtime import Bounds
from tests.mcp_helpers import call, call_error, connect

pytestmark = pytest.mark.anyio


async def test_sessions_and_messages(database_url):
    async with connect(database_url) as client:
        session = await call(client, "create_session", name="Trip", platform="cli", metadata={"lang": "fr"})
        assert session["name"] == "Trip" and session["metadata"] == {"lang": "fr"}
        message = await call(
            client,
            "add_message",
            session_id=session["id"],
            role="assistant",
            text_content="Booked.",
            tool_calls=[{"name": "book", "arguments": {"seats": 2}}],
        )
        assert message["role"] == "assistant" and message["tool_calls"][0]["arguments"] == {"seats": 2}
        batch = await call(
            client,
            "add_messages",
            session_id=session["id"],
            messages=[{"role": "user", "text_content": "Thanks"}, {"role": "tool", "tool_outputs": {"ok": True}}],
        )
        assert [m["role"] for m in batch["messages"]] == ["user", "tool"]
        history = await call(client, "get_session_history", session_id=session["id"])
        assert [m["text_content"] for m in history["messages"]] == ["Booked.", "Thanks", None]
        # Optional fields holding nothing are left out (absent means null/false); what is set is always there.
        booked, thanks, tool = history["messages"]
        assert "tool_calls" in booked and "tool_outputs" not in booked
        assert set(thanks) == {"id", "session_id", "role", "text_content", "created_at"}
        assert tool["tool_outputs"] == {"ok": True} and tool["text_content"] is None
        assert history["next_cursor"] is None and history["start"] == "latest"
        full = await call(client, "get_message", message_id=message["id"])
        assert full["text_content"] == "Booked."
        listed = await call(client, "list_sessions")
        assert listed["total"] == 1
        assert listed["sessions"][0]["message_count"] == 3 and listed["sessions"][0]["agent_name"] == "tester"


async def test_history_pages_visit_every_message_once_while_appending(database_url):
    async with connect(database_url) as client:
        sid = (await call(client, "create_session"))["id"]
        texts = [f"message {i}" for i in range(23)]
        await call(
            client, "add_messages", session_id=sid, messages=[{"role": "user", "text_content": t} for t in texts]
        )
        seen: list[str] = []
        page = await call(client, "get_session_history", session_id=sid, limit=5)
        assert [m["text_content"] for m in page["messages"]] == texts[-5:]  # newest page first, chronological inside
        seen = [m["text_content"] for m in page["messages"]]
        while page["next_cursor"]:
            # New messages arriving between pages must not shift or repeat anything.
            await call(client, "add_message", session_id=sid, role="assistant", text_content="late arrival")
            page = await call(client, "get_session_history", session_id=sid, limit=5, cursor=page["next_cursor"])
            seen = [m["text_content"] for m in page["messages"]] + seen
        assert seen == texts
        forward = await call(client, "get_session_history", session_id=sid, limit=100, start="oldest")
        assert [m["text_content"] for m in forward["messages"]][:23] == texts


async def test_list_sessions_pages_newest_first(database_url):
    async with connect(database_url) as client:
        ids = [(await call(client, "create_session", name=f"s{i}"))["id"] for i in range(5)]
        first = await call(client, "list_sessions", limit=2)
        second = await call(client, "list_sessions", limit=2, cursor=first["next_cursor"])
        third = await call(client, "list_sessions", limit=2, cursor=second["next_cursor"])
        order = [s["id"] for page in (first, second, third) for s in page["sessions"]]
        assert order == ids[::-1]
        assert third["next_cursor"] is None and first["total"] == 5


async def test_store_memory_upserts_by_name_and_reports_scope(database_url):
    async with connect(database_url) as client:
        first = await call(client, "store_memory", content="Prefers tea", name="drink")
        assert first["outcome"] == "created" and first["scope"] == "user"
        again = await call(client, "store_memory", content="Prefers coffee", name="drink")
        assert again["id"] == first["id"] and again["outcome"] == "updated" and again["content"] == "Prefers coffee"
        same = await call(client, "store_memory", content="Prefers coffee", name="drink")
        assert same["outcome"] == "unchanged"
        # An update that does not mention read_mode keeps the stored one.
        await call(client, "store_memory", content="Ada", name="user_name", read_mode="system_prompt")
        kept = await call(client, "store_memory", content="Ada L.", name="user_name")
        assert kept["read_mode"] == "system_prompt" and kept["outcome"] == "updated"
        shared = await call(client, "store_memory", content="Office closes at 6pm", scope="agent")
        assert shared["scope"] == "agent"
        duplicate = await call(client, "store_memory", content="Office closes at 6pm", scope="agent")
        assert duplicate["id"] == shared["id"] and duplicate["outcome"] == "unchanged"
        sid = (await call(client, "create_session"))["id"]
        scoped = await call(client, "store_memory", content="Talking about Lisbon", session_id=sid)
        assert scoped["scope"] == "session" and scoped["session_id"] == sid


async def test_memory_get_list_delete(database_url):
    async with connect(database_url) as client:
        stored = [await call(client, "store_memory", content=f"fact number {i}") for i in range(5)]
        got = await call(client, "get_memory", memory_id=stored[0]["id"])
        assert got["content"] == "fact number 0"
        page1 = await call(client, "list_memories", limit=3)
        page2 = await call(client, "list_memories", limit=3, cursor=page1["next_cursor"])
        assert page1["total"] == 5 and page2["next_cursor"] is None
        assert [m["content"] for m in page1["memories"] + page2["memories"]] == [
            f"fact number {i}" for i in range(4, -1, -1)
        ]
        deleted = await call(client, "delete_memory", memory_id=stored[0]["id"])
        assert deleted == {"id": stored[0]["id"], "deleted": True, "name": None}
        assert "No memory" in await call_error(client, "get_memory", memory_id=stored[0]["id"])
        assert (await call(client, "list_memories"))["total"] == 4


async def test_long_content_is_truncated_in_listings_only(database_url):
    async with connect(database_url, listing_preview_chars=100) as client:
        long_text = "word " * 500
        stored = await call(client, "store_memory", content=long_text)
        listed = (await call(client, "list_memories"))["memories"][0]
        assert listed["truncated"] is True and len(listed["content"]) == 100
        found = (await call(client, "search_memories", query="word"))["results"][0]
        assert found["truncated"] is True
        short = await call(client, "store_memory", content="short word")
        assert "truncated" not in short and "truncated" not in (await call(client, "list_memories"))["memories"][0]
        assert (await call(client, "get_memory", memory_id=stored["id"]))["content"] == long_text


async def test_search_memories_natural_language(database_url):
    async with connect(database_url) as client:
        await call(client, "store_memory", content="The user's favourite colour is teal", name="colour")
        await call(client, "store_memory", content="The user works as a nurse in Porto")
        await call(client, "store_memory", content="Dinner reservations are at eight")
        result = await call(client, "search_memories", query="What is the user's favourite colour?")
        assert result["results"][0]["name"] == "colour"
        assert result["results"][0]["score"] > 0 and "[colour]" in result["results"][0]["snippet"]
        assert result["scopes_searched"] == ["session", "user", "agent", "global"]
        only_agent = await call(client, "search_memories", query="favourite colour", scopes=["agent"])
        assert only_agent["results"] == [] and only_agent["scopes_searched"] == ["agent"]


async def test_search_memories_filters(database_url):
    async with connect(database_url) as client:
        await call(client, "store_memory", content="Paris trip in May", metadata={"topic": "travel", "year": 2024})
        await call(client, "store_memory", content="Paris office address", metadata={"topic": "work"})
        travel = await call(client, "search_memories", query="Paris", metadata={"topic": "travel"})
        assert [r["content"] for r in travel["results"]] == ["Paris trip in May"]
        by_number = await call(client, "search_memories", query="Paris", metadata={"year": 2024})
        assert [r["content"] for r in by_number["results"]] == ["Paris trip in May"]
        future = await call(client, "search_memories", query="Paris", created_after="2999-01-01T00:00:00Z")
        assert future["results"] == []


async def test_search_history_across_sessions(database_url):
    async with connect(database_url) as client:
        first = (await call(client, "create_session", name="one"))["id"]
        second = (await call(client, "create_session", name="two"))["id"]
        await call(
            client, "add_message", session_id=first, role="user", text_content="We should visit Lisbon in spring"
        )
        await call(client, "add_message", session_id=second, role="user", text_content="My cat is called Miso")
        found = await call(client, "search_history", query="When are we going to Lisbon?")
        assert found["results"][0]["session_id"] == first and found["session_id"] is None
        narrowed = await call(client, "search_history", query="Lisbon", session_id=second)
        assert narrowed["results"] == [] and narrowed["session_id"] == second
        # A question that names a speaker ranks what they said first; the name comes back with the message.
        for name in ("Priya", "Tom"):
            await call(client, "add_message", session_id=second, role="user", name=name, text_content="Budget is ok")
        by_name = await call(client, "search_history", query="What did Priya say about the budget?")
        assert [hit.get("name") for hit in by_name["results"][:2]] == ["Priya", "Tom"]
        by_name = await call(client, "search_history", query="What did Tom say about the budget?")
        assert [hit.get("name") for hit in by_name["results"][:2]] == ["Tom", "Priya"]
        # Filters: role and time range.
        await call(client, "add_message", session_id=first, role="assistant", text_content="Lisbon is lovely in spring")
        by_role = await call(client, "search_history", query="Lisbon spring", roles=["assistant"])
        assert [r["text_content"] for r in by_role["results"]] == ["Lisbon is lovely in spring"]
        later = await call(client, "search_history", query="Lisbon", created_after="2999-01-01T00:00:00Z")
        assert later["results"] == []
        earlier = await call(client, "search_history", query="Lisbon", created_before="2999-01-01T00:00:00Z")
        assert len(earlier["results"]) == 2


async def test_imported_messages_keep_their_time_and_the_order_they_were_added(database_url):
    async with connect(database_url) as client:
        chat = (await call(client, "create_session", name="imported"))["id"]
        said = [
            {"role": "user", "text_content": "We met at the harbour", "created_at": "2023-05-08T13:56:00Z"},
            {"role": "user", "text_content": "The ferry was late", "created_at": "2023-05-08T09:00:00+02:00"},
            {"role": "user", "text_content": "Said just now"},
        ]
        added = await call(client, "add_messages", session_id=chat, messages=said)
        # The answer shows the time as stored (UTC), the same as every later read.
        assert [m["created_at"] for m in added["messages"][:2]] == ["2023-05-08T13:56:00Z", "2023-05-08T07:00:00Z"]
        await call(
            client, "add_message", session_id=chat, role="user", text_content="One more", created_at="2021-01-01T00:00Z"
        )
        history = await call(client, "get_session_history", session_id=chat, start="oldest")
        texts = [m["text_content"] for m in history["messages"]]
        assert texts == ["We met at the harbour", "The ferry was late", "Said just now", "One more"]
        stamps = [m["created_at"] for m in history["messages"]]
        assert stamps[:2] == ["2023-05-08T13:56:00Z", "2023-05-08T07:00:00Z"] and stamps[3] == "2021-01-01T00:00:00Z"
        found = await call(client, "search_history", query="ferry harbour", created_before="2023-05-08T10:00:00Z")
        assert [m["text_content"] for m in found["results"]] == ["The ferry was late"]

        naive = await call_error(
            client, "add_message", session_id=chat, role="user", text_content="x", created_at="2023-05-08T13:56:00"
        )
        assert "created_at needs a time zone" in naive
        later = {"role": "user", "text_content": "x", "created_at": "2999-01-01T00:00:00Z"}
        future = await call_error(
            client, "add_messages", session_id=chat, messages=[{"role": "user", "text_content": "ok"}, later]
        )
        assert "in the future" in future and "omit it" in future
        history = await call(client, "get_session_history", session_id=chat)
        assert len(history["messages"]) == 4  # the refused batch wrote nothing


async def test_users_are_isolated(database_url):
    async with connect(database_url, user="ada@example.com") as ada:
        secret = await call(ada, "store_memory", content="Ada's door code is 4417", name="door")
        session = await call(ada, "create_session", name="private")
        await call(ada, "add_message", session_id=session["id"], role="user", text_content="door code 4417")
    async with connect(database_url, user="bob@example.com") as bob:
        assert (await call(bob, "search_memories", query="door code"))["results"] == []
        assert (await call(bob, "search_history", query="door code"))["results"] == []
        assert (await call(bob, "list_memories"))["total"] == 0
        assert (await call(bob, "list_sessions"))["total"] == 0
        assert "No memory" in await call_error(bob, "get_memory", memory_id=secret["id"])
        assert "No memory" in await call_error(bob, "delete_memory", memory_id=secret["id"])
        assert "No session" in await call_error(bob, "get_session_history", session_id=session["id"])
        assert "No session" in await call_error(
            bob, "add_message", session_id=session["id"], role="user", text_content="intrusion"
        )
        assert "No session" in await call_error(bob, "store_memory", content="x", session_id=session["id"])
        # Bob's own memory of the same name is a different memory.
        own = await call(bob, "store_memory", content="Bob's door code is 1234", name="door")
        assert own["id"] != secret["id"] and own["outcome"] == "created"
    async with connect(database_url, user="ada@example.com") as ada:
        assert (await call(ada, "get_memory", memory_id=secret["id"]))["content"] == "Ada's door code is 4417"


async def test_agent_scope_is_shared_between_users_of_the_agent(database_url):
    async with connect(database_url, user="ada@example.com") as ada:
        await call(ada, "store_memory", content="The team standup is at 9:30", scope="agent")
    async with connect(database_url, user="bob@example.com") as bob:
        found = await call(bob, "search_memories", query="When is the standup?")
        assert found["results"][0]["scope"] == "agent"
    async with connect(database_url, user="bob@example.com", agent="other-agent") as other:
        assert (await call(other, "search_memories", query="standup"))["results"] == []


async def test_listing_totals_stop_counting_at_the_cap_and_paging_still_reaches_the_end(database_url):
    # A cap of 3 stands in for 10,000: counting past it would read every row.
    async with connect(database_url, bounds=Bounds(count_cap=3)) as client:
        for i in range(5):
            await call(client, "store_memory", content=f"fact number {i}")
        seen, cursor = [], None
        while True:
            page = await call(client, "list_memories", limit=2, **({"cursor": cursor} if cursor else {}))
            assert page["total"] == 3 and page["total_capped"] is True
            seen += [m["content"] for m in page["memories"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == [f"fact number {i}" for i in range(5)]
        few = await call(client, "list_sessions")
        assert few["total"] == 0 and "total_capped" not in few


async def test_zero_counts_are_reported_not_left_out(database_url):
    # Empty optional fields are left out of results; a count of 0 is a value, not an empty field.
    async with connect(database_url) as client:
        await call(client, "create_session", name="quiet")
        listed = (await call(client, "list_sessions"))["sessions"][0]
        assert listed["message_count"] == 0 and listed["name"] == "quiet"
