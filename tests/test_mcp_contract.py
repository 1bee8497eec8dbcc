"""The tool contract: names, parameters, annotations and output schemas. Changing any of these breaks hosts and
prompts that rely on them, so a change must be deliberate: update this table in the same commit.

Each entry: (required parameters, optional parameters,
             (readOnlyHint, destructiveHint, idempotentHint, openWorldHint), output properties).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pydantic_core
import pytest
from jsonschema import Draft202012Validator
from mcp import Client

from mcp_server.app import build_server
from mcp_server.config import Settings
from mcp_server.schemas import MessageOut, SessionList, SessionOut, inline_refs

pytestmark = pytest.mark.anyio

CONTRACT = {
    "store_memory": (
        ("content",),
        ("description", "expires_at", "metadata", "name", "read_mode", "scope", "session_id"),
        (False, False, True, False),
        (
            "access",
            "content",
            "created_at",
            "description",
            "expires_at",
            "id",
            "metadata",
            "name",
            "outcome",
            "read_mode",
            "scope",
            "session_id",
            "truncated",
            "updated_at",
        ),
    ),
    "search_memories": (
        ("query",),
        ("created_after", "created_before", "limit", "metadata", "scopes", "session_id"),
        (True, False, True, False),
        ("query_terms", "results", "scopes_searched"),
    ),
    "get_memory": (
        ("memory_id",),
        (),
        (True, False, True, False),
        (
            "access",
            "content",
            "created_at",
            "description",
            "expires_at",
            "id",
            "metadata",
            "name",
            "read_mode",
            "scope",
            "session_id",
            "truncated",
            "updated_at",
        ),
    ),
    "list_memories": (
        (),
        ("cursor", "limit", "name", "read_mode", "scope", "session_id"),
        (True, False, True, False),
        ("memories", "next_cursor", "total", "total_capped"),
    ),
    "delete_memory": (("memory_id",), (), (False, True, True, False), ("deleted", "id", "name")),
    "create_session": (
        (),
        ("metadata", "name", "platform"),
        (False, False, False, False),
        ("agent_name", "created_at", "id", "message_count", "metadata", "name", "platform", "updated_at"),
    ),
    "add_message": (
        ("role", "session_id"),
        (
            "context",
            "created_at",
            "media_url",
            "message_type",
            "mime_type",
            "name",
            "text_content",
            "tool_calls",
            "tool_outputs",
        ),
        (False, False, False, False),
        (
            "created_at",
            "id",
            "media_url",
            "message_type",
            "name",
            "role",
            "session_id",
            "text_content",
            "tool_calls",
            "tool_outputs",
            "truncated",
        ),
    ),
    "add_messages": (("messages", "session_id"), (), (False, False, False, False), ("messages",)),
    "get_session_history": (
        ("session_id",),
        ("cursor", "limit", "start"),
        (True, False, True, False),
        ("messages", "next_cursor", "session_id", "start"),
    ),
    "get_message": (
        ("message_id",),
        (),
        (True, False, True, False),
        (
            "created_at",
            "id",
            "media_url",
            "message_type",
            "name",
            "role",
            "session_id",
            "text_content",
            "tool_calls",
            "tool_outputs",
            "truncated",
        ),
    ),
    "list_sessions": (
        (),
        ("cursor", "limit"),
        (True, False, True, False),
        ("next_cursor", "sessions", "total", "total_capped"),
    ),
    "search_history": (
        ("query",),
        ("created_after", "created_before", "limit", "roles", "session_id"),
        (True, False, True, False),
        ("query_terms", "results", "session_id"),
    ),
}


@pytest.fixture
async def tools(tmp_path):
    server = build_server(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'contract.db'}"))
    async with Client(server) as client:
        yield {tool.name: tool for tool in (await client.list_tools()).tools}


async def test_tool_contract(tools):
    actual = {}
    for name, tool in tools.items():
        hints = tool.annotations
        required = tuple(sorted(tool.input_schema.get("required", [])))
        optional = tuple(sorted(set(tool.input_schema["properties"]) - set(required)))
        assert tool.output_schema is not None, f"{name} publishes no output schema"
        actual[name] = (
            required,
            optional,
            (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint, hints.open_world_hint),
            tuple(sorted(tool.output_schema["properties"])),
        )
    assert actual == CONTRACT


async def test_every_tool_is_described_for_the_model(tools):
    for name, tool in tools.items():
        assert tool.description and "Example:" in tool.description, name
        assert tool.annotations.title, name
        for parameter, schema in tool.input_schema["properties"].items():
            if parameter not in ("messages",):
                assert schema.get("description"), f"{name}.{parameter} has no description"


async def test_limits_are_bounded_in_the_schema(tools):
    for name, tool in tools.items():
        limit = tool.input_schema["properties"].get("limit")
        if limit is not None:
            assert limit.get("maximum") and limit["maximum"] <= 200, name


async def test_output_schemas_are_published_without_references(tools):
    # Inlined so the SDK client checks each result without resolving a $ref per item (see schemas.inline_refs).
    for name, tool in tools.items():
        text = json.dumps(tool.output_schema)
        assert "$ref" not in text and "$defs" not in text, name
    item = tools["get_session_history"].output_schema["properties"]["messages"]["items"]
    assert item["type"] == "object" and "text_content" in item["required"]


def test_inline_refs_expands_definitions_and_keeps_siblings():
    schema = {
        "$defs": {"Inner": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}},
        "type": "object",
        "properties": {
            "one": {"$ref": "#/$defs/Inner", "description": "kept"},
            "many": {"items": {"$ref": "#/$defs/Inner"}},
        },
    }
    inlined = inline_refs(schema)
    assert "$defs" not in inlined
    assert inlined["properties"]["one"] == {**schema["$defs"]["Inner"], "description": "kept"}
    assert inlined["properties"]["many"]["items"] == schema["$defs"]["Inner"]
    validator = Draft202012Validator(inlined)
    assert validator.is_valid({"one": {"x": 1}, "many": [{"x": 2}]})
    assert not validator.is_valid({"one": {"x": "1"}})
    assert not validator.is_valid({"many": [{}]})


def test_inline_refs_refuses_a_recursive_schema():
    schema = {"$defs": {"Node": {"properties": {"next": {"$ref": "#/$defs/Node"}}}}, "$ref": "#/$defs/Node"}
    with pytest.raises(ValueError, match="recursive"):
        inline_refs(schema)


def test_results_leave_out_optional_fields_that_hold_nothing():
    now = datetime.now(UTC)
    message = MessageOut(id="m", session_id="s", role="user", text_content=None, created_at=now)
    dumped = message.model_dump(mode="json")
    # Required fields stay even when null; optional ones holding None or a False flag are dropped.
    assert set(dumped) == {"id", "session_id", "role", "text_content", "created_at"} and dumped["text_content"] is None
    assert json.loads(pydantic_core.to_json(message)) == dumped
    cut = MessageOut(
        id="m", session_id="s", role="tool", text_content="x", truncated=True, tool_calls=[], created_at=now
    )
    # A True flag and an empty list are information: kept.
    assert cut.model_dump()["truncated"] is True and cut.model_dump()["tool_calls"] == []
    empty = SessionOut(id="s", name=None, platform=None, metadata={}, message_count=0, created_at=now, updated_at=now)
    # A count of 0 equals False but is not "nothing".
    assert empty.model_dump()["message_count"] == 0 and "agent_name" not in empty.model_dump()
    assert "total_capped" not in SessionList(sessions=[], total=0, next_cursor=None).model_dump()
    assert SessionList(sessions=[], total=10_000, total_capped=True, next_cursor=None).model_dump()["total_capped"]
