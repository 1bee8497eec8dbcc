"""Import formats, one module each, and the detector that tells them apart by content (never by file name):

- native: our export (`agent-memory-mcp export`), a header line with "format": "agent-memory-mcp/export";
- mcp-memory: the reference MCP memory server's memory.json, lines with "type": "entity" | "relation";
- conversations: a JSON array of ChatGPT or Claude.ai conversations (conversations.json of either export);
- memories: our memories JSON Lines, one {"content": ...} a line (also what anything else is read as, so its
  line-by-line errors say what is wrong).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from mcp_server.formats.source import Source

Kind = Literal["empty", "native", "mcp-memory", "conversations", "memories"]
EXPORT_FORMAT = "agent-memory-mcp/export"


def detect(source: Source) -> Kind:
    """Which format `source` holds, from its first characters and its first non-empty line."""
    text = source.head.lstrip()
    if not text:
        return "empty"
    if text.startswith("["):
        rest = text[1:].lstrip()
        if rest.startswith("{"):
            return "conversations"
        if rest.startswith("]") and not rest[1:].strip():
            return "empty"
        return "memories"
    try:
        first: Any = json.loads(source.first_line())
    except json.JSONDecodeError:
        return "memories"
    if isinstance(first, dict):
        if "format" in first and "content" not in first:
            return "native"
        if first.get("type") in ("entity", "relation"):
            return "mcp-memory"
    return "memories"
