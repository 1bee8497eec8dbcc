"""A Claude.ai data export's conversations.json: a JSON array of
{"uuid", "name", "created_at", "chat_messages": [{"uuid", "sender": "human" | "assistant", "text", "created_at",
"content": [{"type": "text", "text"}, {"type": "tool_use", ...}, {"type": "tool_result", ...}]}]}.

The text is the content's text blocks (or "text" when there is no content list); tool_use and tool_result blocks
become the message's tool calls and outputs; attachments are named in the message's context.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from mcp_server.formats.ids import imported_conversation, stable_id

PLATFORM = "claude.ai"
ROLES = {"human": "user", "assistant": "assistant"}


def is_claude(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("chat_messages"), list)


def _time(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{what} {str(value)[:40]!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"{what} {value!r} has no time zone")
    return moment


def _blocks(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [block for block in content if isinstance(block, dict) and block.get("type") == kind]


def _message(owner: uuid.UUID, conversation_id: str, index: int, message: Any) -> dict[str, Any] | None:
    if not isinstance(message, dict):
        raise ValueError(f"message {index + 1} is not a JSON object")
    sender = message.get("sender")
    if sender not in ROLES:
        raise ValueError(f"message {index + 1} has sender {sender!r}; expected 'human' or 'assistant'")
    texts = [b["text"] for b in _blocks(message, "text") if isinstance(b.get("text"), str) and b["text"].strip()]
    text = "\n\n".join(texts) if texts else message.get("text")
    text = text if isinstance(text, str) and text.strip() else None
    calls = _blocks(message, "tool_use") or None
    outputs = _blocks(message, "tool_result") or None
    if text is None and calls is None and outputs is None:
        return None
    source_id = str(message.get("uuid") or index)
    context: dict[str, Any] = {"source": PLATFORM, "source_id": source_id}
    files = [f.get("file_name") for f in message.get("attachments") or [] if isinstance(f, dict)]
    if any(isinstance(name, str) for name in files):
        context["attachments"] = [name for name in files if isinstance(name, str)]
    return {
        "id": stable_id(owner, PLATFORM, conversation_id, source_id),
        "role": ROLES[sender],
        "text_content": text,
        "tool_calls": calls,
        "tool_outputs": outputs,
        "context": context,
        "created_at": _time(message.get("created_at"), f"message {index + 1}'s created_at"),
    }


def conversation(item: dict[str, Any], owner: uuid.UUID) -> dict[str, Any]:
    """One conversation in the shape of repository.operations.transfer.ImportedConversation; ValueError when it
    cannot be read."""
    source_id = item.get("uuid")
    if not isinstance(source_id, str) or not source_id:
        raise ValueError("it has no uuid")
    messages = []
    for index, message in enumerate(item["chat_messages"]):
        converted = _message(owner, source_id, index, message)
        if converted is not None:
            messages.append(converted)
    started = _time(item.get("created_at"), "its created_at")
    return imported_conversation(owner, PLATFORM, source_id, item.get("name"), started, messages)
