"""Helpers for driving the server through the SDK's real client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp import Client

from mcp_server.app import build_server
from mcp_server.config import Settings
from repository.runtime import Bounds


@asynccontextmanager
async def connect(database_url: str, bounds: Bounds | None = None, **settings: Any) -> AsyncIterator[Client]:
    """An in-memory client connected to a fresh server on `database_url` (with these bounds of per-query work)."""
    options = {"user": "ada@example.com", "agent": "tester"} | settings
    async with Client(build_server(Settings(database_url=database_url, **options), bounds=bounds)) as client:
        yield client


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed; return its structured content."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, f"{tool} failed: {result.content[0].text if result.content else result}"
    assert result.structured_content is not None
    return result.structured_content


async def call_error(client: Client, tool: str, **arguments: Any) -> str:
    """Call a tool that must fail with a tool error; return the error text."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool} unexpectedly succeeded: {result.structured_content}"
    return result.content[0].text
