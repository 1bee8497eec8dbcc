"""Stable ids for imported rows, so importing the same export again finds what it stored the first time, and the
conversation shape both chat exports (ChatGPT, Claude) are read into."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

# Fixed forever: changing it would make every re-import create duplicates.
NAMESPACE = uuid.UUID("5f0d6a52-3c1e-4b8e-9a57-2f1c0e6b9d41")


def stable_id(owner: uuid.UUID, *source: str) -> uuid.UUID:
    """The id of a row made from `source` (tool, conversation id, message id) for one user: the same user
    importing the same conversation gets the same ids; another user gets others, so nobody's rows collide."""
    return uuid.uuid5(NAMESPACE, "/".join((str(owner), *source)))


def imported_conversation(
    owner: uuid.UUID,
    platform: str,
    source_id: str,
    title: Any,
    created_at: datetime | None,
    messages: list[dict[str, Any]],
) -> dict[str, Any]:
    """One exported conversation in the shape of repository.operations.transfer.ImportedConversation, its id stable
    for this owner and source, its title (a non-empty string) cut to the session name's 500 characters."""
    return {
        "id": stable_id(owner, platform, source_id),
        "name": title[:500] if isinstance(title, str) and title.strip() else None,
        "platform": platform,
        "metadata": {"source": platform, "source_id": source_id},
        "created_at": created_at,
        "messages": messages,
    }
