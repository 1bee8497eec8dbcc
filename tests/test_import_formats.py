"""`import` of other tools' files, told apart by content: the reference MCP memory server's memory.json, ChatGPT's
and Claude.ai's conversations.json. What they hold is then found through the MCP tools."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import pytest

from mcp_server.config import Settings
from mcp_server.formats import detect
from mcp_server.formats.mcp_memory import relation_words
from mcp_server.formats.source import HEAD_CHARS, ImportProblem, Source, array_elements
from mcp_server.importer import import_file
from repository.errors import RepositoryError
from tests.mcp_helpers import call, connect

pytestmark = pytest.mark.anyio

GRAPH = [
    {"type": "entity", "name": "Ada Lovelace", "entityType": "person", "observations": ["Wrote the first program"]},
    {"type": "entity", "name": "Charles Babbage", "entityType": "person", "observations": ["Designed an engine."]},
    {"type": "relation", "from": "Ada Lovelace", "to": "Charles Babbage", "relationType": "corresponded_with"},
    {"type": "relation", "from": "Ada Lovelace", "to": "Lord Byron", "relationType": "daughterOf"},
    {"type": "relation", "from": "Mary", "to": "Percy", "relationType": "married"},
]


def _node(node_id: str, parent: str | None, children: list[str], message: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": node_id, "message": message, "parent": parent, "children": children}


def _said(node_id: str, role: str, text: str, at: float | None, **extra: Any) -> dict[str, Any]:
    content = {"content_type": "text", "parts": [text]}
    return {"id": node_id, "author": {"role": role}, "content": content, "create_time": at, **extra}


def chatgpt_conversation(cid: str, title: str, at: float, question: str, answer: str) -> dict[str, Any]:
    hidden = _said(f"{cid}-s", "system", "", None, metadata={"is_visually_hidden_from_conversation": True})
    mapping = {
        "root": _node("root", None, [f"{cid}-s"], None),
        f"{cid}-s": _node(f"{cid}-s", "root", [f"{cid}-q"], hidden),
        f"{cid}-q": _node(f"{cid}-q", f"{cid}-s", [f"{cid}-a", f"{cid}-old"], _said(f"{cid}-q", "user", question, at)),
        # An earlier answer the user regenerated: not on the branch they saw.
        f"{cid}-old": _node(f"{cid}-old", f"{cid}-q", [], _said(f"{cid}-old", "assistant", "abandoned", at + 1)),
        f"{cid}-a": _node(f"{cid}-a", f"{cid}-q", [], _said(f"{cid}-a", "assistant", answer, at + 2)),
    }
    return {"title": title, "create_time": at, "conversation_id": cid, "current_node": f"{cid}-a", "mapping": mapping}


CHATGPT = [
    chatgpt_conversation("c-1", "Lisbon trip", 1714550400.0, "Plan a trip to Lisbon", "Fly TAP, stay in Alfama."),
    chatgpt_conversation("c-2", "Oslo trip", 1678000000.0, "Plan a trip to Oslo", "Take the train from the airport."),
]
CLAUDE = [
    {
        "uuid": "k-1",
        "name": "Sourdough",
        "created_at": "2024-03-02T10:00:00Z",
        "chat_messages": [
            {"uuid": "m1", "sender": "human", "text": "How long should sourdough proof?",
             "created_at": "2024-03-02T10:00:00Z", "content": [{"type": "text", "text": "How long to proof?"}]},
            {"uuid": "m2", "sender": "assistant", "text": "", "created_at": "2024-03-02T10:00:30.5Z",
             "content": [{"type": "tool_use", "name": "web_search", "input": {"q": "proofing time"}},
                         {"type": "text", "text": "About twelve hours in the fridge."}],
             "attachments": [{"file_name": "recipe.txt", "extracted_content": "flour, water"}]},
            {"uuid": "m3", "sender": "human", "text": "", "created_at": "2024-03-02T10:01:00Z", "content": []},
        ],
    },
]  # fmt: skip


async def load(database_url: str, body: str, user: str = "ada@example.com") -> str:
    settings = Settings(database_url=database_url, user=user, agent="tester")
    return await import_file(settings, Source(io.StringIO(body)))


def jsonl(items: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(item) + "\n" for item in items)


async def test_a_knowledge_graph_becomes_named_memories_found_by_name_observation_and_relation(database_url):
    summary = await load(database_url, jsonl(GRAPH))
    assert summary == (
        "read 2 entities and 3 relations: 2 memories created, 0 updated, 0 unchanged; 1 relations between names "
        "that are not entities of the file were left out"
    )
    async with connect(database_url) as client:
        ada = (await call(client, "list_memories", name="Ada Lovelace"))["memories"][0]
        assert ada["content"] == (
            "Ada Lovelace (person): Wrote the first program. Ada Lovelace corresponded with Charles Babbage. "
            "Ada Lovelace daughter of Lord Byron."
        )
        assert ada["metadata"]["entity_type"] == "person" and ada["scope"] == "user"
        assert {"from": "Ada Lovelace", "to": "Charles Babbage", "type": "corresponded_with"} in ada["metadata"][
            "relations"
        ]
        found = await call(client, "search_memories", query="Who did Ada correspond with?")
        assert {r["name"] for r in found["results"][:2]} == {"Ada Lovelace", "Charles Babbage"}
        engine = await call(client, "search_memories", query="who designed an engine")
        assert engine["results"][0]["name"] == "Charles Babbage"
    assert "0 memories created, 0 updated, 2 unchanged" in await load(database_url, jsonl(GRAPH))
    grown = copy.deepcopy(GRAPH)
    grown[1]["observations"].append("Was born in London")
    assert "0 memories created, 1 updated, 1 unchanged" in await load(database_url, jsonl(grown))
    async with connect(database_url) as client:
        assert (await call(client, "list_memories"))["total"] == 2
        assert (await call(client, "search_memories", query="born in London"))["results"][0]["name"] == (
            "Charles Babbage"
        )


async def test_chatgpt_conversations_keep_the_branch_seen_its_roles_and_times(database_url):
    body = json.dumps(CHATGPT)  # ChatGPT writes the whole array on one line
    summary = await load(database_url, body)
    assert (
        summary
        == "read 2 chatgpt conversations: imported 2 sessions and 4 messages (what was already stored was skipped)"
    )
    async with connect(database_url) as client:
        sessions = (await call(client, "list_sessions"))["sessions"]
        assert {s["name"]: s["message_count"] for s in sessions} == {"Lisbon trip": 2, "Oslo trip": 2}
        lisbon = next(s for s in sessions if s["name"] == "Lisbon trip")
        assert lisbon["created_at"].startswith("2024-05-01T08:00:00") and lisbon["platform"] == "chatgpt"
        history = await call(client, "get_session_history", session_id=lisbon["id"], start="oldest")
        assert [(m["role"], m["text_content"]) for m in history["messages"]] == [
            ("user", "Plan a trip to Lisbon"),
            ("assistant", "Fly TAP, stay in Alfama."),
        ]
        assert history["messages"][1]["created_at"].startswith("2024-05-01T08:00:02")
        # The dates are the original ones: a question naming the month ranks that month's trip first.
        found = await call(client, "search_history", query="Which trip did we plan in May 2024?")
        assert found["results"][0]["text_content"] == "Plan a trip to Lisbon"
        found = await call(client, "search_history", query="Which trip did we plan in March 2023?")
        assert found["results"][0]["text_content"] == "Plan a trip to Oslo"
        assert "abandoned" not in json.dumps(await call(client, "search_history", query="abandoned"))

    assert "imported 0 sessions and 0 messages" in await load(database_url, body)
    grown = copy.deepcopy(CHATGPT)
    mapping = grown[0]["mapping"]
    mapping["c-1-a"]["children"] = ["c-1-more"]
    mapping["c-1-more"] = _node("c-1-more", "c-1-a", [], _said("c-1-more", "user", "And hotels?", 1714550500.0))
    grown[0]["current_node"] = "c-1-more"
    assert "imported 0 sessions and 1 messages" in await load(database_url, json.dumps(grown))
    # Another user importing the same export gets sessions of their own (ids derive from the user too).
    assert "imported 2 sessions and 4 messages" in await load(database_url, body, user="bob@example.com")
    async with connect(database_url, user="bob@example.com") as bob:
        assert (await call(bob, "list_sessions"))["total"] == 2


async def test_claude_conversations_map_senders_tools_and_attachments(database_url):
    summary = await load(database_url, json.dumps(CLAUDE, indent=2))
    assert summary.startswith("read 1 claude.ai conversations: imported 1 sessions and 2 messages")
    async with connect(database_url) as client:
        session = (await call(client, "list_sessions"))["sessions"][0]
        assert session["name"] == "Sourdough" and session["created_at"].startswith("2024-03-02T10:00:00")
        messages = (await call(client, "get_session_history", session_id=session["id"], start="oldest"))["messages"]
        # The content's text blocks are the text; an empty message (m3) is left out.
        assert messages[0]["text_content"] == "How long to proof?"
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert messages[1]["text_content"] == "About twelve hours in the fridge."
        assert messages[1]["tool_calls"] == [
            {"type": "tool_use", "name": "web_search", "input": {"q": "proofing time"}}
        ]
        assert messages[1]["created_at"].startswith("2024-03-02T10:00:30.5")
        found = await call(client, "search_history", query="how long to proof bread dough", roles=["assistant"])
        assert found["results"][0]["id"] == messages[1]["id"]
        full = await call(client, "get_message", message_id=messages[1]["id"])
        assert full["text_content"] == "About twelve hours in the fridge."
    assert "imported 0 sessions and 0 messages" in await load(database_url, json.dumps(CLAUDE))


def _broken_current_node() -> list[dict[str, Any]]:
    broken = copy.deepcopy(CHATGPT)
    broken[1]["current_node"] = "nowhere"
    return broken


def _loop() -> list[dict[str, Any]]:
    looped = copy.deepcopy(CHATGPT)
    looped[0]["mapping"]["root"]["parent"] = "c-1-a"
    return looped


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (lambda: json.dumps(_broken_current_node()), "conversation 2 ('Oslo trip'): its current_node is missing"),
        (lambda: json.dumps(_loop()), "conversation 1 ('Lisbon trip'): its mapping is broken at node 'c-1-a'"),
        (
            lambda: json.dumps([{"uuid": "x", "chat_messages": [{"sender": "robot"}]}]),
            "conversation 1: message 1 has sender 'robot'",
        ),
        (
            lambda: json.dumps([{"uuid": "x", "created_at": "yesterday", "chat_messages": []}]),
            "conversation 1: its created_at 'yesterday' is not an ISO 8601 time",
        ),
        (lambda: json.dumps([{"title": "x", "messages": []}]), "conversation 1 ('x'): neither a ChatGPT conversation"),
        (lambda: json.dumps([CHATGPT[0], CLAUDE[0]]), "conversation 2 ('Sourdough'): it is not a chatgpt conversation"),
        (lambda: json.dumps(CHATGPT)[:-300], "conversations.json: character"),
        (lambda: jsonl(GRAPH[:1]) + '{"type": "observation"}\n', "line 2: type must be 'entity' or 'relation'"),
        (lambda: jsonl([{"type": "entity", "name": " ", "observations": []}]), "line 1: name must be a non-empty"),
        (lambda: jsonl([{"type": "entity", "name": "x", "observations": "one"}]), "line 1: observations must be a"),
        (lambda: jsonl([{"type": "relation", "from": "a", "to": "b"}]), "line 1: relationType must be a non-empty"),
    ],
)
async def test_bad_conversations_and_graph_lines_are_reported_and_nothing_of_their_batch_written(
    database_url, body, problem
):
    with pytest.raises((ImportProblem, RepositoryError)) as raised:
        await load(database_url, body())
    assert str(raised.value).startswith(problem), raised.value
    async with connect(database_url) as client:
        assert (await call(client, "list_sessions"))["total"] == 0
        assert (await call(client, "list_memories"))["total"] == 0


def test_the_detector_reads_content_not_names():
    def kind(text: str) -> str:
        return detect(Source(io.StringIO(text)))

    assert kind('{"format": "agent-memory-mcp/export", "version": 1}\n{"kind": "user"}') == "native"
    assert kind('\n\n{"type": "entity", "name": "a"}\n') == "mcp-memory"
    assert kind('{"type":"relation","from":"a","to":"b","relationType":"c"}') == "mcp-memory"
    assert kind(' [ {"mapping": {}}]') == "conversations"
    assert kind('[\n  {\n    "uuid": "x"') == "conversations"
    assert kind('{"content": "a fact"}') == "memories"
    assert kind('["content"]\n') == "memories"  # its importer then says line 1 is not an object
    assert kind("not json at all") == "memories"
    assert kind("  \n") == kind("[]") == "empty"
    long_first_line = json.dumps({"content": "x" * (3 * HEAD_CHARS)}) + "\n" + json.dumps({"type": "entity"})
    assert kind(long_first_line) == "memories"


def test_array_elements_are_decoded_one_at_a_time_from_any_chunking():
    items = [{"a": [1, 2, {"b": "]},["}]}, 12345, "x", [], {"c": 1.5e3}, None, True]
    text = " [ " + " , ".join(json.dumps(i) for i in items) + " ]\n"
    for size in (1, 2, 3, 7, 64, len(text)):
        chunks = iter([text[i : i + size] for i in range(0, len(text), size)])
        assert list(array_elements(chunks)) == items, size
    with pytest.raises(ImportProblem, match="expected ',' or ']'"):
        list(array_elements(iter(['[{"a": 1} {"b": 2}]'])))
    with pytest.raises(ImportProblem, match="not JSON"):
        list(array_elements(iter(['[{"a": 1}, {"b": '])))
    with pytest.raises(ImportProblem, match="expected a JSON array"):
        list(array_elements(iter(['{"a": 1}'])))


def test_relation_types_read_as_words():
    assert relation_words("works_at") == relation_words("worksAt") == relation_words("works-at") == "works at"
    assert relation_words("is part of") == "is part of"


def test_lines_are_whole_whatever_the_chunks(monkeypatch):
    from mcp_server.formats import source

    text = "first\n\n" + "x" * 50 + "\r\nlast without newline"
    for size in (1, 2, 5, 64):
        monkeypatch.setattr(source, "HEAD_CHARS", size)
        monkeypatch.setattr(source, "CHUNK_CHARS", size)
        lines = [line for _number, line in Source(io.StringIO(text)).lines()]
        assert lines == ["first", "", "x" * 50 + "\r", "last without newline"], size
