"""A ChatGPT data export's conversations.json: a JSON array of conversations, each a tree of messages.

Each conversation has "title", "create_time" (epoch seconds), "mapping" (node id -> {"message", "parent",
"children"}) and "current_node": the branch the user saw is current_node followed back to the root. Messages give
author.role, content.parts (or content.text) and create_time. Messages the app hid (its own context and system
instructions) and those without text are left out; an assistant's message addressed to a tool becomes a tool call.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from mcp_server.formats.ids import imported_conversation, stable_id

PLATFORM = "chatgpt"
ROLES = {"user": "user", "assistant": "assistant", "system": "system", "tool": "tool"}


def is_chatgpt(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("mapping"), dict)


def _time(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 253_402_300_799:
        return datetime.fromtimestamp(value, UTC)
    return None


def branch(mapping: dict[str, Any], current: Any) -> list[tuple[str, dict[str, Any]]]:
    """(node id, message) from the root to `current`, following parents; ValueError when the tree is broken."""
    if not isinstance(current, str) or current not in mapping:
        raise ValueError("its current_node is missing or not in its mapping")
    path: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    node_id: Any = current
    while node_id is not None:
        if node_id in seen or node_id not in mapping or not isinstance(mapping[node_id], dict):
            raise ValueError(f"its mapping is broken at node {str(node_id)[:60]!r} (a loop or a missing parent)")
        seen.add(node_id)
        node = mapping[node_id]
        if isinstance(node.get("message"), dict):
            path.append((node_id, node["message"]))
        node_id = node.get("parent")
    path.reverse()
    return path


def _text(content: Any) -> str:
    if not isinstance(content, dict):
        return ""
    parts = content.get("parts")
    if isinstance(parts, list):
        texts = [p if isinstance(p, str) else p.get("text", "") for p in parts if isinstance(p, str | dict)]
        return "\n".join(t for t in texts if isinstance(t, str) and t.strip())
    text = content.get("text")
    return text if isinstance(text, str) else ""


def _message(owner: uuid.UUID, conversation_id: str, node_id: str, message: dict[str, Any]) -> dict[str, Any] | None:
    metadata: dict[str, Any] = message.get("metadata") or {}
    author: dict[str, Any] = message.get("author") or {}
    if not isinstance(metadata, dict) or not isinstance(author, dict):
        raise ValueError(f"message {node_id[:60]!r} has a metadata or author that is not a JSON object")
    if metadata.get("is_visually_hidden_from_conversation"):
        return None
    role = author.get("role")
    if role not in ROLES:
        raise ValueError(f"message {node_id[:60]!r} has author role {role!r}; expected one of {sorted(ROLES)}")
    text = _text(message.get("content"))
    if not text.strip():
        return None
    content_type = message["content"].get("content_type")
    source_id = str(message.get("id") or node_id)
    item: dict[str, Any] = {
        "id": stable_id(owner, PLATFORM, conversation_id, source_id),
        "role": ROLES[role],
        "name": author.get("name") if isinstance(author.get("name"), str) else None,
        "text_content": text,
        "message_type": content_type[:50] if isinstance(content_type, str) and content_type != "text" else None,
        "context": {"source": PLATFORM, "source_id": source_id},
        "created_at": _time(message.get("create_time")),
    }
    if isinstance(metadata.get("model_slug"), str):
        item["context"]["model"] = metadata["model_slug"]
    recipient = message.get("recipient")
    if role == "assistant" and isinstance(recipient, str) and recipient != "all":
        # Addressed to a tool (browser, python, ...): the text is the call, not something said to the user.
        item["tool_calls"] = [{"name": recipient, "input": text}]
        item["text_content"] = None
    return item


def conversation(item: dict[str, Any], owner: uuid.UUID) -> dict[str, Any]:
    """One conversation in the shape of repository.operations.transfer.ImportedConversation; ValueError when it
    cannot be read."""
    source_id = item.get("conversation_id") or item.get("id")
    if not isinstance(source_id, str) or not source_id:
        raise ValueError("it has no id (conversation_id)")
    messages = []
    for node_id, message in branch(item["mapping"], item.get("current_node")):
        converted = _message(owner, source_id, node_id, message)
        if converted is not None:
            messages.append(converted)
    started = _time(item.get("create_time"))
    return imported_conversation(owner, PLATFORM, source_id, item.get("title"), started, messages)
